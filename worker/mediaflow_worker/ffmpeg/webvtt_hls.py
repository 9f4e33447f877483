"""Segmented WebVTT for an HLS subtitle rendition (pure): the hook for the
streaming task, not yet called by it.

Input is a normalised SubRip sidecar (``tasks.subtitles`` writes one); out
come the text of each ``.vtt`` segment, the media playlist that lists them
and the master playlist's ``EXT-X-MEDIA`` line. The caller writes the files
next to the video renditions and adds ``SUBTITLES="subs"`` to each variant's
``EXT-X-STREAM-INF``. A cue that spans a segment boundary is repeated in
every segment it overlaps, as players expect."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_TIMING = re.compile(r"^(\d+):(\d{2}):(\d{2})[,.](\d{3})\s*-->\s*(\d+):(\d{2}):(\d{2})[,.](\d{3})")


@dataclass(frozen=True)
class Cue:
    """One subtitle event, times in seconds."""

    start: float
    end: float
    text: str


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_srt(text: str) -> list[Cue]:
    """The cues of a SubRip text (as ffmpeg's srt muxer writes it)."""
    cues = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()):
        lines = block.split("\n")
        for i, line in enumerate(lines):
            match = _TIMING.match(line.strip())
            if match:
                g = match.groups()
                body = "\n".join(lines[i + 1 :]).strip()
                if body:
                    cues.append(Cue(_seconds(*g[:4]), _seconds(*g[4:]), body))
                break
    return cues


def vtt_time(value: float) -> str:
    """A WebVTT timestamp (``00:01:02.500``)."""
    ms = round(value * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _escape(text: str) -> str:
    # "-->" would end a cue's timing line; & and < start entities and tags.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("-->", "--&gt;")


def webvtt_segments(
    cues: list[Cue], segment_seconds: float, duration: float, mpegts: int | None = None
) -> list[str]:
    """The text of each WebVTT segment covering ``duration`` seconds.
    ``mpegts``: the 90 kHz timestamp the video's MPEG-TS segments start at
    (``X-TIMESTAMP-MAP``); None for fMP4 segments."""
    count = max(1, math.ceil(duration / segment_seconds - 1e-9))
    header = "WEBVTT\n"
    if mpegts is not None:
        header += f"X-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:00:00:00.000\n"
    segments = []
    for n in range(count):
        start, end = n * segment_seconds, min((n + 1) * segment_seconds, duration)
        body = [
            f"\n{vtt_time(c.start)} --> {vtt_time(c.end)}\n{_escape(c.text)}\n"
            for c in cues
            if c.start < end and c.end > start
        ]
        segments.append(header + "".join(body))
    return segments


def webvtt_playlist(names: list[str], segment_seconds: float, duration: float) -> str:
    """The media playlist of the segments ``names`` (in order)."""
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{math.ceil(segment_seconds)}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
    ]
    for n, name in enumerate(names):
        length = min(segment_seconds, duration - n * segment_seconds)
        lines += [f"#EXTINF:{max(length, 0.001):.3f},", name]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def master_media_line(uri: str, language: str, name: str, group: str = "subs") -> str:
    """The master playlist's ``EXT-X-MEDIA`` entry of the subtitle rendition
    (``language``/``name`` come from the validated spec: ISO 639-2 letters)."""
    return (
        f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{group}",NAME="{name}",'
        f'LANGUAGE="{language}",DEFAULT=NO,AUTOSELECT=YES,URI="{uri}"'
    )
