"""The ``adaptiveStreaming`` commands: the ladder that fits the source (never
above its size or bitrate), one decode split into every rendition, audio
renditions, and the HLS / DASH / CMAF muxers (pure)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

from mediaflow_api.tasks import Rendition, parse_bitrate
from mediaflow_worker.ffmpeg.codecs import VIDEO_ENCODERS
from mediaflow_worker.ffmpeg.common import (
    DEFAULT_FONT,
    base_args,
    fit_size,
    image_input_args,
    input_args,
    strip_metadata_args,
)
from mediaflow_worker.ffmpeg.watermark import WatermarkInput, watermark_filters

DEFAULT_AUDIO_CHANNELS = 2
DEFAULT_SAMPLE_RATE = 48000
# A rendition whose maxrate is not given peaks at this multiple of its bitrate.
DEFAULT_PEAK_FACTOR = 1.5


@dataclass(frozen=True)
class PlannedRendition:
    """A video rendition with its final frame size, codec, frame rate and
    bitrates (after "never above the source")."""

    rendition: Rendition
    width: int
    height: int
    codec: str = "h264"
    fps: float | None = None  # an ``fps`` filter to this rate; None: the source's
    bitrate: int = 0  # bits/s; 0: the rendition's own
    maxrate: int = 0  # bits/s; 0: the rendition's own (or 1.5x the bitrate)
    capped: bool = False  # the bitrate was lowered to the source's

    @property
    def video_bitrate(self) -> int:
        """The bitrate the encoder is given (bits/s)."""
        return self.bitrate or parse_bitrate(self.rendition.video_bitrate)

    @property
    def peak(self) -> int:
        """The encoder's maxrate (bits/s)."""
        if self.maxrate:
            return self.maxrate
        if self.rendition.maxrate:
            return parse_bitrate(self.rendition.maxrate)
        return int(self.video_bitrate * DEFAULT_PEAK_FACTOR)


@dataclass(frozen=True)
class PlannedAudio:
    """One AAC encoding of the source's audio."""

    bitrate: int  # bits/s
    channels: int = DEFAULT_AUDIO_CHANNELS
    sample_rate: int = DEFAULT_SAMPLE_RATE
    capped: bool = False


@dataclass(frozen=True)
class DroppedRendition:
    """A rendition of the ladder that is not produced, and why."""

    rendition: Rendition
    reason: str


@dataclass(frozen=True)
class StreamPlan:
    """Everything one adaptive streaming command produces.

    ``audio_group``: hls only; True: ``audios`` are renditions of their own
    (an EXT-X-MEDIA group, or audio-only variants when there is no video);
    False: ``audios[i]`` is muxed into the variant of ``videos[i]``."""

    videos: list[PlannedRendition]
    audios: list[PlannedAudio]
    audio_group: bool = False
    dropped: list[DroppedRendition] = field(default_factory=list)


def _scale_of(r: Rendition, long_side: int, short_side: int) -> float:
    """How much the rendition's box enlarges the source (> 1: above it)."""
    scales = []
    if r.height:
        scales.append(r.height / short_side)
    if r.width:
        scales.append(r.width / long_side)
    return min(scales)


def plan_ladder(
    renditions: Sequence[Rendition],
    display: tuple[int, int],
    *,
    codec: str = "h264",
    source_fps: float | None = None,
    source_bitrate: int | None = None,
    dropped: list[DroppedRendition] | None = None,
) -> list[PlannedRendition]:
    """Renditions that do not upscale the source (largest first).

    A rendition's height is the short side of the frame, its width the long
    side (portrait sources get the same ladder turned sideways). Renditions
    above the source are dropped, except that when every one is, the one
    nearest the source remains, at the source size. ``source_bitrate``: the
    source video's bits/s; each rendition's bitrate (and peak) is capped to
    it. ``source_fps``: a rendition's ``fps`` applies only below it.
    ``dropped``: filled with what was left out and why.
    """
    src_w, src_h = display
    long_side, short_side = max(src_w, src_h), min(src_w, src_h)
    ordered = sorted(
        renditions,
        key=lambda r: (_scale_of(r, long_side, short_side), parse_bitrate(r.video_bitrate)),
        reverse=True,
    )
    kept = [r for r in ordered if _scale_of(r, long_side, short_side) <= 1] or [ordered[-1]]
    planned = []
    seen: set[tuple[int, int]] = set()
    for r in ordered:
        if r not in kept:
            if dropped is not None:
                dropped.append(DroppedRendition(r, f"larger than the source ({src_w}x{src_h})"))
            continue
        w, h = fit_size(src_w, src_h, r.width, r.height)
        if (w, h) in seen:
            if dropped is not None:
                dropped.append(DroppedRendition(r, f"same size as another rendition ({w}x{h})"))
            continue
        seen.add((w, h))
        fps = r.fps if r.fps and (source_fps is None or r.fps < source_fps) else None
        p = PlannedRendition(r, w, h, r.codec or codec, fps)
        if source_bitrate and p.video_bitrate > source_bitrate:
            capped_peak = min(p.peak, int(source_bitrate * DEFAULT_PEAK_FACTOR))
            p = replace(p, bitrate=source_bitrate, maxrate=capped_peak, capped=True)
        planned.append(p)
    return planned


def plan_audio(
    bitrate: str,
    channels: int | None,
    sample_rate: int | None,
    source_bitrate: int | None = None,
) -> PlannedAudio:
    """One audio encoding, its bitrate capped to the source's (when known)."""
    rate = parse_bitrate(bitrate)
    capped = bool(source_bitrate and rate > source_bitrate)
    return PlannedAudio(
        source_bitrate if capped and source_bitrate else rate,
        channels or DEFAULT_AUDIO_CHANNELS,
        sample_rate or DEFAULT_SAMPLE_RATE,
        capped,
    )


def distinct_audios(audios: Sequence[PlannedAudio]) -> list[PlannedAudio]:
    """``audios`` without repeats (after capping two may be the same), best first."""
    unique: dict[tuple[int, int, int], PlannedAudio] = {}
    for a in audios:
        unique.setdefault((a.bitrate, a.channels, a.sample_rate), a)
    return sorted(unique.values(), key=lambda a: (a.bitrate, a.channels), reverse=True)


def hls_segment_type(plan: StreamPlan, requested: str | None) -> str:
    """``ts`` or ``fmp4``: as requested, else fmp4 for h265 or no video
    (AAC in fMP4 plays everywhere HLS does), ts otherwise."""
    if requested:
        return requested
    if not plan.videos or any(p.codec == "h265" for p in plan.videos):
        return "fmp4"
    return "ts"


def _rename_labels(chains: list[str], prefix: str) -> list[str]:
    """Give ``watermark_filters``' own labels (``[wm0]``, ``[wm0out]``) a
    per-rendition prefix: every rendition draws the same marks in one graph."""
    return [re.sub(r"\[(wm\d+(?:out)?)\]", rf"[{prefix}\1]", c) for c in chains]


def sample_aspect(p: PlannedRendition, reference: PlannedRendition) -> str:
    """The SAR that gives ``p`` exactly ``reference``'s display aspect ratio.

    Even sizes cannot all be exactly 16:9 (426x240 is 1.775), and ffmpeg's
    DASH muxer refuses an adaptation set whose display aspect ratios differ by
    any amount; a SAR a hair off 1:1 (here 640:639) keeps them equal. The
    muxer reads the stream's aspect, which only ``-aspect`` sets, so the
    command carries both (``stream_args``)."""
    sar = Fraction(reference.width * p.height, reference.height * p.width)
    return f"{sar.numerator}/{sar.denominator}"


def ladder_graph(
    videos: Sequence[PlannedRendition],
    marks: Sequence[WatermarkInput] = (),
    font: str = DEFAULT_FONT,
    *,
    same_aspect: bool = False,
) -> str:
    """The -filter_complex: split the source once, then per rendition scale,
    frame rate and watermarks (image ``marks`` are opened once per rendition,
    rendition ``i``'s copy of image ``j`` at input ``1 + i * images + j``).
    ``same_aspect``: every rendition gets the first one's display aspect
    ratio through its SAR (DASH)."""
    n = len(videos)
    labels = "".join(f"[s{i}]" for i in range(n))
    chains = [f"[0:V:0]split={n}{labels}"]
    images = sum(1 for m in marks if m.input_index is not None)
    for i, p in enumerate(videos):
        fps = f",fps={p.fps:g}" if p.fps else ""
        sar = sample_aspect(p, videos[0]) if same_aspect else "1"
        chains.append(f"[s{i}]scale={p.width}:{p.height},setsar={sar}{fps}[b{i}]")
        own: list[WatermarkInput] = []
        j = 0
        for m in marks:
            if m.input_index is not None:
                own.append(replace(m, input_index=1 + i * images + j))
                j += 1
            else:
                own.append(m)
        wm_chains, label = watermark_filters(own, (p.width, p.height), f"b{i}", font)
        chains += _rename_labels(wm_chains, f"r{i}")
        label = label if label == f"b{i}" else f"r{i}{label}"
        chains.append(f"[{label}]format=yuv420p[v{i}]")
    return ";".join(chains)


def stream_args(
    path: Path,
    demuxer: str,
    max_pixels: int,
    plan: StreamPlan,
    *,
    fmt: str,
    preset: str,
    segment_seconds: float,
    out_dir: Path,
    segment_format: str | None = None,
    marks: Sequence[WatermarkInput] = (),
    font: str = DEFAULT_FONT,
    key_info: Path | None = None,
) -> list[str]:
    """One decode, one encoder per rendition, one HLS/DASH muxer (``fmt``
    cmaf: the DASH muxer also writing HLS playlists of the same segments).

    ``key_info``: an ffmpeg HLS key-info file (hls with ts segments): every
    segment is AES-128 encrypted."""
    args = [*base_args(), *input_args(path, demuxer, max_pixels)]
    videos, audios = plan.videos, plan.audios
    if videos:
        for _ in videos:
            for m in marks:
                if m.image_path is not None:
                    args += image_input_args(m.image_path)
        graph = ladder_graph(videos, marks, font, same_aspect=fmt != "hls")
        args += ["-filter_complex", graph]
    gop_expr = f"expr:gte(t,n_forced*{segment_seconds:g})"
    for i, p in enumerate(videos):
        args += ["-map", f"[v{i}]", f"-c:v:{i}", VIDEO_ENCODERS[p.codec]]
        args += [f"-b:v:{i}", str(p.video_bitrate)]
        if fmt != "hls":
            args += [f"-aspect:v:{i}", f"{videos[0].width}:{videos[0].height}"]
        args += [f"-maxrate:v:{i}", str(p.peak), f"-bufsize:v:{i}", str(2 * p.peak)]
        if p.codec == "h264":
            args += [f"-sc_threshold:v:{i}", "0"]
        else:
            args += [f"-x265-params:v:{i}", "log-level=error:scenecut=0", f"-tag:v:{i}", "hvc1"]
    if videos:
        args += ["-preset", preset, "-force_key_frames", gop_expr]
        args += ["-fps_mode", "vfr", "-enc_time_base:v", "-1"]
    for i, a in enumerate(audios):
        args += ["-map", "0:a:0", f"-c:a:{i}", "aac", f"-b:a:{i}", str(a.bitrate)]
        args += [f"-ac:a:{i}", str(a.channels), f"-ar:a:{i}", str(a.sample_rate)]
    args += strip_metadata_args()
    if fmt == "hls":
        args += _hls_output_args(plan, segment_format, segment_seconds, out_dir, key_info)
    else:
        sets = []
        if videos:
            sets.append("id=0,streams=v")
        if audios:
            sets.append(f"id={len(sets)},streams=a")
        args += _dash_output_args(segment_seconds, " ".join(sets), out_dir, hls=fmt == "cmaf")
    # No -fs here: it applies per output file and HLS writes many; the total
    # size is checked after the run.
    return args


def hls_stream_map(plan: StreamPlan) -> str:
    """``-var_stream_map``: video variants first (``stream_0`` is the largest),
    then the audio renditions: an audio group the variants refer to, or
    audio-only variants when there is no video."""
    if not plan.audio_group:
        return " ".join(
            f"v:{i},a:{i}" if plan.audios else f"v:{i}" for i in range(len(plan.videos))
        )
    if not plan.videos:
        return " ".join(f"a:{i}" for i in range(len(plan.audios)))
    variants = [f"v:{i},agroup:audio" for i in range(len(plan.videos))]
    renditions = [
        f"a:{i},agroup:audio" + (",default:yes" if i == 0 else "") for i in range(len(plan.audios))
    ]
    return " ".join(variants + renditions)


def hls_variant_count(plan: StreamPlan) -> int:
    """How many ``stream_<i>`` directories the HLS muxer writes into."""
    if plan.audio_group:
        return len(plan.videos) + len(plan.audios)
    return len(plan.videos) or len(plan.audios)


def _hls_output_args(
    plan: StreamPlan,
    segment_format: str | None,
    segment_seconds: float,
    out_dir: Path,
    key_info: Path | None,
) -> list[str]:
    seg_type = hls_segment_type(plan, segment_format)
    ext = "m4s" if seg_type == "fmp4" else "ts"
    args = [
        "-f",
        "hls",
        "-hls_time",
        f"{segment_seconds:g}",
        "-hls_playlist_type",
        "vod",
        "-hls_flags",
        "independent_segments",
        "-hls_segment_type",
        "fmp4" if seg_type == "fmp4" else "mpegts",
    ]
    if key_info is not None:
        args += ["-hls_key_info_file", str(key_info)]
    return [
        *args,
        "-hls_segment_filename",
        str(out_dir / "stream_%v" / f"segment_%05d.{ext}"),
        "-master_pl_name",
        "master.m3u8",
        "-var_stream_map",
        hls_stream_map(plan),
        str(out_dir / "stream_%v" / "index.m3u8"),
    ]


def _dash_output_args(
    segment_seconds: float, adaptation_sets: str, out_dir: Path, *, hls: bool = False
) -> list[str]:
    """The DASH muxer and its output names: ``manifest.mpd``, init and chunk
    segments per representation; ``hls``: also ``master.m3u8`` and
    ``media_<i>.m3u8`` over the same segments (pure)."""
    return [
        "-f",
        "dash",
        "-seg_duration",
        f"{segment_seconds:g}",
        "-use_template",
        "1",
        "-use_timeline",
        "1",
        *(["-hls_playlist", "1"] if hls else []),
        "-adaptation_sets",
        adaptation_sets,
        "-init_seg_name",
        "init-$RepresentationID$.m4s",
        "-media_seg_name",
        "chunk-$RepresentationID$-$Number%05d$.m4s",
        str(out_dir / "manifest.mpd"),
    ]


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
    """A video ladder with each rendition's audio (hls: muxed per variant;
    dash: the first rendition's); ``codec`` for renditions planned without
    one. Kept for callers of the first version; ``stream_args`` is the whole."""
    videos = [p if p.rendition.codec else replace(p, codec=codec) for p in planned]
    audios = [
        plan_audio(p.rendition.audio_bitrate, None, None)
        for p in (planned if fmt == "hls" else planned[:1])
    ]
    plan = StreamPlan(videos, audios if has_audio else [])
    return stream_args(
        path,
        demuxer,
        max_pixels,
        plan,
        fmt=fmt,
        preset=preset,
        segment_seconds=segment_seconds,
        out_dir=out_dir,
    )


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
    plan = StreamPlan([], [plan_audio(bitrate, None, None)], audio_group=True)
    return stream_args(
        path,
        demuxer,
        max_pixels,
        plan,
        fmt=fmt,
        preset="veryfast",
        segment_seconds=segment_seconds,
        out_dir=out_dir,
    )
