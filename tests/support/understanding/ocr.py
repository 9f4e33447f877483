"""Clips and images with KNOWN burned-in text, for the ``ocr`` task's tests
and its ``make bench`` measurement.

ffmpeg's drawtext writes each string from a file (``textfile=``: no quoting
of the text in the filtergraph) at a known time, place and size, in DejaVu
Sans or Noto Sans CJK (Debian's fonts-dejavu-core and fonts-noto-cjk), on a
plain background or on ffmpeg's busy ``testsrc2`` pattern.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
DEJAVU_BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
NOTO_CJK = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")


@dataclass(frozen=True)
class Caption:
    """One string drawn from ``start`` to ``end`` (seconds) with its top-left
    corner at ``x``, ``y`` (pixels) and ``size`` (pixels, drawtext fontsize)."""

    text: str
    start: float
    end: float
    x: int
    y: int
    size: int
    font: Path = DEJAVU
    boxed: bool = False  # a dark box behind it (what legible captions on video have)


@dataclass(frozen=True)
class TextClip:
    """A generated clip (or image) and the strings drawn on it."""

    path: Path
    size: tuple[int, int]
    duration: float  # 0 for a still image
    captions: tuple[Caption, ...] = field(default=())

    def shown_at(self, time: float) -> list[Caption]:
        """The captions visible at ``time``."""
        return [c for c in self.captions if c.start <= time < c.end]


# The default English clip: three strings of different sizes at known times
# and places, one of them twice (it must come back as two spans).
ENGLISH = (
    Caption("BREAKING NEWS", 0.0, 3.0, 40, 40, 48, DEJAVU_BOLD),
    Caption("Welcome to mediaflow", 1.0, 4.0, 40, 270, 32, boxed=True),
    Caption("Call 555 0199 today", 3.0, 6.0, 300, 150, 24),
    Caption("BREAKING NEWS", 5.0, 6.0, 40, 40, 48, DEJAVU_BOLD),
)
# Small print (14-18 px on a 640x360 frame): where the small models start
# to misread.
SMALL = (
    Caption("Terms and conditions apply", 0.0, 3.0, 20, 320, 14),
    Caption("Offer valid until 31.12.2026", 0.0, 3.0, 380, 20, 16),
    Caption("www.example.org/help", 1.0, 3.0, 200, 180, 18),
)
CHINESE = (
    Caption("欢迎观看新闻", 0.0, 2.0, 60, 60, 48, NOTO_CJK),
    Caption("今天天气很好", 2.0, 4.0, 60, 220, 40, NOTO_CJK, boxed=True),
)


def _drawtext(caption: Caption, textfile: Path, *, still: bool) -> str:
    # Paths here are the test's own (tmp_path and the Debian font paths):
    # escaped for the filtergraph anyway, as a path may contain ':'.
    def esc(path: Path) -> str:
        return str(path).replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'")

    options = [
        f"fontfile='{esc(caption.font)}'",
        f"textfile='{esc(textfile)}'",
        f"x={caption.x}",
        f"y={caption.y}",
        f"fontsize={caption.size}",
        "fontcolor=white",
        "expansion=none",  # the text is literal: "50%" is not a drawtext function
    ]
    if caption.boxed:
        options += ["box=1", "boxcolor=black@0.7", "boxborderw=8"]
    else:
        options += ["borderw=2", "bordercolor=black"]
    if not still:
        options.append(f"enable='between(t,{caption.start},{caption.end - 0.001})'")
    return "drawtext=" + ":".join(options)


def make_text_clip(
    directory: Path,
    name: str = "text",
    *,
    captions: tuple[Caption, ...] = ENGLISH,
    size: tuple[int, int] = (640, 360),
    duration: float = 6.0,
    busy: bool = False,
    fps: int = 10,
) -> TextClip:
    """An H.264 MP4 (no audio) with ``captions`` burned in, on a plain dark
    blue background or (``busy``) on testsrc2."""
    directory.mkdir(parents=True, exist_ok=True)
    width, height = size
    source = (
        f"testsrc2=s={width}x{height}:r={fps}:d={duration}"
        if busy
        else f"color=c=0x203050:s={width}x{height}:r={fps}:d={duration}"
    )
    filters = []
    for index, caption in enumerate(captions):
        textfile = directory / f"{name}.caption{index}.txt"
        textfile.write_text(caption.text, encoding="utf-8")
        filters.append(_drawtext(caption, textfile, still=False))
    path = directory / f"{name}.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            source,
            "-vf",
            ",".join([*filters, "format=yuv420p"]),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "18",
            str(path),
        ],
        check=True,
        timeout=120,
    )
    return TextClip(path, size, duration, captions)


def make_text_image(
    directory: Path,
    name: str = "still",
    *,
    captions: tuple[Caption, ...] = (Caption("Summer Sale 50% off", 0, 0, 40, 100, 40),),
    size: tuple[int, int] = (640, 360),
) -> TextClip:
    """A one-frame GIF with ``captions`` drawn (their times are ignored): the
    worker takes no PNG or JPEG upload, a one-picture GIF is its still image."""
    directory.mkdir(parents=True, exist_ok=True)
    filters = []
    for index, caption in enumerate(captions):
        textfile = directory / f"{name}.caption{index}.txt"
        textfile.write_text(caption.text, encoding="utf-8")
        filters.append(_drawtext(caption, textfile, still=True))
    path = directory / f"{name}.gif"
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"color=c=0x203050:s={size[0]}x{size[1]}",
            "-vf",
            ",".join(filters),
            "-frames:v",
            "1",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    pinned = tuple(Caption(c.text, 0.0, 0.0, c.x, c.y, c.size, c.font, c.boxed) for c in captions)
    return TextClip(path, size, 0.0, pinned)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between ``a`` and ``b`` (characters)."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1]


def character_accuracy(expected: str, found: str) -> float:
    """1 - CER: 1 - edit distance / length of ``expected`` (floored at 0)."""
    if not expected:
        return 1.0 if not found else 0.0
    return max(0.0, 1.0 - edit_distance(expected, found) / len(expected))
