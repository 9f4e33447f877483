"""Pure builders of ffmpeg argument lists (no I/O; unit tested).

Everything here returns lists of strings that go straight to ``subprocess``
(never a shell). Sizes, positions and times are computed in Python from the
probe result, so the filter graphs contain plain numbers, not expressions fed
from user input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mediaflow_api.tasks import (
    AudioSettings,
    Rendition,
    VideoSettings,
    Watermark,
    parse_bitrate,
    parse_length,
)
from mediaflow_worker import safety

VIDEO_ENCODERS = {"h264": "libx264", "h265": "libx265", "vp9": "libvpx-vp9", "av1": "libsvtav1"}
AUDIO_ENCODERS = {
    "aac": "aac",
    "opus": "libopus",
    "mp3": "libmp3lame",
    "flac": "flac",
    "pcm": "pcm_s16le",
}
IMAGE_ENCODERS = {"jpeg": "mjpeg", "png": "png", "webp": "libwebp"}
IMAGE_EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp"}
# container -> (muxer, file extension)
CONTAINERS = {
    "mp4": ("mp4", "mp4"),
    "mov": ("mov", "mov"),
    "mkv": ("matroska", "mkv"),
    "webm": ("webm", "webm"),
    "ts": ("mpegts", "ts"),
    "mp3": ("mp3", "mp3"),
    "m4a": ("ipod", "m4a"),
    "wav": ("wav", "wav"),
    "flac": ("flac", "flac"),
    "ogg": ("ogg", "ogg"),
}
FASTSTART_CONTAINERS = ("mp4", "mov", "m4a")
# ``codec: copy``: the source codecs (ffprobe names) each container takes as
# they are, measured with ffmpeg 5.1's muxers (stream copy of generated
# streams); MPEG-TS and WAV would accept more, but only these play anywhere.
# None: anything (Matroska). "pcm" stands for every pcm_* codec.
COPY_VIDEO_CODECS: dict[str, frozenset[str] | None] = {
    "mp4": frozenset({"h264", "hevc", "av1", "vp9", "mpeg4", "mpeg2video", "mpeg1video", "mjpeg"}),
    "mov": frozenset({"h264", "hevc", "mpeg4", "mpeg2video", "mjpeg", "prores"}),
    "mkv": None,
    "webm": frozenset({"vp8", "vp9", "av1"}),
    "ts": frozenset({"h264", "hevc", "mpeg2video", "mpeg1video", "mpeg4"}),
}
COPY_AUDIO_CODECS: dict[str, frozenset[str] | None] = {
    "mp4": frozenset({"aac", "mp3", "mp2", "opus", "ac3", "eac3", "alac"}),
    "mov": frozenset({"aac", "mp3", "mp2", "ac3", "eac3", "alac", "pcm"}),
    "mkv": None,
    "webm": frozenset({"opus", "vorbis"}),
    "ts": frozenset({"aac", "mp3", "mp2", "ac3", "eac3", "opus"}),
    "mp3": frozenset({"mp3"}),
    "m4a": frozenset({"aac", "alac"}),
    "wav": frozenset({"pcm"}),
    "flac": frozenset({"flac"}),
    "ogg": frozenset({"opus", "vorbis", "flac"}),
}


def copy_fits(kind: str, source_codec: str, container: str) -> bool:
    """Whether ``codec: copy`` of a ``source_codec`` stream (ffprobe's name)
    can go into ``container`` (``kind`` is "video" or "audio"; pure)."""
    table = COPY_VIDEO_CODECS if kind == "video" else COPY_AUDIO_CODECS
    if container not in table:
        return False
    allowed = table[container]
    if allowed is None:
        return True
    family = "pcm" if source_codec.startswith("pcm_") else source_codec
    return family in allowed


# x264-style preset -> libvpx-vp9 -cpu-used (good deadline) / SVT-AV1 -preset.
VP9_CPU_USED = {
    "ultrafast": 8,
    "superfast": 7,
    "veryfast": 6,
    "faster": 5,
    "fast": 4,
    "medium": 3,
    "slow": 2,
    "slower": 1,
    "veryslow": 0,
}
SVTAV1_PRESET = {
    "ultrafast": 12,
    "superfast": 11,
    "veryfast": 10,
    "faster": 9,
    "fast": 8,
    "medium": 7,
    "slow": 5,
    "slower": 4,
    "veryslow": 2,
}
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
DEFAULT_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def even(value: float) -> int:
    """Round down to an even number >= 2 (yuv420p encoders need even sizes)."""
    n = int(value)
    return max(2, n - n % 2)


def fit_size(
    src_w: int,
    src_h: int,
    width: int | None,
    height: int | None,
    *,
    upscale: bool = False,
    adaptive_orientation: bool = True,
) -> tuple[int, int]:
    """The even output size for a source displayed at ``src_w`` x ``src_h``.

    Only width or only height: the other follows the aspect ratio. Both: the
    largest size that fits the box, aspect kept. ``adaptive_orientation`` swaps
    the request for portrait sources ("720p" means the short side is 720).
    Without ``upscale`` the result is never larger than the source.
    """
    if adaptive_orientation and src_h > src_w:
        width, height = height, width
    scale = 1.0
    if width and height:
        scale = min(width / src_w, height / src_h)
    elif width:
        scale = width / src_w
    elif height:
        scale = height / src_h
    if not upscale:
        scale = min(scale, 1.0)
    return _nearest_even(src_w * scale, src_w, upscale), _nearest_even(
        src_h * scale, src_h, upscale
    )


def _nearest_even(value: float, source: int, upscale: bool) -> int:
    """The even number nearest ``value`` (853.3 -> 854), but never above an
    odd source size unless upscaling is allowed (161 -> 160, not 162)."""
    n = max(2, 2 * round(value / 2))
    if not upscale and n > source:
        n -= 2
    return max(2, n)


def seconds(value: float) -> str:
    """A time for ffmpeg options, in seconds with millisecond precision."""
    return f"{max(value, 0.0):.3f}"


def quote_filter_value(value: str) -> str:
    """Quote a filter option value (paths) for a filtergraph string."""
    return "'" + value.replace("\\", "\\\\").replace("'", "'\\''") + "'"


# --- common pieces -----------------------------------------------------------


def base_args() -> list[str]:
    """Start of every ffmpeg command: quiet, no stdin, progress on stdout."""
    return [
        "ffmpeg",
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-progress",
        "pipe:1",
        "-nostats",
    ]


def input_args(
    path: Path,
    demuxer: str,
    max_pixels: int,
    *,
    start: float | None = None,
    duration: float | None = None,
) -> list[str]:
    """A restricted input: local files only, demuxer forced from the probe."""
    args = [
        *safety.protocol_args(),
        "-f",
        demuxer,
        "-max_pixels",
        str(max_pixels),
    ]
    if start:
        args += ["-ss", seconds(start)]
    if duration:
        args += ["-t", seconds(duration)]
    return [*args, "-i", f"file:{path}"]


def image_input_args(path: Path) -> list[str]:
    """A watermark image input (PNG/JPEG/WebP only), looped for overlays."""
    return [
        *safety.protocol_args(),
        *safety.demuxer_whitelist_args(safety.ALLOWED_IMAGE_DEMUXERS),
        "-i",
        f"file:{path}",
    ]


def output_limit_args(max_bytes: int) -> list[str]:
    """Stop writing an output file just past ``max_bytes``.

    ffmpeg ends *successfully* at the ``-fs`` limit, leaving a truncated file;
    one byte more than the limit makes the total-size check that follows
    (``runner.check_output_size``) catch it instead of uploading it."""
    return ["-fs", str(max_bytes + 1)]


def strip_metadata_args() -> list[str]:
    """Drop source metadata (phone GPS, device names) from outputs."""
    return ["-map_metadata", "-1", "-map_chapters", "-1"]


# --- video / audio encoders --------------------------------------------------


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


# --- filter graphs -------------------------------------------------------------


@dataclass(frozen=True)
class WatermarkInput:
    """A watermark as placed on a known output frame size."""

    spec: Watermark
    input_index: int | None  # ffmpeg input index of the image, None for text
    image_size: tuple[int, int] | None  # the image's own size
    text_file: Path | None  # file holding the text (never inlined in the graph)


def _px(length: str, reference: int) -> int:
    number, percent = parse_length(length)
    return round(reference * number / 100) if percent else round(number)


def _anchor(position: str, frame: int, item: str | int, offset: int, axis: str) -> str:
    """Coordinate of the overlay's top/left edge along one axis."""
    start_words = ("left",) if axis == "x" else ("top",)
    end_words = ("right",) if axis == "x" else ("bottom",)
    parts = position.split("-")
    if any(p in start_words for p in parts):
        return str(offset)
    if any(p in end_words for p in parts):
        return f"{frame}-{item}-{offset}"
    return f"({frame}-{item})/2"


def _enable(spec: Watermark) -> str:
    if spec.start is None and spec.end is None:
        return ""
    start = spec.start or 0
    end = spec.end if spec.end is not None else 10**7
    return f":enable='between(t,{seconds(start)},{seconds(end)})'"


def watermark_filters(
    marks: Sequence[WatermarkInput], frame: tuple[int, int], src_label: str, font: str
) -> tuple[list[str], str]:
    """Filter chains drawing ``marks`` on ``src_label``; returns (chains, label)."""
    out_w, out_h = frame
    chains: list[str] = []
    label = src_label
    for i, mark in enumerate(marks):
        spec = mark.spec
        pos = spec.position
        new_label = f"wm{i}out"
        if mark.input_index is not None and mark.image_size is not None:
            img_w, img_h = mark.image_size
            w = max(2, _px(spec.width, out_w)) if spec.width else img_w
            h = max(2, round(img_h * w / img_w))
            ox, oy = _px(spec.offset_x, out_w), _px(spec.offset_y, out_h)
            x = _anchor(pos, out_w, w, ox, "x")
            y = _anchor(pos, out_h, h, oy, "y")
            chains.append(
                f"[{mark.input_index}:v]scale={w}:{h},format=rgba,"
                f"colorchannelmixer=aa={spec.opacity:.3f}[wm{i}]"
            )
            chains.append(
                f"[{label}][wm{i}]overlay=x={x}:y={y}:eof_action=repeat{_enable(spec)}[{new_label}]"
            )
        elif mark.text_file is not None:
            size = max(4, _px(spec.font_size, out_h))
            ox, oy = _px(spec.offset_x, out_w), _px(spec.offset_y, out_h)
            x = _anchor(pos, out_w, "tw", ox, "x").replace(str(out_w), "w", 1)
            y = _anchor(pos, out_h, "th", oy, "y").replace(str(out_h), "h", 1)
            color = spec.font_color.replace("#", "0x")
            chains.append(
                f"[{label}]drawtext=fontfile={quote_filter_value(font)}"
                f":textfile={quote_filter_value(str(mark.text_file))}:expansion=none"
                f":fontsize={size}:fontcolor={color}@{spec.opacity:.3f}"
                f":x={x}:y={y}{_enable(spec)}[{new_label}]"
            )
        label = new_label
    return chains, label


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
) -> str:
    """The -filter_complex of a transcode: scale, fps, watermarks, yuv420p."""
    w, h = size
    source = "[0:V:0]"
    chains = []
    if tail is not None:
        chains += [
            f"[{tail.input_index}:V:0]trim=end_frame=1,setpts={tail.at:.6f}/TB[tail]",
            f"[0:V:0][tail]interleave,settb={tail.time_base}[src]",
        ]
        source = "[src]"
    chains.append(f"{source}scale={w}:{h},setsar=1" + (f",fps={fps:g}" if fps else "") + "[base]")
    wm_chains, label = watermark_filters(marks, size, "base", font)
    chains += wm_chains
    chains.append(f"[{label}]format=yuv420p[vout]")
    return ";".join(chains)


# --- snapshots, sprites, animations --------------------------------------------


def image_codec_args(fmt: str) -> list[str]:
    """Encoder options for one still image."""
    if fmt == "jpeg":
        return ["-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p"]
    if fmt == "png":
        return ["-c:v", "png", "-pix_fmt", "rgb24"]
    return ["-c:v", "libwebp", "-quality", "80", "-pix_fmt", "yuv420p"]


def snapshot_times(
    duration: float,
    fps: float | None,
    *,
    times: Sequence[tuple[float, bool]] | None = None,
    interval: float | None = None,
    count: int | None = None,
    max_count: int = 100,
) -> list[float]:
    """Instants (seconds) to grab, clamped to the last frame of the input.

    ``times`` are ``(value, is_percent)`` pairs; ``interval`` gives 0, N, 2N...;
    ``count`` gives N instants evenly spaced inside the duration (never the
    first or last frame, which are often black).
    """
    # The last instant that still has a frame: one or two frame durations
    # before the end (a seek past the last frame yields nothing).
    last = max(0.0, duration - max(2.0 / (fps or 25.0), 0.05))
    if times is not None:
        raw = [duration * v / 100 if pct else v for v, pct in times]
    elif interval is not None:
        n = min(max_count, max(1, math.ceil(duration / interval - 1e-9)))
        raw = [i * interval for i in range(n)]
    elif count is not None:
        raw = [duration * (i + 1) / (count + 1) for i in range(count)]
    else:
        raise ValueError("one of times, interval and count is required")
    return [round(min(max(t, 0.0), last), 3) for t in raw]


def snapshot_args(
    path: Path,
    demuxer: str,
    max_pixels: int,
    at: float,
    size: tuple[int, int],
    fmt: str,
    out: Path,
) -> list[str]:
    """One still at ``at`` seconds (input seeking: decodes from the previous
    keyframe only)."""
    w, h = size
    return [
        *base_args(),
        *input_args(path, demuxer, max_pixels, start=at),
        "-map",
        "0:V:0",
        "-vf",
        f"scale={w}:{h},setsar=1",
        "-frames:v",
        "1",
        *image_codec_args(fmt),
        *strip_metadata_args(),
        "-f",
        "image2",
        "-update",
        "1",
        str(out),
    ]


def snapshot_window_args(
    path: Path,
    demuxer: str,
    max_pixels: int,
    at: float,
    window: float,
    size: tuple[int, int],
    fmt: str,
    out: Path,
) -> list[str]:
    """The frame *shown* at ``at``: decode ``window`` seconds up to ``at`` and
    keep the last frame (``-update 1`` overwrites). For instants after the
    last frame starts, where a plain seek finds nothing (VFR recordings hold
    their last frame for seconds)."""
    w, h = size
    start = max(0.0, at - window)
    return [
        *base_args(),
        *input_args(path, demuxer, max_pixels, start=start, duration=max(at - start, 0.001)),
        "-map",
        "0:V:0",
        "-vf",
        f"scale={w}:{h},setsar=1",
        "-fps_mode",
        "passthrough",
        *image_codec_args(fmt),
        *strip_metadata_args(),
        "-f",
        "image2",
        "-update",
        "1",
        str(out),
    ]


def snapshots_single_pass_args(
    path: Path,
    demuxer: str,
    max_pixels: int,
    times: Sequence[float],
    size: tuple[int, int],
    fmt: str,
    outs: Sequence[Path],
) -> list[str]:
    """Every still from one decode: ``split`` into one ``trim`` branch per
    instant, each branch's first frame written. Faster than seeking when the
    input is short (bench/worker_bench.py)."""
    w, h = size
    n = len(times)
    chains = [f"[0:V:0]split={n}" + "".join(f"[s{i}]" for i in range(n))]
    chains += [
        f"[s{i}]trim=start={t:.3f},scale={w}:{h},setsar=1[o{i}]" for i, t in enumerate(times)
    ]
    args = [
        *base_args(),
        *input_args(path, demuxer, max_pixels),
        "-filter_complex",
        ";".join(chains),
    ]
    for i, out in enumerate(outs):
        args += ["-map", f"[o{i}]", "-frames:v", "1", *image_codec_args(fmt)]
        args += [*strip_metadata_args(), "-f", "image2", "-update", "1", str(out)]
    return args


@dataclass(frozen=True)
class SpritePlan:
    """Geometry of a sprite job (pure result of ``plan_sprite``)."""

    interval: float
    thumbs: int
    columns: int
    rows: int
    sheets: int
    thumb_w: int
    thumb_h: int


def plan_sprite(
    duration: float,
    display: tuple[int, int],
    *,
    interval: float | None,
    columns: int,
    rows: int,
    width: int,
    max_sheets: int,
) -> SpritePlan:
    """How many thumbnails at which interval, on how many sheets."""
    per_sheet = columns * rows
    if interval is None:
        interval = max(duration / per_sheet, 0.04)
    thumbs = max(1, min(math.ceil(duration / interval - 1e-6), per_sheet * max_sheets))
    src_w, src_h = display
    thumb_w = even(min(width, src_w)) if src_w >= 2 else 2
    thumb_h = even(round(src_h * thumb_w / src_w))
    return SpritePlan(
        interval=interval,
        thumbs=thumbs,
        columns=columns,
        rows=rows,
        sheets=math.ceil(thumbs / per_sheet),
        thumb_w=thumb_w,
        thumb_h=thumb_h,
    )


def sprite_args(
    path: Path, demuxer: str, max_pixels: int, plan: SpritePlan, fmt: str, pattern: Path
) -> list[str]:
    """All sheets in one pass: fps picks one frame per interval, tile packs them."""
    return [
        *base_args(),
        *input_args(path, demuxer, max_pixels),
        "-map",
        "0:V:0",
        "-vf",
        f"fps=1/{plan.interval:.6f}:round=down,scale={plan.thumb_w}:{plan.thumb_h},setsar=1,"
        f"tile={plan.columns}x{plan.rows}",
        "-frames:v",
        str(plan.sheets),
        "-fps_mode",
        "passthrough",
        *image_codec_args(fmt),
        *strip_metadata_args(),
        "-f",
        "image2",
        "-start_number",
        "1",
        str(pattern),
    ]


def vtt_timestamp(t: float) -> str:
    """``HH:MM:SS.mmm`` for WebVTT."""
    ms = round(t * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def sprite_vtt(plan: SpritePlan, duration: float, sheet_names: Sequence[str]) -> str:
    """The WebVTT index: one cue per thumbnail, pointing at its sheet region."""
    lines = ["WEBVTT", ""]
    per_sheet = plan.columns * plan.rows
    for i in range(plan.thumbs):
        start = i * plan.interval
        end = min((i + 1) * plan.interval, duration)
        if end <= start:
            break
        sheet, cell = divmod(i, per_sheet)
        row, col = divmod(cell, plan.columns)
        x, y = col * plan.thumb_w, row * plan.thumb_h
        lines += [
            f"{vtt_timestamp(start)} --> {vtt_timestamp(end)}",
            f"{sheet_names[sheet]}#xywh={x},{y},{plan.thumb_w},{plan.thumb_h}",
            "",
        ]
    return "\n".join(lines)


def animated_args(
    path: Path,
    demuxer: str,
    max_pixels: int,
    *,
    start: float,
    duration: float,
    fps: float,
    size: tuple[int, int],
    fmt: str,
    loop: int,
    out: Path,
) -> list[str]:
    """A GIF with a palette made from the clip itself, or an animated WebP."""
    w, h = size
    scale = f"fps={fps:g},scale={w}:{h}:flags=lanczos,setsar=1"
    if fmt == "gif":
        graph = (
            f"[0:V:0]{scale},split[a][b];[a]palettegen=stats_mode=diff[p];"
            "[b][p]paletteuse=dither=bayer:bayer_scale=5:diff_mode=rectangle[out]"
        )
        codec = ["-c:v", "gif", "-f", "gif"]
    else:
        graph = f"[0:V:0]{scale}[out]"
        codec = ["-c:v", "libwebp_anim", "-quality", "75", "-pix_fmt", "yuv420p", "-f", "webp"]
    return [
        *base_args(),
        *input_args(path, demuxer, max_pixels, start=start, duration=duration),
        "-filter_complex",
        graph,
        "-map",
        "[out]",
        "-fps_mode",
        "passthrough",
        *codec,
        "-loop",
        str(loop),
        *strip_metadata_args(),
        str(out),
    ]


# --- adaptive streaming -------------------------------------------------------


@dataclass(frozen=True)
class PlannedRendition:
    """A rendition with its final frame size."""

    rendition: Rendition
    width: int
    height: int


def plan_ladder(
    renditions: Sequence[Rendition], display: tuple[int, int]
) -> list[PlannedRendition]:
    """Renditions that do not upscale the source (tallest first).

    A rendition's height is the short side of the frame (portrait sources get
    the same ladder turned sideways). When the source is smaller than every
    rung, one rendition at the source size remains, with the smallest rung's
    bitrates.
    """
    src_w, src_h = display
    short = min(src_w, src_h)
    ordered = sorted(renditions, key=lambda r: r.height, reverse=True)
    kept = [r for r in ordered if r.height <= short] or [ordered[-1]]
    planned = []
    seen: set[tuple[int, int]] = set()
    for r in kept:
        w, h = fit_size(src_w, src_h, None, min(r.height, short))
        if (w, h) in seen:
            continue
        seen.add((w, h))
        planned.append(PlannedRendition(r, w, h))
    return planned


def ladder_args(
    path: Path,
    demuxer: str,
    max_pixels: int,
    planned: Sequence[PlannedRendition],
    *,
    fmt: str,
    codec: str,
    preset: str,
    segment_seconds: float,
    has_audio: bool,
    out_dir: Path,
) -> list[str]:
    """One decode, one ``split``, one encoder per rendition, one HLS/DASH muxer."""
    n = len(planned)
    labels = "".join(f"[s{i}]" for i in range(n))
    chains = [f"[0:V:0]split={n}{labels}"]
    for i, p in enumerate(planned):
        chains.append(f"[s{i}]scale={p.width}:{p.height},setsar=1,format=yuv420p[v{i}]")
    args = [
        *base_args(),
        *input_args(path, demuxer, max_pixels),
        "-filter_complex",
        ";".join(chains),
    ]
    encoder = VIDEO_ENCODERS[codec]
    gop_expr = f"expr:gte(t,n_forced*{segment_seconds:g})"
    for i, p in enumerate(planned):
        r = p.rendition
        rate = parse_bitrate(r.video_bitrate)
        maxrate = parse_bitrate(r.maxrate) if r.maxrate else int(rate * 1.5)
        args += ["-map", f"[v{i}]", f"-c:v:{i}", encoder, f"-b:v:{i}", str(rate)]
        args += [f"-maxrate:v:{i}", str(maxrate), f"-bufsize:v:{i}", str(2 * maxrate)]
    args += ["-preset", preset, "-force_key_frames", gop_expr]
    args += ["-fps_mode", "vfr", "-enc_time_base:v", "-1"]
    if codec == "h264":
        args += ["-sc_threshold", "0"]
    else:
        args += ["-x265-params", "log-level=error:scenecut=0", "-tag:v", "hvc1"]
    audio_maps = n if (has_audio and fmt == "hls") else (1 if has_audio else 0)
    for i in range(audio_maps):
        r = planned[i].rendition if fmt == "hls" else planned[0].rendition
        abr = str(parse_bitrate(r.audio_bitrate))
        args += ["-map", "0:a:0", f"-c:a:{i}", "aac", f"-b:a:{i}", abr]
    if audio_maps:
        args += ["-ac", "2", "-ar", "48000"]
    args += strip_metadata_args()
    if fmt == "hls":
        stream_map = " ".join(f"v:{i},a:{i}" if audio_maps else f"v:{i}" for i in range(n))
        segment_type = ["-hls_segment_type", "fmp4"] if codec == "h265" else []
        args += [
            "-f",
            "hls",
            "-hls_time",
            f"{segment_seconds:g}",
            "-hls_playlist_type",
            "vod",
            "-hls_flags",
            "independent_segments",
            *segment_type,
            "-hls_segment_filename",
            str(out_dir / "stream_%v" / "segment_%05d.ts")
            if codec == "h264"
            else str(out_dir / "stream_%v" / "segment_%05d.m4s"),
            "-master_pl_name",
            "master.m3u8",
            "-var_stream_map",
            stream_map,
            str(out_dir / "stream_%v" / "index.m3u8"),
        ]
    else:
        sets = "id=0,streams=v" + (" id=1,streams=a" if audio_maps else "")
        args += _dash_output_args(segment_seconds, sets, out_dir)
    # No -fs here: it applies per output file and HLS writes many; the total
    # size is checked after the run.
    return args


def _dash_output_args(segment_seconds: float, adaptation_sets: str, out_dir: Path) -> list[str]:
    """The DASH muxer and its output names: ``manifest.mpd``, init and chunk
    segments per representation (pure)."""
    return [
        "-f",
        "dash",
        "-seg_duration",
        f"{segment_seconds:g}",
        "-use_template",
        "1",
        "-use_timeline",
        "1",
        "-adaptation_sets",
        adaptation_sets,
        "-init_seg_name",
        "init-$RepresentationID$.m4s",
        "-media_seg_name",
        "chunk-$RepresentationID$-$Number%05d$.m4s",
        str(out_dir / "manifest.mpd"),
    ]


def audio_stream_args(
    path: Path,
    demuxer: str,
    max_pixels: int,
    *,
    fmt: str,
    bitrate: str,
    segment_seconds: float,
    out_dir: Path,
) -> list[str]:
    """HLS or DASH of an audio-only input: one AAC rendition, one playlist."""
    args = [
        *base_args(),
        *input_args(path, demuxer, max_pixels),
        "-map",
        "0:a:0",
        "-c:a",
        "aac",
        "-b:a",
        str(parse_bitrate(bitrate)),
        "-ac",
        "2",
        "-ar",
        "48000",
        *strip_metadata_args(),
    ]
    if fmt == "hls":
        return [
            *args,
            "-f",
            "hls",
            "-hls_time",
            f"{segment_seconds:g}",
            "-hls_playlist_type",
            "vod",
            "-hls_segment_type",
            "fmp4",
            "-hls_segment_filename",
            str(out_dir / "stream_%v" / "segment_%05d.m4s"),
            "-master_pl_name",
            "master.m3u8",
            "-var_stream_map",
            "a:0",
            str(out_dir / "stream_%v" / "index.m3u8"),
        ]
    return [*args, *_dash_output_args(segment_seconds, "id=0,streams=a", out_dir)]


# --- analysis ------------------------------------------------------------------


def analysis_args(
    path: Path,
    demuxer: str,
    max_pixels: int,
    *,
    has_video: bool,
    has_audio: bool,
    scenes: float | None,
    black: float | None,
    silence: tuple[float, float] | None,
    loudness: bool,
) -> list[str] | None:
    """One decode running every requested detector; None when none applies.

    Detectors report through the log at info level; ``runner`` parses it.
    """
    chains: list[str] = []
    maps: list[str] = []
    if has_video and (scenes is not None or black is not None):
        # Detection works as well on a small frame and costs far less.
        filters = ["scale=320:-2"]
        if scenes is not None:
            filters.append(f"scdet=threshold={scenes:g}")
        if black is not None:
            filters.append(f"blackdetect=d={black:g}:pix_th=0.10")
        chains.append("[0:V:0]" + ",".join(filters) + "[vout]")
        maps += ["-map", "[vout]"]
    if has_audio and (silence is not None or loudness):
        filters = []
        if silence is not None:
            filters.append(f"silencedetect=n={silence[0]:g}dB:d={silence[1]:g}")
        if loudness:
            filters.append("ebur128=peak=true:framelog=verbose")
        chains.append("[0:a:0]" + ",".join(filters) + "[aout]")
        maps += ["-map", "[aout]"]
    if not chains:
        return None
    args = base_args()
    args[args.index("error")] = "info"
    return [
        *args,
        *input_args(path, demuxer, max_pixels),
        "-filter_complex",
        ";".join(chains),
        *maps,
        "-f",
        "null",
        "-",
    ]
