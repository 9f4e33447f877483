"""The ``transcode`` command: encoder options, the held last frame, the
video filter graph and the full command of one output file (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mediaflow_api.tasks import AudioSettings, TranscodeTask, VideoSettings, parse_bitrate
from mediaflow_worker.ffmpeg.codecs import (
    AUDIO_ENCODERS,
    CONTAINERS,
    FASTSTART_CONTAINERS,
    OPUS_RATES,
    SVTAV1_PRESET,
    VIDEO_ENCODERS,
    VP9_CPU_USED,
)
from mediaflow_worker.ffmpeg.common import (
    DEFAULT_FONT,
    base_args,
    image_input_args,
    input_args,
    output_limit_args,
    seconds,
    strip_metadata_args,
)
from mediaflow_worker.ffmpeg.sizing import SizePlan, size_chains
from mediaflow_worker.ffmpeg.watermark import WatermarkInput, watermark_filters
from mediaflow_worker.probe import AudioInfo, VideoInfo


def video_codec_args(
    video: VideoSettings, container: str, fps: float | None, tail: TailFrame | None = None
) -> list[str]:
    """Encoder options for a resolved ``VideoSettings`` (codec not copy/none)."""
    codec = video.codec or "h264"
    preset = video.preset or "medium"
    args = ["-c:v", VIDEO_ENCODERS[codec]]
    if codec in ("h264", "h265"):
        args += ["-preset", preset]
        if codec == "h265":
            args += ["-x265-params", "log-level=error"]
            if container in ("mp4", "mov"):
                # Apple players only accept HEVC in MP4/MOV tagged hvc1.
                args += ["-tag:v", "hvc1"]
    elif codec == "vp9":
        args += ["-deadline", "good", "-cpu-used", str(VP9_CPU_USED[preset]), "-row-mt", "1"]
    elif codec == "av1":
        args += ["-preset", str(SVTAV1_PRESET[preset])]
    if video.crf is not None:
        args += ["-crf", str(video.crf)]
        if codec == "vp9" and video.bitrate is None:
            # libvpx needs -b:v 0 for pure constant-quality mode.
            args += ["-b:v", "0"]
    if video.bitrate is not None:
        args += ["-b:v", str(parse_bitrate(video.bitrate))]
    if video.maxrate is not None:
        maxrate = parse_bitrate(video.maxrate)
        bufsize = parse_bitrate(video.bufsize) if video.bufsize else 2 * maxrate
        args += ["-maxrate", str(maxrate), "-bufsize", str(bufsize)]
    if video.gop is not None:
        args += ["-g", str(video.gop)]
    if video.fps is None and tail is not None:
        # The tail frame's graph ends in the source's time base; -r only
        # tells the encoder (and the muxer, for the last sample) the average
        # rate, vfr keeps every timestamp as it is.
        args += ["-fps_mode", "vfr", "-r", f"{tail.frame_rate:.6f}"]
        args += ["-enc_time_base:v", tail.time_base]
    elif video.fps is None:
        # Keep variable frame rate as it is: the mp4 muxer defaults to CFR,
        # which turns a VFR screen recording (r=57600) into a frame storm.
        # The input's time base keeps vfr from merging close frames.
        args += ["-fps_mode", "vfr", "-enc_time_base:v", "-1"]
    return args


def audio_codec_args(
    audio: AudioSettings, source_rate: int | None, source_channels: int | None
) -> list[str]:
    """Encoder options for a resolved ``AudioSettings`` (codec not copy/none)."""
    codec = audio.codec or "aac"
    args = ["-c:a", AUDIO_ENCODERS[codec]]
    if codec in ("aac", "opus", "mp3") and audio.bitrate:
        args += ["-b:a", str(parse_bitrate(audio.bitrate))]
    rate = audio.sample_rate
    if codec == "opus" and (rate or source_rate or 48000) not in OPUS_RATES:
        rate = 48000  # Opus only runs at 8/12/16/24/48 kHz.
    if codec == "mp3" and (rate or source_rate or 44100) > 48000:
        rate = 48000  # MP3 tops out at 48 kHz.
    if rate:
        args += ["-ar", str(rate)]
    channels = audio.channels
    if channels is None and codec in ("opus", "mp3") and (source_channels or 0) > 2:
        channels = 2  # downmix: these encoders (as used here) take stereo at most
    if channels:
        args += ["-ac", str(channels)]
    return args


@dataclass(frozen=True)
class TailFrame:
    """The held last frame of a variable-frame-rate input, fed again as an
    extra input so the output keeps its screen time.

    ffmpeg 5.1 forgets how long a frame lasts once it is decoded: the last
    frame of a screen recording, on screen for 1.57 s, comes out lasting one
    average frame interval, and the output is that much too short. The same
    frame, decoded once more from ``input_index`` and stamped ``at`` seconds
    (output time), ends the video where the source ends.
    """

    input_index: int
    seek: float  # input -ss of the extra input: just before the last frame
    at: float  # output timestamp of the repeated frame
    frame_rate: float  # -r for the encoder: the last sample lasts 1/frame_rate
    time_base: str  # the source's time base (keeps VFR timestamps exact)


def plan_tail_frame(
    *,
    last_pts: float,
    end: float,
    start_time: float,
    trim_start: float,
    frame_rate: float | None,
    out_rate: float | None,
    time_base: str | None,
    input_index: int,
) -> TailFrame | None:
    """A ``TailFrame`` when the source's last frame is held for much longer
    than its average frame (``frame_rate``; times in the source's timeline),
    None otherwise. ``out_rate``: the constant output rate, if one is set."""
    if not frame_rate or frame_rate <= 0:
        return None
    hold = end - last_pts
    if hold <= max(2.5 / frame_rate, 0.1):
        return None
    rate = out_rate or frame_rate
    interval = 1.0 / rate
    last = last_pts - start_time  # where ffmpeg's input -ss counts from
    if trim_start >= last:
        return None
    return TailFrame(
        input_index=input_index,
        seek=max(0.0, last - 0.001),
        at=round(end - start_time - trim_start - interval, 6),
        frame_rate=rate,
        time_base=time_base or "1/90000",
    )


def transcode_video_graph(
    size: tuple[int, int],
    fps: float | None,
    marks: Sequence[WatermarkInput],
    font: str = DEFAULT_FONT,
    tail: TailFrame | None = None,
    *,
    sizing: SizePlan | None = None,
) -> str:
    """The -filter_complex of a transcode: scale (or ``sizing``'s exact fill:
    pad, crop, blur...), fps, watermarks, yuv420p."""
    w, h = size
    source = "[0:V:0]"
    chains = []
    if tail is not None:
        chains += [
            f"[{tail.input_index}:V:0]trim=end_frame=1,setpts={tail.at:.6f}/TB[tail]",
            f"[0:V:0][tail]interleave,settb={tail.time_base}[src]",
        ]
        source = "[src]"
    if sizing is None or sizing.fill == "fit":
        chains.append(
            f"{source}scale={w}:{h},setsar=1" + (f",fps={fps:g}" if fps else "") + "[base]"
        )
    else:
        chains += size_chains(sizing, source.strip("[]"), "sized")
        chains.append("[sized]" + (f"fps={fps:g}" if fps else "null") + "[base]")
    wm_chains, label = watermark_filters(marks, size, "base", font)
    chains += wm_chains
    chains.append(f"[{label}]format=yuv420p[vout]")
    return ";".join(chains)


def transcode_args(
    spec: TranscodeTask,
    path: Path,
    demuxer: str,
    max_pixels: int,
    *,
    video: VideoInfo | None,
    audio: AudioInfo | None,
    size: tuple[int, int] | None,
    marks: Sequence[WatermarkInput] = (),
    tail: TailFrame | None = None,
    font: str = DEFAULT_FONT,
    max_output_bytes: int,
    out: Path,
    sizing: SizePlan | None = None,
) -> list[str]:
    """The full command of a resolved transcode (``presets.resolve_transcode``).

    ``video``/``audio``: the source streams that go into the output (None:
    none, or dropped); ``size``: the output frame of an encoded video;
    ``marks``: watermarks, image ones carrying their file; ``tail``: the held
    last frame, fed again as the input after the watermark images;
    ``sizing``: how the picture fills ``size`` (None: scaled to it)."""
    settings_v, settings_a = spec.video, spec.audio
    assert spec.container is not None
    assert settings_v is not None
    assert settings_a is not None
    start = spec.trim.start if spec.trim else None
    args = [*base_args(), *input_args(path, demuxer, max_pixels, start=start)]
    if video is not None and settings_v.codec == "copy":
        args += ["-map", "0:V:0", "-c:v", "copy"]
    elif video is not None:
        assert size is not None
        for mark in marks:
            if mark.image_path is not None:
                args += image_input_args(mark.image_path)
        if tail is not None:
            args += input_args(path, demuxer, max_pixels, start=tail.seek)
        graph = transcode_video_graph(size, settings_v.fps, marks, font, tail, sizing=sizing)
        args += ["-filter_complex", graph, "-map", "[vout]"]
        args += video_codec_args(settings_v, spec.container, video.fps, tail)
    if audio is not None:
        args += ["-map", "0:a:0"]
        if settings_a.codec == "copy":
            args += ["-c:a", "copy"]
        else:
            args += audio_codec_args(settings_a, audio.sample_rate, audio.channels)
    if spec.trim and spec.trim.duration:
        args += ["-t", seconds(spec.trim.duration)]
    muxer, _ = CONTAINERS[spec.container]
    if spec.faststart and spec.container in FASTSTART_CONTAINERS:
        args += ["-movflags", "+faststart"]
    args += strip_metadata_args()
    args += output_limit_args(max_output_bytes)
    args += ["-f", muxer, str(out)]
    return args
