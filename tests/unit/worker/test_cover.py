"""The ``cover`` task's logic on synthetic frames: the candidate grid, why a
frame is rejected, scores, clustering and the diverse selection."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from pydantic import ValidationError

from mediaflow_api.tasks import CoverTask, TaskSpec, needs_ml_image
from mediaflow_worker.understanding import cover
from mediaflow_worker.understanding.cover import (
    Candidate,
    Features,
    analyse,
    histogram,
    measure,
    plan_grid,
    reject_reason,
    select,
    transition_distance,
    transition_limit,
)

if TYPE_CHECKING:
    from mediaflow_worker.tasks import TaskContext

pytestmark = pytest.mark.unit

# Task specs both the models and the API server (test_task_cel_twins.py)
# accept or reject; the needle is in both messages.
COVER_VALID: list[dict[str, Any]] = [
    {"name": "covers", "cover": {}},
    {
        "name": "covers-images",
        "cover": {
            "count": 20,
            "candidateIntervalSeconds": 2,
            "maxCandidates": 300,
            "minSpacingSeconds": 0,
            "images": {"format": "webp", "width": 320, "height": 320, "fillType": "pad"},
        },
    },
]
COVER_INVALID: list[tuple[dict[str, Any], str]] = [
    ({"name": "a", "cover": {"count": 0}}, "count"),
    ({"name": "a", "cover": {"maxCandidates": 1001}}, "maxCandidates"),
    (
        {"name": "a", "cover": {"images": {"fillType": "crop", "width": 64}}},
        "needs width and height",
    ),
    ({"name": "a", "cover": {"images": {"padColor": "white"}}}, "padColor applies to fillType pad"),
]

Image = npt.NDArray[np.uint8]


def _pattern(seed: int, size: tuple[int, int] = (180, 320)) -> Image:
    """A sharp, colourful picture: coloured blocks with hard edges."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(size[0] // 20, size[1] // 20, 3), dtype=np.uint8)
    return np.kron(blocks, np.ones((20, 20, 1), dtype=np.uint8))


def _features(**changes: float) -> Features:
    base = {
        "mean": 120.0,
        "std": 60.0,
        "p02": 10.0,
        "p98": 230.0,
        "clipped": 0.01,
        "laplacian": 900.0,
        "colorfulness": 80.0,
    }
    return Features(**{**base, **changes})


def test_a_sharp_colourful_picture_is_accepted_and_scores_high() -> None:
    features = measure(_pattern(1))
    assert reject_reason(features, 0.0) is None
    scores = cover.quality_scores(features)
    assert scores["sharpness"] > 0.9
    assert scores["colorfulness"] > 0.5
    assert all(0.0 <= v <= 1.0 for v in scores.values())


@pytest.mark.parametrize(
    ("name", "image", "reason"),
    [
        ("black", np.zeros((180, 320, 3), np.uint8), "black"),
        ("grey slate", np.full((180, 320, 3), 128, np.uint8), "flat"),
        ("dark", (_pattern(2) * 0.25).astype(np.uint8), "dark"),
        ("washed out", (217 + _pattern(3) * 0.15).astype(np.uint8), "bright"),
        ("blurred", cv2.GaussianBlur(_pattern(4), (0, 0), 8), "blurred"),
    ],
)
def test_bad_pictures_are_rejected_for_their_defect(name: str, image: Image, reason: str) -> None:
    assert reject_reason(measure(image), 0.0) == reason, name


def test_a_dark_mode_screen_with_bright_text_is_not_dark() -> None:
    # Measured on the corpus's screen recording: mean 40, 98th percentile 126.
    assert reject_reason(_features(mean=40, std=26, p98=126, laplacian=2500), 0.0) is None


def test_a_white_background_illustration_is_not_over_exposed() -> None:
    # The corpus's 1080p illustration: mean 203, but dark lines (2nd percentile 0).
    assert reject_reason(_features(mean=203, std=90, p02=0, p98=255, clipped=0.5), 0.0) is None


def test_the_transition_test_uses_the_limit_it_is_given() -> None:
    assert reject_reason(_features(), 0.5) == "transition"
    assert reject_reason(_features(), 0.5, transition_limit=0.8) is None
    # A defect is reported before the transition.
    assert reject_reason(_features(p98=10, mean=3), 0.9) == "black"


def test_the_default_interval_spreads_max_candidates_over_the_duration() -> None:
    grid = plan_grid(600.0, None, 120)
    assert grid.interval == 5.0
    assert grid.step <= cover.MAX_STEP
    assert grid.sub * grid.step == pytest.approx(grid.interval)
    # Candidates at half an interval: never the first frame.
    assert grid.offset * grid.step == pytest.approx(2.5)
    assert grid.window * grid.step == pytest.approx(cover.TRANSITION_WINDOW, abs=grid.step)


def test_short_inputs_get_the_shortest_interval_and_tiny_ones_their_duration() -> None:
    assert plan_grid(5.0, None, 120).interval == cover.MIN_INTERVAL
    tiny = plan_grid(0.107, None, 120)
    assert tiny.interval == pytest.approx(0.107)
    assert tiny.offset * tiny.step < 0.107


def test_a_given_interval_grows_to_respect_max_candidates() -> None:
    assert plan_grid(100.0, 2.0, 120).interval == 2.0
    assert plan_grid(100.0, 0.1, 20).interval == 5.0


def test_grid_marks_candidates_and_the_frames_their_windows_need() -> None:
    grid = plan_grid(60.0, 4.0, 120)  # 16 grid frames per candidate, window 2
    assert (grid.sub, grid.offset, grid.window) == (16, 8, 2)
    assert [i for i in range(40) if grid.is_candidate(i)] == [8, 24]
    assert [i for i in range(30) if grid.near_candidate(i)] == [6, 7, 8, 9, 10, 22, 23, 24, 25, 26]


def test_transition_distance_sees_a_cut_and_a_fade_but_not_a_steady_shot() -> None:
    a, b = _pattern(5), _pattern(6)
    steady = {i: histogram(a) for i in range(5)}
    assert transition_distance(steady, 2, 2) == 0.0
    cut = {i: histogram(a if i < 3 else b) for i in range(5)}
    assert transition_distance(cut, 2, 2) > 0.4
    fade = {i: histogram((a * (1 - i / 4) + b * (i / 4)).astype(np.uint8)) for i in range(5)}
    assert transition_distance(fade, 2, 2) > 0.4


def test_a_video_that_always_changes_fast_raises_the_transition_limit() -> None:
    assert transition_limit([0.05] * 20 + [0.9]) == cover.TRANSITION_DISTANCE
    assert transition_limit([0.6] * 20) == pytest.approx(0.9)
    # Too few candidates to know the video's pace: the fixed limit.
    assert transition_limit([0.6] * 3) == cover.TRANSITION_DISTANCE


def _candidate(time: float, image: Image, score: float) -> Candidate:
    cand = Candidate(time, measure(image), histogram(image))
    cand.score = score
    return cand


def test_selection_prefers_a_new_cluster_over_a_better_frame_of_a_chosen_one() -> None:
    a, b = _pattern(7), _pattern(8)
    cands = [_candidate(t, a, 0.9) for t in (1.0, 2.0, 3.0)] + [_candidate(8.0, b, 0.7)]
    cover.cluster(cands)
    assert len({c.cluster for c in cands}) == 2
    chosen = select(cands, 2, min_spacing=0.0)
    assert sorted(c.time for c in chosen) in ([1.0, 8.0], [2.0, 8.0], [3.0, 8.0])


def test_selection_keeps_the_minimum_spacing_and_never_takes_a_rejected_frame() -> None:
    cands = [_candidate(t, _pattern(int(t * 10)), 0.9 - t / 100) for t in (1.0, 1.5, 2.0, 5.0)]
    cands[3].rejected = "blurred"
    cover.cluster(cands)
    chosen = select(cands, 4, min_spacing=0.8)
    assert [c.time for c in chosen] == [1.0, 2.0]


def test_near_identical_frames_are_taken_only_when_nothing_else_is_left() -> None:
    a = _pattern(9)
    cands = [_candidate(t, a, 0.8) for t in (1.0, 2.0, 3.0)]
    cover.cluster(cands)
    assert len(select(cands, 3, min_spacing=0.5)) == 3


def _frames(kinds: list[tuple[str, int]], grid_fps: float) -> Iterator[tuple[int, float, Image]]:
    """Grid frames of a synthetic video: (picture kind, how many grid frames)."""
    pictures: dict[str, Image] = {
        "black": np.zeros((180, 320, 3), np.uint8),
        "a": _pattern(10),
        "b": _pattern(11),
        "blur": np.asarray(cv2.GaussianBlur(_pattern(10), (0, 0), 8), dtype=np.uint8),
    }
    index = 0
    for kind, n in kinds:
        for _ in range(n):
            yield index, index / grid_fps, pictures[kind]
            index += 1


def test_analyse_chooses_covers_from_the_good_stretches_only() -> None:
    # 10 s: black 0-2, a 2-5, blur 5-7, b 7-10 (grid of 0.25 s).
    grid = plan_grid(10.0, 0.5, 120)
    assert grid.step == 0.25
    kinds = [("black", 8), ("a", 12), ("blur", 8), ("b", 12)]
    candidates, chosen = analyse(_frames(kinds, grid.fps), grid, count=2, min_spacing=1.0)
    assert len(candidates) == 20
    good = [(2.5, 4.5), (7.5, 10.0)]  # half a second (the window) from each cut
    assert len(chosen) == 2
    for c in chosen:
        assert any(lo <= c.time <= hi for lo, hi in good), c.time
    # One from each good scene: the diversity rule.
    assert chosen[0].time < 5.0 < chosen[1].time
    reasons = {c.rejected for c in candidates}
    assert {"black", "blurred", "transition"} <= reasons


def test_when_every_frame_is_rejected_the_best_one_is_the_fallback() -> None:
    grid = plan_grid(4.0, 0.5, 120)
    candidates, chosen = analyse(_frames([("black", 16)], grid.fps), grid, 3, 0.0)
    assert len(chosen) == 1
    assert chosen[0].rejected == "black"
    assert all(c.rejected == "black" for c in candidates)


def test_an_input_shorter_than_the_first_candidate_instant_still_has_one() -> None:
    grid = plan_grid(4.0, 2.0, 120)  # first candidate at 1 s
    frames = _frames([("a", 3)], grid.fps)  # frames stop at 0.25 s
    candidates, chosen = analyse(frames, grid, 1, 0.0)
    assert len(candidates) == 1
    assert chosen == candidates


def test_the_model_bounds_and_the_images_fill_rule() -> None:
    assert CoverTask.needs_ml
    assert CoverTask().count == 3
    with pytest.raises(ValidationError):
        CoverTask(count=21)
    with pytest.raises(ValidationError, match="padColor applies to fillType pad only"):
        CoverTask.model_validate({"images": {"padColor": "white"}})
    with pytest.raises(ValidationError, match="needs width and height"):
        CoverTask.model_validate({"images": {"fillType": "crop", "width": 320}})
    task = TaskSpec.model_validate({"name": "c", "cover": {"images": {"format": "png"}}})
    assert task.kind == "cover"
    assert needs_ml_image([task])


@pytest.mark.parametrize("raw", COVER_VALID, ids=lambda r: r["name"])
def test_valid_cover_specs_are_accepted(raw: dict[str, Any]) -> None:
    assert TaskSpec.model_validate(raw).kind == "cover"


@pytest.mark.parametrize(("raw", "needle"), COVER_INVALID, ids=[n for _, n in COVER_INVALID])
def test_invalid_cover_specs_name_the_field(raw: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TaskSpec.model_validate(raw)
    assert needle in str(caught.value)


class _StillContext:
    """What ``cover.run`` reads of a TaskContext, for an input without a
    duration (a single picture)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.task_name = "covers"
        self.duration = 0.0

    def display_size(self) -> tuple[int, int]:
        return 320, 180


def test_an_input_without_duration_gives_its_first_frame_as_the_one_cover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pictures = [_pattern(20), _pattern(21), _pattern(22)]
    taken: list[int] = []

    def frames(ctx: object, grid: cover.Grid) -> Iterator[tuple[int, float, Image]]:
        for i, image in enumerate(pictures):
            taken.append(i)
            yield i, i * grid.step, image

    monkeypatch.setattr(cover, "_grid_frames", frames)
    outputs = cover.run(CoverTask(count=3), cast("TaskContext", _StillContext(tmp_path)))
    doc = json.loads((tmp_path / "cover.json").read_text())
    assert [c["time"] for c in doc["covers"]] == [0.0]
    assert doc["candidates"] == 1
    assert doc["settings"]["minSpacingSeconds"] == 0.0
    assert taken == [0]  # the decode is not read past the first frame
    (output,) = outputs
    assert output.info == {
        "count": 1,
        "candidates": 1,
        "bestTime": 0.0,
        "bestScore": doc["covers"][0]["score"],
    }
