"""The ``adaptiveStreaming`` commands: the ladder that fits the source, one
decode split into every rendition, and the audio-only variant (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mediaflow_api.tasks import Rendition, parse_bitrate
from mediaflow_worker.ffmpeg.codecs import VIDEO_ENCODERS
from mediaflow_worker.ffmpeg.common import base_args, fit_size, input_args, strip_metadata_args


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
