"""Clips for the ``cover`` task whose good and bad stretches are known.

``segments_clip`` concatenates lavfi sources, one kind of picture per
segment: black, sharp colourful test patterns (the only stretches a cover
may come from), the same pattern blurred, darkened and over-exposed, and a
cross-fade between two sharp scenes. ``KnownSegments.good`` holds the sharp
stretches with ``MARGIN`` trimmed at each end: a frame that close to a cut is
transitional and must not be chosen either.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

# Seconds at each end of a good segment where a cover is still wrong (the
# neighbouring segment is less than this far away).
MARGIN = 0.25


@dataclass(frozen=True)
class Segment:
    """One stretch of the clip: ``kind`` is ``good`` or the reason a frame
    from it must be rejected (``black``, ``blurred``, ``dark``, ``bright``,
    ``transition``)."""

    kind: str
    start: float
    end: float


@dataclass(frozen=True)
class KnownSegments:
    """A generated clip and its segments, in time order."""

    path: Path
    segments: tuple[Segment, ...]
    size: tuple[int, int]

    @property
    def duration(self) -> float:
        """Length of the clip in seconds."""
        return self.segments[-1].end

    def kind_at(self, time: float) -> str:
        """The kind of segment at ``time``; ``transition`` within ``MARGIN``
        of a boundary between segments."""
        for seg in self.segments:
            if seg.start <= time < seg.end:
                near_cut = (seg.start > 0 and time - seg.start < MARGIN) or (
                    seg.end < self.duration and seg.end - time < MARGIN
                )
                return "transition" if near_cut else seg.kind
        return "outside"

    def good(self) -> list[Segment]:
        """The good segments."""
        return [s for s in self.segments if s.kind == "good"]


# (kind, lavfi source with {d} for the duration and {s} for the size, seconds)
# in clip order. testsrc2 and mandelbrot move: every frame differs, as in real
# video. The blur, dark and bright segments reuse the good pattern, so only
# the defect tells them apart.
_DARK = "format=rgb24,colorlevels=romax=0.25:gomax=0.25:bomax=0.25"
_BRIGHT = "format=rgb24,colorlevels=romin=0.85:gomin=0.85:bomin=0.85"
PLAN: tuple[tuple[str, str, float], ...] = (
    ("black", "color=c=black:s={s}:r=25:d={d}", 1.0),
    ("good", "testsrc2=s={s}:r=25:d={d}", 3.0),
    ("blurred", "testsrc2=s={s}:r=25:d={d},gblur=sigma=6", 2.0),
    ("dark", "testsrc2=s={s}:r=25:d={d}," + _DARK, 2.0),
    ("bright", "testsrc2=s={s}:r=25:d={d}," + _BRIGHT, 1.5),
    ("good", "mandelbrot=s={s}:r=25,trim=duration={d}", 3.0),
    # The cross-fade: the mandelbrot fades into the next segment, 1.5 s long.
    ("transition", "", 1.5),
    ("good", "smptehdbars=s={s}:r=25:d={d},drawgrid=w=16:h=16:c=white@0.6", 3.0),
)


def segments_clip(
    directory: Path,
    name: str = "cover-segments",
    *,
    size: tuple[int, int] = (320, 180),
    plan: tuple[tuple[str, str, float], ...] = PLAN,
) -> KnownSegments:
    """Render ``plan`` into ``directory/name.mp4`` (H.264, 25 fps, no audio)."""
    s = f"{size[0]}x{size[1]}"
    chains: list[str] = []
    labels: list[str] = []
    segments: list[Segment] = []
    at = 0.0
    for i, (kind, source, seconds) in enumerate(plan):
        if kind == "transition":
            # Fade from the previous segment's source to the next one's.
            before = plan[i - 1][1].format(s=s, d=seconds)
            after = plan[i + 1][1].format(s=s, d=seconds)
            chains.append(f"{before},setpts=PTS-STARTPTS[a{i}]")
            chains.append(f"{after},setpts=PTS-STARTPTS[b{i}]")
            chains.append(
                f"[a{i}][b{i}]xfade=transition=fade:duration={seconds}:offset=0,"
                f"trim=duration={seconds},format=yuv420p,setsar=1[v{i}]"
            )
        else:
            chains.append(
                f"{source.format(s=s, d=seconds)},format=yuv420p,setsar=1,setpts=PTS-STARTPTS[v{i}]"
            )
        labels.append(f"[v{i}]")
        segments.append(Segment(kind, round(at, 3), round(at + seconds, 3)))
        at += seconds
    chains.append("".join(labels) + f"concat=n={len(labels)}:v=1:a=0[out]")
    path = directory / f"{name}.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-v",
            "error",
            "-y",
            "-filter_complex",
            ";".join(chains),
            "-map",
            "[out]",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "18",
            "-g",
            "25",
            str(path),
        ],
        check=True,
        timeout=120,
    )
    return KnownSegments(path, tuple(segments), size)
