"""Subtitles of a transcode (pure): normalising a sidecar, the burn-in
filter with its style, and the soft subtitle stream's input and mapping.

A sidecar is user input: it is first converted by ffmpeg (demuxer forced
from its extension, local files only) into a normalised .srt or .ass file
that this module then counts and measures; only that normalised file ever
reaches the filter graph or the muxer."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mediaflow_api.tasks import SubtitleStyle, parse_length
from mediaflow_worker import safety
from mediaflow_worker.ffmpeg.common import base_args, quote_filter_value, seconds
from mediaflow_worker.ffmpeg.graph import GraphStep

# Sidecar extension -> the ffmpeg demuxer forced on it.
SIDECAR_DEMUXERS = {"srt": "srt", "vtt": "webvtt", "ass": "ass"}
# The only demuxers a sidecar (or its normalised copy) may be opened with.
SUBTITLE_DEMUXERS = safety.ALLOWED_SUBTITLE_DEMUXERS
# The soft subtitle codec per container; Matroska keeps srt or ass as normalised.
SOFT_CODECS = {"mp4": "mov_text", "mov": "mov_text", "webm": "webvtt"}
# libass's script resolution when a file names none (ffmpeg's srt -> ass).
DEFAULT_PLAY_RES_Y = 288
# ASS numpad alignment of the three positions (2: bottom centre).
ALIGNMENT = {"bottom": 2, "middle": 5, "top": 8}

_PLAY_RES_Y = re.compile(r"^PlayResY:\s*([0-9]{1,5})\s*$", re.MULTILINE)


@dataclass(frozen=True)
class SubtitleTrack:
    """A validated, normalised sidecar ready for the command."""

    path: Path  # the normalised file (.srt or .ass)
    fmt: str  # its format: "srt" or "ass"
    source_fmt: str  # the sidecar's extension: srt, vtt or ass
    cues: int
    play_res_y: int  # the script's height in ASS units (ass only)


def sidecar_format(name: str) -> str:
    """The format (``srt``/``vtt``/``ass``) of a sidecar name, from its extension."""
    ext = name.rsplit(".", 1)[-1].lower()
    if ext not in SIDECAR_DEMUXERS:
        raise ValueError(f"not a subtitle file name (.srt, .vtt, .ass): {name!r}")
    return ext


def normalised_format(source_fmt: str, burn_in: bool) -> str:
    """What a sidecar becomes: ASS for burn-in (libass draws it, and its
    script resolution gives the style sizes a scale) and for .ass sidecars
    (styles kept), SubRip otherwise."""
    return "ass" if burn_in or source_fmt == "ass" else "srt"


def normalise_args(
    source: Path, source_fmt: str, out: Path, out_fmt: str, start: float = 0.0
) -> list[str]:
    """ffmpeg command converting a sidecar into ``out`` (srt or ass).
    ``start``: the transcode's trim start; the cues are moved to output time
    (a cue that began before it is dropped)."""
    return [
        *base_args(),
        *safety.protocol_args(),
        *safety.demuxer_whitelist_args(SUBTITLE_DEMUXERS),
        "-f",
        SIDECAR_DEMUXERS[source_fmt],
        *(["-ss", seconds(start)] if start else []),
        "-i",
        f"file:{source}",
        "-map",
        "0:s:0",
        "-c:s",
        out_fmt,
        "-f",
        out_fmt,
        str(out),
    ]


def count_cues(text: str, fmt: str) -> int:
    """Events in a normalised file: SubRip timing lines or ASS Dialogue lines."""
    if fmt == "srt":
        return sum(1 for line in text.splitlines() if "-->" in line)
    return sum(1 for line in text.splitlines() if line.startswith("Dialogue:"))


def play_res_y(text: str) -> int:
    """The ``PlayResY`` of an ASS script (the unit of its sizes)."""
    match = _PLAY_RES_Y.search(text)
    value = int(match.group(1)) if match else 0
    return value if value > 0 else DEFAULT_PLAY_RES_Y


def _ass_color(hex_color: str) -> str:
    """'#rrggbb' as ASS '&H00BBGGRR' (alpha 00: opaque)."""
    r, g, b = hex_color[1:3], hex_color[3:5], hex_color[5:7]
    return f"&H00{b}{g}{r}".upper()


def _px(length: str, reference: int) -> float:
    number, percent = parse_length(length)
    return reference * number / 100 if percent else number


def force_style(
    style: SubtitleStyle | None, frame_height: int, play_res: int, defaults: bool
) -> str:
    """The ``force_style`` of the burn-in: sizes computed from the output
    frame in the script's units (libass scales PlayResY to the frame).
    ``defaults``: fill unset fields with the documented defaults (.srt/.vtt);
    an .ass sidecar keeps its own style for them."""
    style = style or SubtitleStyle()
    unit = play_res / frame_height  # script units per output pixel
    parts: list[str] = []
    font_size = style.font_size or ("5%" if defaults else None)
    size_px = _px(font_size, frame_height) if font_size else None
    if size_px is not None:
        parts.append(f"FontSize={max(1.0, size_px * unit):.2f}")
    color = style.font_color or ("#ffffff" if defaults else None)
    if color:
        parts.append(f"PrimaryColour={_ass_color(color)}")
    outline_color = style.outline_color or ("#000000" if defaults else None)
    if outline_color:
        parts.append(f"OutlineColour={_ass_color(outline_color)}")
    outline = style.outline
    if outline is None and defaults and size_px is not None:
        outline = max(1.0, size_px / 15)
    if outline is not None:
        parts += ["BorderStyle=1", f"Outline={outline * unit:.2f}"]
    position = style.position or ("bottom" if defaults else None)
    if position:
        parts.append(f"Alignment={ALIGNMENT[position]}")
    margin = style.margin or ("5%" if defaults else None)
    if margin:
        parts.append(f"MarginV={round(_px(margin, frame_height) * unit)}")
    return ",".join(parts)


def burn_in_filter(
    track: SubtitleTrack, style: SubtitleStyle | None, frame: tuple[int, int], fonts_dir: str
) -> str:
    """The ``subtitles`` filter drawing ``track`` on a frame of ``frame`` size."""
    styles = force_style(style, frame[1], track.play_res_y, defaults=track.source_fmt != "ass")
    value = (
        f"subtitles=filename={quote_filter_value(str(track.path))}"
        f":original_size={frame[0]}x{frame[1]}"
        f":fontsdir={quote_filter_value(fonts_dir)}"
    )
    if styles:
        value += f":force_style={quote_filter_value(styles)}"
    return value


def burn_in_step(
    track: SubtitleTrack, style: SubtitleStyle | None, frame: tuple[int, int], fonts_dir: str
) -> GraphStep:
    """The burn-in as a step of the transcode's video graph."""
    chain = burn_in_filter(track, style, frame, fonts_dir)

    def step(label: str) -> tuple[list[str], str]:
        return [f"[{label}]{chain}[subs]"], "subs"

    return step


def soft_codec(container: str, track: SubtitleTrack) -> str:
    """The subtitle codec of a soft stream in ``container``."""
    return SOFT_CODECS.get(container, track.fmt)


def soft_input_args(track: SubtitleTrack) -> list[str]:
    """The normalised sidecar as an extra (restricted) ffmpeg input."""
    return [
        *safety.protocol_args(),
        *safety.demuxer_whitelist_args(SUBTITLE_DEMUXERS),
        "-f",
        track.fmt,
        "-i",
        f"file:{track.path}",
    ]


def soft_output_args(
    track: SubtitleTrack, input_index: int, container: str, language: str | None
) -> list[str]:
    """Map the subtitle input as the output's subtitle stream, tagged."""
    return [
        "-map",
        f"{input_index}:s:0",
        "-c:s",
        soft_codec(container, track),
        "-metadata:s:s:0",
        f"language={language or 'und'}",
    ]
