"""WebVTT subtitle renditions of the streaming task (pure): segmented
WebVTT for HLS, one WebVTT file and its AdaptationSet for DASH.

Input is a normalised SubRip sidecar (``tasks.subtitles`` writes one); out
come the text of each ``.vtt`` segment, the media playlist that lists them
and the master playlist's ``EXT-X-MEDIA`` line. The caller writes the files
next to the video renditions and adds ``SUBTITLES="subs"`` to each variant's
``EXT-X-STREAM-INF``. A cue that spans a segment boundary is repeated in
every segment it overlaps, as players expect."""

from __future__ import annotations

import io
import math
import re
import xml.etree.ElementTree as ET
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


# SubRip markup ffmpeg's srt muxer writes that WebVTT has no use for: ASS
# override blocks ({\an8}) and <font> tags (an .ass sidecar's style).
_ASS_OVERRIDE = re.compile(r"\{\\[^}]*\}")
_FONT_TAG = re.compile(r"</?font\b[^>]*>", re.IGNORECASE)
# The SubRip tags WebVTT has too (bold, italic, underline), kept as tags.
_KEPT_TAG = re.compile(r"&lt;(/?)([biu])>", re.IGNORECASE)


def _escape(text: str) -> str:
    """Cue text for WebVTT: SubRip's <b>/<i>/<u> kept, <font> and ASS
    override blocks dropped, every other & and < escaped ("-->" would end a
    cue's timing line)."""
    text = _FONT_TAG.sub("", _ASS_OVERRIDE.sub("", text))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace("-->", "--&gt;")
    return _KEPT_TAG.sub(lambda m: f"<{m.group(1)}{m.group(2).lower()}>", text)


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


def webvtt_document(cues: list[Cue]) -> str:
    """One WebVTT file holding every cue (the DASH rendition)."""
    return "WEBVTT\n" + "".join(
        f"\n{vtt_time(c.start)} --> {vtt_time(c.end)}\n{_escape(c.text)}\n" for c in cues
    )


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


def add_subtitle_group(master: str, media_line: str, group: str = "subs") -> str:
    """``master`` with ``media_line`` appended and ``SUBTITLES="<group>"`` on
    every ``EXT-X-STREAM-INF``. The line goes last so the variants keep their
    order (custom output names number them in master order)."""
    lines = []
    for line in master.splitlines():
        if line.startswith("#EXT-X-STREAM-INF:") and "SUBTITLES=" not in line:
            line = f'{line},SUBTITLES="{group}"'
        lines.append(line)
    while lines and not lines[-1].strip():
        lines.pop()
    lines.append(media_line)
    return "\n".join(lines) + "\n"


MPD_NS = "urn:mpeg:dash:schema:mpd:2011"


def add_vtt_adaptation_set(mpd: str, uri: str, language: str) -> str:
    """``mpd`` with a WebVTT AdaptationSet (contentType text, mimeType
    text/vtt, ``lang``) whose one Representation is the file ``uri``, added
    to every Period after its last AdaptationSet. The document's namespace
    prefixes are kept (the default one is the MPD schema's)."""
    # The MPD is the one ffmpeg just wrote (not input from outside).
    for _event, (prefix, ns) in ET.iterparse(io.StringIO(mpd), events=("start-ns",)):  # noqa: S314
        ET.register_namespace(prefix, ns)
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))  # noqa: S314
    root = ET.fromstring(mpd, parser=parser)  # noqa: S314
    ns = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
    q = (lambda tag: f"{{{ns}}}{tag}") if ns else (lambda tag: tag)
    periods = root.findall(q("Period"))
    if not periods:
        raise ValueError("the MPD has no Period")
    for period in periods:
        sets = period.findall(q("AdaptationSet"))
        ids = [int(a.get("id", "")) for a in sets if a.get("id", "").isdigit()]
        aset = ET.Element(
            q("AdaptationSet"),
            {
                "id": str(max(ids, default=-1) + 1),
                "contentType": "text",
                "mimeType": "text/vtt",
                "lang": language,
            },
        )
        ET.SubElement(
            aset, q("Role"), {"schemeIdUri": "urn:mpeg:dash:role:2011", "value": "subtitle"}
        )
        rep = ET.SubElement(aset, q("Representation"), {"id": "subtitles", "bandwidth": "256"})
        ET.SubElement(rep, q("BaseURL")).text = uri
        children = list(period)
        last = max((children.index(a) for a in sets), default=len(children) - 1)
        period.insert(last + 1, aset)
    ET.indent(root, space="\t")
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="utf-8"?>\n{body}\n'
