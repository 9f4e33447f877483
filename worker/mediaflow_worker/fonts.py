"""The fonts of text watermarks: one table from a watermark's ``font`` name
to the font file shipped in the worker image (worker/Dockerfile installs
fonts-dejavu-core and fonts-noto-cjk; scripts/tools.sh the same on a
development host). A watermark without ``font`` uses MEDIAFLOW_FONT_FILE."""

from __future__ import annotations

FONT_FILES: dict[str, str] = {
    "sans": "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "serif": "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "mono": "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    # Collections: drawtext takes their first face (the Japanese-first
    # variant), which holds the full CJK ideograph set, kana, hangul and Latin.
    "cjk-sans": "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "cjk-serif": "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
}


def font_file(name: str | None, default: str) -> str:
    """The font file of a watermark's ``font`` (``default``: the worker's
    MEDIAFLOW_FONT_FILE, for watermarks without one)."""
    return FONT_FILES[name] if name is not None else default
