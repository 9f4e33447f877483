"""Privacy regions on real output: inside the region and its time range the
picture loses its detail (blur or mosaic); outside either it is untouched."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from .helpers import run_local, write_workflow

pytestmark = pytest.mark.integration

# The region in the 320x240 source: x, y, w, h.
REGION = (40, 40, 120, 100)


def _gray(path: Path, at: float, box: tuple[int, int, int, int]) -> list[list[int]]:
    """Rows of gray pixels of ``box`` (x, y, w, h) of the frame at ``at`` s."""
    x, y, w, h = box
    done = subprocess.run(
        [
            "ffmpeg", "-v", "error", "-ss", f"{at}", "-i", str(path), "-frames:v", "1",
            "-vf", f"crop={w}:{h}:{x}:{y}", "-f", "rawvideo", "-pix_fmt", "gray", "-",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )  # fmt: skip
    data = done.stdout
    assert len(data) == w * h
    return [list(data[r * w : (r + 1) * w]) for r in range(h)]


def _detail(rows: list[list[int]]) -> float:
    """Mean absolute difference of horizontal neighbours: edges and texture."""
    diffs = [abs(a - b) for row in rows for a, b in itertools.pairwise(row)]
    return sum(diffs) / len(diffs)


def _difference(a: list[list[int]], b: list[list[int]]) -> float:
    """Mean absolute difference of two equally sized areas."""
    pairs = [(p, q) for ra, rb in zip(a, b, strict=True) for p, q in zip(ra, rb, strict=True)]
    return sum(abs(p - q) for p, q in pairs) / len(pairs)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same clip transcoded plain, blurred and pixelated (1-2 s)."""
    tmp = tmp_path_factory.mktemp("privacy")
    # A moving 4-pixel checkerboard: detail everywhere, identical every run.
    clip = tmp / "clip.mp4"
    checker = "if(mod(floor(X/4)+floor(Y/4)+floor(T*5),2),220,30)"
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-y", "-f", "lavfi",
            "-i", f"nullsrc=s=320x240:r=25:d=3,geq=lum='{checker}':cb=128:cr=128",
            "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p",
            str(clip),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    x, y, w, h = REGION
    region = {
        "left": str(x),
        "top": str(y),
        "width": str(w),
        "height": str(h),
        "start": 1,
        "end": 2,
    }
    video = {"preset": "ultrafast", "crf": 12}
    tasks = [
        {"name": "plain", "transcode": {"video": video}},
        {"name": "blur", "transcode": {"video": video, "privacy": {"regions": [region]}}},
        {
            "name": "mosaic",
            "transcode": {
                "video": video,
                "privacy": {"regions": [{**region, "style": "mosaic", "strength": 12}]},
            },
        },
    ]
    out = tmp / "out"
    done = run_local(write_workflow(tmp, tasks), clip, out)
    assert done.returncode == 0, done.stderr
    return {name: out / name / f"{name}.mp4" for name in ("plain", "blur", "mosaic")}


@pytest.mark.parametrize("style", ["blur", "mosaic"])
def test_region_loses_its_detail_only_inside_its_time_range(
    outputs: dict[str, Path], style: str
) -> None:
    plain, hidden = outputs["plain"], outputs[style]
    inner = (REGION[0] + 8, REGION[1] + 8, REGION[2] - 16, REGION[3] - 16)
    reference = _detail(_gray(plain, 1.5, inner))
    assert reference > 5, "the test pattern should have detail to lose"
    # Inside the time range: most of the detail is gone.
    assert _detail(_gray(hidden, 1.5, inner)) < 0.4 * reference
    # Before and after it: the region is as it was.
    for at in (0.5, 2.5):
        assert _difference(_gray(hidden, at, inner), _gray(plain, at, inner)) < 3


@pytest.mark.parametrize("style", ["blur", "mosaic"])
def test_the_picture_outside_the_region_is_untouched(outputs: dict[str, Path], style: str) -> None:
    # Right of the region and below it, during the time range.
    for box in ((180, 0, 140, 240), (0, 160, 320, 80)):
        before = _gray(outputs["plain"], 1.5, box)
        after = _gray(outputs[style], 1.5, box)
        assert _difference(after, before) < 3, box
