"""The ``quality`` commands: one decode running every detector over the
video and the audio, and the packet listing of the timestamp check (pure).

The decode writes nothing: every detector reports through the log, which the
task parses as it streams (``understanding.quality.LogParser``). The log level
is ``verbose`` because that is where ffmpeg says that it re-created the filter
graph for a new picture size, sample rate or channel layout (the mid-stream
changes). Filter instances are named (``metadata@all``) so that the parser
knows which branch printed a line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mediaflow_worker import safety
from mediaflow_worker.ffmpeg.common import base_args, input_args

# The small picture of the every-frame branch: black, freeze and duplicate
# detection look at whole pictures, and a small one costs far less.
SMALL_WIDTH = 320
# Luma, colour, black edges and blur are measured on pictures at most this wide.
STATS_WIDTH = 640
# Blockiness is measured on (at most) this middle part of the decoded picture.
BLOCK_CROP = (640, 480)


@dataclass(frozen=True)
class VideoChecks:
    """What the video branch runs (None/False: left out)."""

    small_size: tuple[int, int]  # the every-frame branch works at this size
    black: tuple[float, float] | None  # (min seconds, pixel threshold 0-1)
    freeze: tuple[float, float] | None  # (min seconds, noise dB)
    # Every frame's time (dropped frames, dating a new picture size) and
    # interlacing (idet).
    frames: bool
    duplicates: bool  # mpdecimate
    stats_step: float | None  # seconds between signalstats/blur/block/crop samples


@dataclass(frozen=True)
class AudioChecks:
    """What the audio branch runs (None/False: left out)."""

    silence: tuple[float, float] | None  # (threshold dB, min seconds)
    loudness: bool
    phase_min_seconds: float | None  # only for two or more channels


def _video_chains(checks: VideoChecks) -> tuple[list[str], list[str]]:
    """The video chains and their output labels."""
    every: list[str] = []
    if checks.frames:
        # idet needs whole-height pictures: its fields are the lines.
        every.append("idet=intl_thres=1.5")
    width, height = checks.small_size
    every.append(f"scale={width}:{height}:flags=area")
    if checks.black is not None:
        every.append(f"blackdetect=d={checks.black[0]:g}:pix_th={checks.black[1]:g}")
    if checks.freeze is not None:
        every.append(f"freezedetect=n={checks.freeze[1]:g}dB:d={checks.freeze[0]:g}")
    if checks.frames:
        every.append("metadata@all=mode=print:key=lavfi.idet.single.current_frame")
    if checks.duplicates:
        # Frames mpdecimate lets through are printed again: the others repeated
        # the one before (compared with the times of every frame, printed
        # above). Stricter than mpdecimate's defaults (hi=768, lo=320,
        # frac=0.33), which drop slow motion too: a repeat differs by coding
        # noise only.
        every += [
            "mpdecimate=hi=128:lo=64:frac=0.1",
            "metadata@kept=mode=print:key=lavfi.idet.single.current_frame",
        ]
    chains: list[str] = []
    labels: list[str] = []
    stats = checks.stats_step is not None
    source = "[0:V:0]"
    if stats:
        chains.append("[0:V:0]split=2[vevery][vstats]")
        source = "[vevery]"
    chains.append(source + ",".join(every) + "[vout0]")
    labels.append("[vout0]")
    if checks.stats_step is not None:
        # select, not fps: fps would fill a gap (or a restart of the graph
        # after a size change) with copies of one picture.
        step = f"{max(0.001, checks.stats_step - 0.001):g}"
        chains.append(
            f"[vstats]select='isnan(prev_selected_t)+gte(t-prev_selected_t,{step})',"
            "split=2[vpicture][vblocks]"
        )
        # Luma, colour, black edges and blur on a picture at most STATS_WIDTH
        # wide: cheap, and blur (an edge width in pixels) is then measured at
        # one size, so one threshold fits every resolution.
        chains.append(
            f"[vpicture]scale='min({STATS_WIDTH},iw)':-2,signalstats,"
            "cropdetect=round=2:reset=1:skip=0,blurdetect,metadata@stats=mode=print[vout1]"
        )
        # Blockiness on the picture as decoded (scaling would blur the block
        # grid away), cut to its middle along the 16-pixel grid: the costliest
        # detector, on a fraction of a large picture.
        crop = (
            f"crop='min(iw,{BLOCK_CROP[0]})':'min(ih,{BLOCK_CROP[1]})':"
            f"'floor((iw-min(iw,{BLOCK_CROP[0]}))/32)*16':"
            f"'floor((ih-min(ih,{BLOCK_CROP[1]}))/32)*16'"
        )
        chains.append(
            f"[vblocks]{crop},blockdetect,metadata@block=mode=print:key=lavfi.block[vout2]"
        )
        labels += ["[vout1]", "[vout2]"]
    return chains, labels


def _audio_chain(checks: AudioChecks) -> str:
    filters: list[str] = []
    if checks.silence is not None:
        filters.append(f"silencedetect=n={checks.silence[0]:g}dB:d={checks.silence[1]:g}")
    if checks.phase_min_seconds is not None:
        filters.append(f"aphasemeter=video=0:phasing=1:duration={checks.phase_min_seconds:g}")
    # Always there, and last: besides the loudness, its 100 ms log lines carry
    # the audio clock that dates a sample-rate or channel-layout change.
    filters.append("ebur128=peak=true:framelog=verbose")
    return "[0:a:0]" + ",".join(filters) + "[aout]"


def quality_args(
    path: Path,
    demuxer: str,
    max_pixels: int,
    *,
    video: VideoChecks | None,
    audio: AudioChecks | None,
) -> list[str] | None:
    """The one decode running every detector; None when nothing applies."""
    chains: list[str] = []
    labels: list[str] = []
    if video is not None:
        video_chains, video_labels = _video_chains(video)
        chains += video_chains
        labels += video_labels
    if audio is not None:
        chains.append(_audio_chain(audio))
        labels.append("[aout]")
    if not chains:
        return None
    args = base_args()
    args[args.index("error")] = "verbose"
    maps = [arg for label in labels for arg in ("-map", label)]
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


def packets_args(path: Path, demuxer: str) -> list[str]:
    """ffprobe listing every packet's stream, DTS and duration (no decoding)."""
    return [
        "ffprobe",
        "-v",
        "error",
        *safety.protocol_args(),
        "-f",
        demuxer,
        "-show_entries",
        "packet=stream_index,dts_time,duration_time",
        "-of",
        "csv=p=0",
        "-i",
        f"file:{path}",
    ]
