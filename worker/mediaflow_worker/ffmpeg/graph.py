"""Steps of a video filter graph that the transcode chains in (pure).

A step takes the label of its input and returns its filter chains and the
label of its output, so features (blurred regions, burned-in subtitles) add
to the transcode's graph without knowing what comes before or after them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

GraphStep = Callable[[str], tuple[list[str], str]]


def apply_steps(steps: Sequence[GraphStep], label: str) -> tuple[list[str], str]:
    """Run ``steps`` in order from ``label``; returns (chains, last label)."""
    chains: list[str] = []
    for step in steps:
        more, label = step(label)
        chains += more
    return chains, label
