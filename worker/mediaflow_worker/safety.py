"""Safety rules for hostile input: what may be opened, and how.

An uploaded ".mp4" can be an HLS or concat playlist that makes FFmpeg read
``/etc/passwd`` or an internal URL into the output. Defence in depth:

1. ``sniff``: the first bytes must not look like text (playlists, concat lists,
   SDP, HTML...) before FFmpeg ever sees the file;
2. every ffprobe/ffmpeg input gets ``-protocol_whitelist file`` and
   ``-format_whitelist`` with the demuxer allow-list (so ``hls``/``concat`` can
   not even be selected by probing);
3. after probing, the detected demuxer must be in the allow-list, and it is
   then *forced* with ``-f`` for the real run;
4. declared pixels, duration and input size are checked against ``Limits``
   before decoding, and ``-max_pixels`` bounds what a decoder may allocate.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mediaflow_worker.errors import EmptyInputError, InputRejectedError

# Demuxer names as libavformat spells them (the first name of each demuxer).
# Deliberately absent: hls, concat, dash, image2 (file patterns), tty (text),
# lavfi, sdp/rtp/rtsp, ffmetadata, and every subtitle or playlist format.
ALLOWED_DEMUXERS: tuple[str, ...] = (
    "mov",  # mov,mp4,m4a,3gp,3g2,mj2
    "matroska",  # matroska,webm
    "avi",
    "mpegts",
    "mpeg",  # MPEG-PS
    "flv",
    "asf",
    "mp3",
    "aac",
    "wav",
    "flac",
    "ogg",
    "gif",
    "ivf",
    "h264",
    "hevc",
    "m4v",
)
# For watermark images (also user-supplied, so equally restricted).
ALLOWED_IMAGE_DEMUXERS: tuple[str, ...] = ("png_pipe", "jpeg_pipe", "webp_pipe")
# For subtitle sidecars only (text formats that reference no other file);
# never for the upload itself.
ALLOWED_SUBTITLE_DEMUXERS: tuple[str, ...] = ("srt", "webvtt", "ass")
# SVG watermarks: only ever *forced* (-f svg_pipe) in the one command that
# rasterises them to PNG (ffmpeg.watermark.svg_raster_args), never probed for.
# librsvg, as ffmpeg feeds it (from memory, no base file), loads nothing an
# SVG references: no files, no URLs (tests/integration/worker/test_watermarks_everywhere.py).
SVG_DEMUXER = "svg_pipe"

SNIFF_BYTES = 4096
# Text markers of playlists and other "formats" that reference other files.
_TEXT_MARKERS: tuple[bytes, ...] = (
    b"#EXTM3U",
    b"#EXT-X-",
    b"ffconcat",
    b"file ",
    b"<?xml",
    b"<MPD",
    b"<html",
    b"<!DOCTYPE",
    b"v=0",  # SDP
    b"[playlist]",
    b"http://",
    b"https://",
    b"file:",
)


def protocol_args() -> list[str]:
    """Input options that keep FFmpeg to local files only."""
    return ["-protocol_whitelist", "file"]


def demuxer_whitelist_args(demuxers: Sequence[str] = ALLOWED_DEMUXERS) -> list[str]:
    """Input options that stop probing from choosing any other demuxer."""
    return ["-format_whitelist", ",".join(demuxers)]


def unrestricted_inputs(args: Sequence[str]) -> list[str]:
    """The ``-i`` inputs of an ffmpeg/ffprobe command that are *not* opened
    under the rules: each must be a ``file:`` path, preceded (among its own
    input options) by ``-protocol_whitelist file`` and by either a forced
    allow-listed demuxer (``-f``) or ``-format_whitelist``. Empty means safe."""
    bad = []
    options_start = 0
    for i, arg in enumerate(args):
        if arg != "-i" or i + 1 >= len(args):
            continue
        options = list(args[options_start:i])
        target = args[i + 1]
        options_start = i + 2
        whitelist = _option(options, "-protocol_whitelist")
        forced = _option(options, "-f")
        formats = _option(options, "-format_whitelist")
        allowed = {*ALLOWED_DEMUXERS, *ALLOWED_IMAGE_DEMUXERS, *ALLOWED_SUBTITLE_DEMUXERS}
        # SVG only when forced (never detected by probing a list of formats).
        demuxers_ok = (forced is not None and forced in (*allowed, SVG_DEMUXER)) or (
            formats is not None and set(formats.split(",")) <= allowed
        )
        if whitelist != "file" or not target.startswith("file:") or not demuxers_ok:
            bad.append(target)
    return bad


def _option(options: list[str], name: str) -> str | None:
    """The value of the last ``name`` option in ``options``."""
    value = None
    for i, opt in enumerate(options[:-1]):
        if opt == name:
            value = options[i + 1]
    return value


def check_restricted(args: Sequence[str]) -> None:
    """Refuse to start a command with an input opened outside the rules
    (a programming error, never the input's fault)."""
    bad = unrestricted_inputs(args)
    if bad:
        raise AssertionError(f"refusing to run ffmpeg with unrestricted input(s): {bad}")


def _looks_like_text(head: bytes) -> bool:
    """True when the bytes are (almost) all printable ASCII/UTF-8 text."""
    if not head or b"\x00" in head:
        # Playlists and reference lists are text and never hold a NUL byte;
        # binary headers (ID3 with XMP, for one) can look like text otherwise.
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the end of the sample is still text.
        try:
            text = head[:-4].decode("utf-8")
        except UnicodeDecodeError:
            return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.95 * len(text)


def sniff(path: Path) -> None:
    """Reject empty files and text files (playlists, concat lists, HTML)
    before any FFmpeg process opens them."""
    size = path.stat().st_size
    if size == 0:
        raise EmptyInputError("the input is empty (0 bytes)")
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    for marker in _TEXT_MARKERS:
        if stripped[: len(marker)].lower() == marker.lower():
            raise InputRejectedError(
                "the input is a text playlist or reference list, not media "
                f"(starts with {marker.decode()!r})"
            )
    if _looks_like_text(head):
        raise InputRejectedError("the input is a text file, not media")


def demuxer_name(format_name: str) -> str:
    """The name to force with ``-f`` from ffprobe's ``format_name``
    (``"mov,mp4,m4a,3gp,3g2,mj2"`` -> ``"mov"``)."""
    return format_name.split(",")[0]


def check_demuxer(format_name: str, allowed: Sequence[str] = ALLOWED_DEMUXERS) -> str:
    """The demuxer to force, or ``InputRejectedError`` when not allow-listed."""
    name = demuxer_name(format_name)
    if name not in allowed:
        raise InputRejectedError(f"input format {format_name!r} is not allowed")
    return name


def check_limits(
    *,
    duration: float | None,
    pixels: int | None,
    size: int,
    max_duration: float,
    max_pixels: int,
    max_size: int,
) -> None:
    """Refuse inputs beyond the Job's limits (values from the probe)."""
    if size > max_size:
        raise InputRejectedError(f"the input is {size} bytes; the limit is {max_size}")
    if duration is not None and duration > max_duration:
        raise InputRejectedError(
            f"the input lasts {duration:.0f} s; the limit is {max_duration:.0f} s"
        )
    if pixels is not None and pixels > max_pixels:
        raise InputRejectedError(
            f"the input declares {pixels} pixels per frame; the limit is {max_pixels}"
        )
