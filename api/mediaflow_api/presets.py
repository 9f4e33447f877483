"""Named presets: the "system templates" of mediaflow.

A preset fills the settings a task leaves unset; anything set explicitly in the
task wins. ``docs/presets.md`` documents the exact values below (a unit test
keeps the two in agreement).
"""

from __future__ import annotations

from typing import TypeVar

from mediaflow_api.tasks import (
    CONTAINER_AUDIO_CODECS,
    CONTAINER_VIDEO_CODECS,
    AdaptiveStreamingTask,
    AudioSettings,
    Rendition,
    TranscodeTask,
    VideoSettings,
)
from mediaflow_api.tasks.intro_outro import check_transcode_intro_outro
from mediaflow_api.tasks.privacy import check_transcode_privacy
from mediaflow_api.tasks.subtitles import check_transcode_subtitles
from mediaflow_api.tasks.transcode import (
    check_bit_depth,
    check_profile_fits,
    check_rate_control,
)

_M = TypeVar("_M", VideoSettings, AudioSettings)

# name -> (container, video settings, audio settings)
TRANSCODE_PRESETS: dict[str, tuple[str, VideoSettings, AudioSettings]] = {
    "h264-360p": (
        "mp4",
        VideoSettings(codec="h264", height=360, crf=23, maxrate="1M", bufsize="2M", gop=250),
        AudioSettings(codec="aac", bitrate="96k"),
    ),
    "h264-480p": (
        "mp4",
        VideoSettings(codec="h264", height=480, crf=23, maxrate="1.5M", bufsize="3M", gop=250),
        AudioSettings(codec="aac", bitrate="128k"),
    ),
    "h264-720p": (
        "mp4",
        VideoSettings(codec="h264", height=720, crf=23, maxrate="3M", bufsize="6M", gop=250),
        AudioSettings(codec="aac", bitrate="128k"),
    ),
    "h264-1080p": (
        "mp4",
        VideoSettings(codec="h264", height=1080, crf=23, maxrate="6M", bufsize="12M", gop=250),
        AudioSettings(codec="aac", bitrate="192k"),
    ),
    "h265-720p": (
        "mp4",
        VideoSettings(codec="h265", height=720, crf=28, maxrate="2M", bufsize="4M", gop=250),
        AudioSettings(codec="aac", bitrate="128k"),
    ),
    "h265-1080p": (
        "mp4",
        VideoSettings(codec="h265", height=1080, crf=28, maxrate="4M", bufsize="8M", gop=250),
        AudioSettings(codec="aac", bitrate="192k"),
    ),
    "vp9-720p": (
        "webm",
        VideoSettings(codec="vp9", height=720, crf=32, gop=240),
        AudioSettings(codec="opus", bitrate="96k"),
    ),
    "av1-720p": (
        "mp4",
        VideoSettings(codec="av1", height=720, crf=35, gop=240),
        AudioSettings(codec="aac", bitrate="128k"),
    ),
    "audio-aac-128k": (
        "m4a",
        VideoSettings(codec="none"),
        AudioSettings(codec="aac", bitrate="128k"),
    ),
    "audio-mp3-192k": (
        "mp3",
        VideoSettings(codec="none"),
        AudioSettings(codec="mp3", bitrate="192k"),
    ),
    "audio-opus-96k": (
        "ogg",
        VideoSettings(codec="none"),
        AudioSettings(codec="opus", bitrate="96k"),
    ),
    "audio-flac": ("flac", VideoSettings(codec="none"), AudioSettings(codec="flac")),
}

# Defaults when neither the task nor a preset says otherwise.
DEFAULT_CONTAINER = "mp4"
DEFAULT_VIDEO = VideoSettings(
    codec="h264", preset="medium", upscale=False, adaptiveOrientation=True
)
# Quality when neither crf nor bitrate is set (each codec's "visually good" point).
DEFAULT_CRF = {"h264": 23, "h265": 28, "vp9": 32, "av1": 35}
DEFAULT_AUDIO = AudioSettings(codec="aac", bitrate="128k")
# Audio codec implied by an audio-only container when nothing else says.
CONTAINER_DEFAULT_AUDIO = {
    "webm": "opus",
    "mp3": "mp3",
    "m4a": "aac",
    "wav": "pcm",
    "flac": "flac",
    "ogg": "opus",
}
CONTAINER_DEFAULT_VIDEO = {"webm": "vp9"}

# name -> (codec, renditions)
LADDERS: dict[str, tuple[str, list[Rendition]]] = {
    "standard-ladder": (
        "h264",
        [
            Rendition(height=1080, videoBitrate="5000k", audioBitrate="128k"),
            Rendition(height=720, videoBitrate="2800k", audioBitrate="128k"),
            Rendition(height=480, videoBitrate="1400k", audioBitrate="96k"),
            Rendition(height=360, videoBitrate="800k", audioBitrate="96k"),
        ],
    ),
    "mobile-ladder": (
        "h264",
        [
            Rendition(height=720, videoBitrate="2000k", audioBitrate="96k"),
            Rendition(height=480, videoBitrate="1000k", audioBitrate="96k"),
            Rendition(height=360, videoBitrate="600k", audioBitrate="64k"),
            Rendition(height=240, videoBitrate="300k", audioBitrate="64k"),
        ],
    ),
    "hevc-ladder": (
        "h265",
        [
            Rendition(height=1080, videoBitrate="3000k", audioBitrate="128k"),
            Rendition(height=720, videoBitrate="1600k", audioBitrate="128k"),
            Rendition(height=480, videoBitrate="800k", audioBitrate="96k"),
        ],
    ),
}
DEFAULT_LADDER = "standard-ladder"


def _merge(base: _M, override: _M | None) -> _M:
    """``base`` with every field set in ``override`` replacing it."""
    if override is None:
        return base.model_copy()
    # Attributes, not a dump: nested settings (audio.loudness) stay models.
    fields = type(override).model_fields
    update = {
        name: getattr(override, name) for name in fields if getattr(override, name) is not None
    }
    return base.model_copy(update=update)


def resolve_transcode(task: TranscodeTask) -> TranscodeTask:
    """The effective transcode settings: defaults < preset < explicit fields.

    Raises ``ValueError`` when the combination (for instance a preset's codec in
    an explicitly chosen container) cannot work.
    """
    if task.preset is not None:
        p_container, p_video, p_audio = TRANSCODE_PRESETS[task.preset]
    else:
        p_container, p_video, p_audio = DEFAULT_CONTAINER, VideoSettings(), AudioSettings()
    container = task.container or p_container
    video = _merge(_merge(DEFAULT_VIDEO, p_video), task.video)
    audio = _merge(_merge(DEFAULT_AUDIO, p_audio), task.audio)
    explicit_vcodec = (task.video and task.video.codec) or (task.preset and p_video.codec)
    explicit_acodec = (task.audio and task.audio.codec) or (task.preset and p_audio.codec)
    if not explicit_vcodec:
        if container in ("mp3", "m4a", "wav", "flac", "ogg"):
            video = video.model_copy(update={"codec": "none"})
        elif container in CONTAINER_DEFAULT_VIDEO:
            video = video.model_copy(update={"codec": CONTAINER_DEFAULT_VIDEO[container]})
    if not explicit_acodec and container in CONTAINER_DEFAULT_AUDIO:
        audio = audio.model_copy(update={"codec": CONTAINER_DEFAULT_AUDIO[container]})
    if video.bitrate is not None and (task.video is None or task.video.crf is None):
        # An explicit bitrate replaces the preset's quality mode.
        video = video.model_copy(update={"crf": None})
    if video.rate_control == "cbr" and task.video is not None and task.video.maxrate is None:
        # Constant bitrate: minrate = maxrate = bitrate; the preset's cap and
        # buffer are for its own quality mode.
        updates = {"maxrate": None}
        if task.video.bufsize is None:
            updates["bufsize"] = None
        video = video.model_copy(update=updates)
    if task.video is not None and task.video.gop_seconds is not None:
        # A GOP in seconds replaces the preset's GOP in frames.
        video = video.model_copy(update={"gop": None})
    if video.crf is None and video.bitrate is None and video.codec in DEFAULT_CRF:
        video = video.model_copy(update={"crf": DEFAULT_CRF[video.codec]})
    if video.codec not in CONTAINER_VIDEO_CODECS[container]:
        raise ValueError(
            f"transcode: video codec {video.codec!r} cannot go in container {container!r}"
        )
    if audio.codec not in CONTAINER_AUDIO_CODECS[container]:
        raise ValueError(
            f"transcode: audio codec {audio.codec!r} cannot go in container {container!r}"
        )
    # The preset's container and codecs must suit the subtitles too.
    check_transcode_subtitles(task.subtitles, container, video.codec)
    check_transcode_privacy(task.privacy, video.codec)
    check_transcode_intro_outro(
        task.intro,
        task.outro,
        video.codec,
        audio.codec,
        audio_selection=audio.loudness is not None
        or audio.tracks == "all"
        or audio.languages is not None,
    )
    # The codec may come from the preset or the default: check the profile again.
    check_profile_fits(video.codec, video)
    check_rate_control(video.codec, video)
    check_bit_depth(video.codec, video)
    faststart = task.faststart if task.faststart is not None else True
    return task.model_copy(
        update={"container": container, "video": video, "audio": audio, "faststart": faststart}
    )


def resolve_ladder(task: AdaptiveStreamingTask) -> tuple[str, list[Rendition]]:
    """The codec and renditions (tallest first) of an adaptive streaming task;
    every rendition's ``codec`` is filled in (its own, else the task's, else
    the ladder's)."""
    ladder_codec, renditions = LADDERS[task.ladder or DEFAULT_LADDER]
    if task.renditions:
        renditions = list(task.renditions)
    codec = task.codec or ladder_codec
    filled = [r.model_copy(update={"codec": r.codec or codec}) for r in renditions]
    return codec, sorted(filled, key=lambda r: (r.height or 0, r.width or 0), reverse=True)
