"""The ``cover`` task: the most representative, best-looking frames as covers.

How covers are chosen (every threshold below was calibrated on the clips of
``tests/support/understanding/cover.py`` and the media corpus, see
docs/understanding.md):

1. *Candidates*: one frame every ``interval`` seconds (adaptive: at most
   ``maxCandidates``), half an interval after each grid point so the first
   frame (often black or a fade-in) is never one. The frames come from one
   ffmpeg decode on a finer grid (``step`` <= 0.25 s) whose extra frames only
   serve the transition test.
2. *Rejection*, first reason that applies: ``black`` (nearly every pixel
   dark), ``flat`` (one colour: a slate, a blank screen), ``dark`` and
   ``bright`` (under or over-exposed), ``blurred`` (little high-frequency
   energy for the picture's contrast), ``transition`` (the colour content
   changes a lot within ``TRANSITION_WINDOW`` seconds: a cut or a fade is
   next to it, and the frame is a blend or about to change).
3. *Scores* (each 0..1): sharpness, exposure, contrast, colourfulness give the
   picture ``quality``; candidates are clustered by colour histogram and
   ``representativeness`` is the share of the video its cluster covers (and
   how typical of the cluster the frame is). ``score`` blends the two.
4. *Selection*: best score first; a cover from a cluster that already has one
   counts less, near-identical pictures and covers closer than
   ``minSpacingSeconds`` are skipped, so N covers show N different things.

No model is involved: NumPy and OpenCV (the ``ml`` extra) measure the frames.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mediaflow_api.tasks import CoverTask
from mediaflow_worker.errors import ProcessingError
from mediaflow_worker.ffmpeg.codecs import IMAGE_ENCODERS, IMAGE_EXTENSIONS
from mediaflow_worker.ffmpeg.sizing import SizePlan, plan_size
from mediaflow_worker.ffmpeg.snapshot import snapshot_args, snapshot_window_args
from mediaflow_worker.process import run_ffmpeg
from mediaflow_worker.tasks import OutputFile, TaskContext
from mediaflow_worker.understanding.onnx import THREADS_ENV

if TYPE_CHECKING:  # NumPy is in the ml extra only: imported where frames are measured
    import numpy as np
    import numpy.typing as npt

VERSION = 1
# Frames are measured at this size (longer side): enough for the Laplacian to
# tell sharp from blurred, small enough to cost little per frame.
MEASURE_SIDE = 320
# The shortest default interval between candidates, and the finest grid step.
MIN_INTERVAL = 0.25
MAX_STEP = 0.25
# A frame is transitional when the colour content changes by more than
# TRANSITION_DISTANCE (total variation distance of 512-bin colour histograms,
# 0..1) between TRANSITION_WINDOW seconds before and after it, or between two
# grid frames in that window. Camera footage with motion stayed below 0.25;
# cuts measure 0.5-1.0, a cross-fade 0.55-0.9. In a video that changes that
# fast all the time (a music visualiser: 0.45-0.75 everywhere) the threshold
# rises to TRANSITION_RELATIVE x the video's median, so only what stands out
# from its usual pace counts (with RELATIVE_MIN_CANDIDATES or more).
TRANSITION_WINDOW = 0.5
TRANSITION_DISTANCE = 0.4
TRANSITION_RELATIVE = 1.5
# Fewer candidates than this say nothing about the video's pace.
RELATIVE_MIN_CANDIDATES = 8
# Luma (0..255) rules. black: 98% of the pixels below BLACK_P98; flat: almost
# no variation; dark: a low mean and no bright areas (dark-mode screen
# recordings have bright text and pass); bright: washed out, no dark tones at
# all (a white-background illustration has dark lines and passes).
BLACK_P98 = 24.0
FLAT_STD = 6.0
DARK_MEAN = 45.0
DARK_P98 = 100.0
BRIGHT_MEAN = 200.0
BRIGHT_P02 = 150.0
# blurred: Laplacian variance below BLUR_RATIO x luma variance (camera footage
# 0.07-0.4, a Gaussian blur of sigma 6 0.002), or below BLUR_ABSOLUTE.
BLUR_RATIO = 0.02
BLUR_ABSOLUTE = 10.0
# The Laplacian variance that scores 0.63 sharpness (1 - 1/e).
SHARPNESS_SCALE = 400.0
# Candidates closer than this (histogram distance) join one cluster; closer
# than DUPLICATE_DISTANCE they are the same picture for the diversity rule.
CLUSTER_DISTANCE = 0.35
DUPLICATE_DISTANCE = 0.08
# Weights of the final score and of the quality score.
QUALITY_WEIGHT = 0.65
QUALITY_WEIGHTS = {"sharpness": 0.4, "exposure": 0.25, "contrast": 0.2, "colorfulness": 0.15}
# A second cover from the same cluster counts this much less (per cover).
SAME_CLUSTER_FACTOR = 0.6
REJECT_REASONS = ("black", "flat", "dark", "bright", "blurred", "transition")


@dataclass(frozen=True)
class Grid:
    """Where candidates are taken: every ``sub``-th frame of a grid of
    ``step`` seconds, starting at grid index ``offset``; ``window`` grid
    frames either side are compared for the transition test."""

    interval: float
    step: float
    sub: int
    offset: int
    window: int

    @property
    def fps(self) -> float:
        """Frames a second of the decoding grid."""
        return 1.0 / self.step

    def is_candidate(self, index: int) -> bool:
        """Whether grid frame ``index`` is a candidate (pure)."""
        return index >= self.offset and (index - self.offset) % self.sub == 0

    def near_candidate(self, index: int) -> bool:
        """Whether grid frame ``index`` lies within ``window`` of a candidate."""
        if index < self.offset - self.window:
            return False
        rel = (index - self.offset) % self.sub
        return min(rel, self.sub - rel) <= self.window


def plan_grid(duration: float, interval: float | None, max_candidates: int) -> Grid:
    """The candidate grid for an input of ``duration`` seconds (pure).

    Without ``interval``: ``duration / max_candidates``, at least
    ``MIN_INTERVAL``. A given interval grows when it would give more than
    ``max_candidates`` candidates, and every interval shrinks to the duration
    of a shorter input (a 0.1 s phone clip still has a candidate)."""
    duration = max(duration, 0.0)
    if interval is None:
        chosen = max(duration / max(max_candidates, 1), MIN_INTERVAL)
    else:
        chosen = max(interval, duration / max(max_candidates, 1))
    if 0 < duration < chosen:
        chosen = max(duration, 0.02)
    sub = max(2, math.ceil(chosen / MAX_STEP - 1e-9))
    step = chosen / sub
    return Grid(
        interval=round(chosen, 3),
        step=step,
        sub=sub,
        offset=sub // 2,
        window=max(1, round(TRANSITION_WINDOW / step)),
    )


@dataclass(frozen=True)
class Features:
    """What is measured on one frame (raw, before scoring)."""

    mean: float  # luma, 0..255
    std: float
    p02: float
    p98: float
    clipped: float  # fraction of pixels at 0-4 or 251-255 luma
    laplacian: float  # variance of the Laplacian of the luma
    colorfulness: float  # Hasler and Suesstrunk's metric


def histogram(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """The 8x8x8-bin RGB histogram of ``image``, summing to 1."""
    import numpy as np

    q = (image >> 5).astype(np.int32)
    codes = (q[..., 0] * 64 + q[..., 1] * 8 + q[..., 2]).ravel()
    counts = np.bincount(codes, minlength=512).astype(np.float32)
    total = float(counts.sum())
    return counts / total if total else counts


def distance(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    """Total variation distance of two histograms (0 same, 1 disjoint)."""
    import numpy as np

    return float(0.5 * np.abs(a - b).sum())


def measure(image: npt.NDArray[np.uint8]) -> Features:
    """Exposure, contrast, sharpness and colourfulness of an RGB frame."""
    import cv2
    import numpy as np

    luma = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    p02, p98 = (float(v) for v in np.percentile(luma, [2, 98]))
    clipped = float(np.count_nonzero((luma <= 4) | (luma >= 251))) / luma.size
    laplacian = float(cv2.Laplacian(luma.astype(np.float32), cv2.CV_32F).var())
    rgb = image.astype(np.float32)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    colorfulness = math.hypot(float(rg.std()), float(yb.std())) + 0.3 * math.hypot(
        float(rg.mean()), float(yb.mean())
    )
    return Features(
        mean=float(luma.mean()),
        std=float(luma.std()),
        p02=p02,
        p98=p98,
        clipped=clipped,
        laplacian=laplacian,
        colorfulness=colorfulness,
    )


def reject_reason(
    f: Features, transition: float, transition_limit: float = TRANSITION_DISTANCE
) -> str | None:
    """Why a frame with features ``f`` and transition distance ``transition``
    cannot be a cover, or None (pure; the order of the tests is the order of
    ``REJECT_REASONS``)."""
    if f.p98 < BLACK_P98:
        return "black"
    if f.std < FLAT_STD:
        return "flat"
    if f.mean < DARK_MEAN and f.p98 < DARK_P98:
        return "dark"
    if f.mean > BRIGHT_MEAN and f.p02 > BRIGHT_P02:
        return "bright"
    if f.laplacian < BLUR_ABSOLUTE or f.laplacian < BLUR_RATIO * f.std**2:
        return "blurred"
    if transition > transition_limit:
        return "transition"
    return None


def quality_scores(f: Features) -> dict[str, float]:
    """The picture's scores, each 0..1 (pure)."""
    sharpness = 1.0 - math.exp(-f.laplacian / SHARPNESS_SCALE)
    # Best around mid-grey; clipped highlights and crushed shadows cost.
    exposure = max(0.0, 1.0 - abs(f.mean - 118.0) / 118.0 - f.clipped)
    contrast = min(1.0, f.std / 60.0)
    colorfulness = min(1.0, f.colorfulness / 90.0)
    return {
        "sharpness": round(sharpness, 3),
        "exposure": round(exposure, 3),
        "contrast": round(contrast, 3),
        "colorfulness": round(colorfulness, 3),
    }


@dataclass
class Candidate:
    """One candidate frame and what is known about it."""

    time: float
    features: Features
    hist: npt.NDArray[np.float32]
    transition: float = 0.0
    rejected: str | None = None
    scores: dict[str, float] = field(default_factory=dict)
    cluster: int = -1
    score: float = 0.0


def transition_distance(
    hists: dict[int, npt.NDArray[np.float32]], index: int, window: int
) -> float:
    """How much the colour content changes around grid frame ``index``: the
    distance between the frames ``window`` before and after it, or the largest
    step between neighbouring grid frames in between (pure). Frames missing at
    the ends of the input are left out."""
    lo, hi = index - window, index + window
    present = [i for i in range(lo, hi + 1) if i in hists]
    if len(present) < 2:
        return 0.0
    worst = distance(hists[present[0]], hists[present[-1]])
    for a, b in itertools.pairwise(present):
        worst = max(worst, distance(hists[a], hists[b]))
    return worst


def cluster(candidates: Sequence[Candidate]) -> list[list[int]]:
    """Group candidates by look (leader clustering on colour histograms, in
    time order): each joins the nearest cluster whose first member is closer
    than ``CLUSTER_DISTANCE``, or starts one. Sets ``Candidate.cluster``;
    returns the members of each cluster (indices into ``candidates``)."""
    leaders: list[int] = []
    members: list[list[int]] = []
    for i, cand in enumerate(candidates):
        best, best_d = -1, CLUSTER_DISTANCE
        for c, leader in enumerate(leaders):
            d = distance(cand.hist, candidates[leader].hist)
            if d < best_d:
                best, best_d = c, d
        if best < 0:
            leaders.append(i)
            members.append([i])
            best = len(leaders) - 1
        else:
            members[best].append(i)
        cand.cluster = best
    return members


def score(candidates: Sequence[Candidate]) -> None:
    """Fill in every candidate's ``scores`` and ``score``.

    Representativeness counts only frames with content (not black or flat):
    a long black stretch is not what the video is about."""
    import numpy as np

    with_content = [c for c in candidates if c.rejected not in ("black", "flat")]
    clusters = cluster(with_content)
    largest = max((len(m) for m in clusters), default=1)
    centroids = [np.mean([with_content[i].hist for i in m], axis=0) for m in clusters]
    for cand in candidates:
        cand.scores = quality_scores(cand.features)
        quality = sum(cand.scores[k] * w for k, w in QUALITY_WEIGHTS.items())
        if cand.cluster >= 0:
            share = len(clusters[cand.cluster]) / largest
            typical = 1.0 - min(1.0, distance(cand.hist, centroids[cand.cluster]) / 0.5)
            represent = 0.7 * share + 0.3 * typical
        else:
            represent = 0.0
        cand.scores["quality"] = round(quality, 3)
        cand.scores["representativeness"] = round(represent, 3)
        cand.score = round(QUALITY_WEIGHT * quality + (1 - QUALITY_WEIGHT) * represent, 3)


def select(candidates: Sequence[Candidate], count: int, min_spacing: float) -> list[Candidate]:
    """The best ``count`` accepted candidates, diverse (pure but for reading
    ``score`` and ``cluster``): greedy by score, a cluster's second cover
    weighted by ``SAME_CLUSTER_FACTOR`` (and so on), never two within
    ``min_spacing`` seconds; near-identical pictures only when nothing else
    is left. Fewer than ``count`` when the video has fewer good frames."""
    pool = [c for c in candidates if c.rejected is None]
    chosen: list[Candidate] = []
    for allow_duplicates in (False, True):
        while len(chosen) < count:
            best: Candidate | None = None
            best_value = -1.0
            for cand in pool:
                if cand in chosen or any(abs(cand.time - c.time) < min_spacing for c in chosen):
                    continue
                if not allow_duplicates and any(
                    distance(cand.hist, c.hist) < DUPLICATE_DISTANCE for c in chosen
                ):
                    continue
                same = sum(c.cluster == cand.cluster for c in chosen)
                value = cand.score * SAME_CLUSTER_FACTOR**same
                if value > best_value:
                    best, best_value = cand, value
            if best is None:
                break
            chosen.append(best)
    return chosen


def candidates_of(
    frames: Iterable[tuple[int, float, npt.NDArray[np.uint8]]], grid: Grid
) -> list[Candidate]:
    """Measure the candidates among grid ``frames`` (index, time, image) and
    their transition distances. Only frames near a candidate are kept (their
    histograms), so memory stays bounded on long inputs."""
    hists: dict[int, npt.NDArray[np.float32]] = {}
    found: dict[int, Candidate] = {}
    last_frame: tuple[float, npt.NDArray[np.uint8]] | None = None
    for index, time, image in frames:
        last_frame = (time, image)
        if not grid.near_candidate(index):
            continue
        hists[index] = histogram(image)
        if grid.is_candidate(index):
            found[index] = Candidate(time, measure(image), hists[index])
        # The candidate whose window just closed.
        done = index - grid.window
        if done in found:
            found[done].transition = transition_distance(hists, done, grid.window)
            for old in [i for i in hists if i < done - grid.window]:
                del hists[old]
    last = max(hists, default=-1)
    for index, cand in found.items():
        if index > last - grid.window:
            cand.transition = transition_distance(hists, index, grid.window)
    if not found and last_frame is not None:
        # The input ended before the first candidate instant (a VFR file
        # whose frames stop early): its last frame is the one candidate.
        time, image = last_frame
        return [Candidate(time, measure(image), histogram(image))]
    return [found[i] for i in sorted(found)]


def transition_limit(distances: Sequence[float]) -> float:
    """The transition distance above which a candidate is transitional in a
    video whose candidates measure ``distances`` (pure)."""
    if len(distances) < RELATIVE_MIN_CANDIDATES:
        return TRANSITION_DISTANCE
    ordered = sorted(distances)
    median = ordered[len(ordered) // 2]
    return max(TRANSITION_DISTANCE, TRANSITION_RELATIVE * median)


def analyse(
    frames: Iterable[tuple[int, float, npt.NDArray[np.uint8]]],
    grid: Grid,
    count: int,
    min_spacing: float,
) -> tuple[list[Candidate], list[Candidate]]:
    """All candidates (scored, rejected ones marked) and the chosen covers.

    When every candidate is rejected the single best one is still chosen (a
    video needs some cover): ``cover.json`` marks it ``fallback``."""
    candidates = candidates_of(frames, grid)
    limit = transition_limit([c.transition for c in candidates])
    for cand in candidates:
        cand.rejected = reject_reason(cand.features, cand.transition, limit)
    score(candidates)
    chosen = select(candidates, count, min_spacing)
    if not chosen and candidates:
        chosen = [max(candidates, key=lambda c: c.score)]
    return candidates, sorted(chosen, key=lambda c: c.time)


def default_spacing(duration: float, count: int) -> float:
    """``minSpacingSeconds`` when not given: a quarter of the share of the
    duration each cover would have (pure)."""
    return round(duration / (4 * count), 3)


def required_encoders(spec: CoverTask) -> set[str]:
    """The image encoder of the images' format, if images are asked for."""
    return {IMAGE_ENCODERS[spec.images.format]} if spec.images else set()


def _grid_frames(
    ctx: TaskContext, grid: Grid
) -> Iterable[tuple[int, float, npt.NDArray[np.uint8]]]:
    import cv2

    from mediaflow_worker.understanding.frames import sample_frames

    threads = os.environ.get(THREADS_ENV)
    if threads:  # the same bound as the ONNX sessions': shared nodes, tests
        cv2.setNumThreads(int(threads))
    for index, frame in enumerate(sample_frames(ctx, fps=grid.fps, max_side=MEASURE_SIDE)):
        yield index, frame.time, frame.image


def run(spec: CoverTask, ctx: TaskContext) -> list[OutputFile]:
    """Choose the covers; write ``cover.json`` (and ``cover-01.<ext>`` ...
    with ``images``)."""
    ctx.display_size()  # TaskNotApplicable without video
    duration = ctx.duration
    grid = plan_grid(duration, spec.candidate_interval_seconds, spec.max_candidates)
    spacing = (
        spec.min_spacing_seconds
        if spec.min_spacing_seconds is not None
        else default_spacing(duration, spec.count)
    )
    frames = _grid_frames(ctx, grid)
    if duration <= 0:
        # A still image (or no known duration): the first frame is the one
        # candidate.
        frames = ((grid.offset, 0.0, image) for _, _, image in itertools.islice(frames, 1))
    candidates, chosen = analyse(frames, grid, spec.count, spacing)
    if not candidates:
        raise ProcessingError(f"{ctx.task_name}: ffmpeg returned no frame to choose from")
    files: list[OutputFile] = []
    written: dict[int, Path] = {}
    if spec.images is not None:
        written = _write_images(spec, ctx, [c.time for c in chosen])
    rejected = {reason: 0 for reason in REJECT_REASONS}
    for cand in candidates:
        if cand.rejected:
            rejected[cand.rejected] += 1
    fallback = all(c.rejected for c in chosen)
    covers: list[dict[str, Any]] = []
    for i, cand in enumerate(chosen):
        entry: dict[str, Any] = {
            "time": round(cand.time, 3),
            "score": cand.score,
            "scores": cand.scores,
        }
        if fallback:
            entry["fallback"] = cand.rejected
        if i in written:
            entry["file"] = written[i].name
        covers.append(entry)
    document = {
        "version": VERSION,
        "settings": {
            "count": spec.count,
            "candidateIntervalSeconds": grid.interval,
            "maxCandidates": spec.max_candidates,
            "minSpacingSeconds": spacing,
        },
        "candidates": len(candidates),
        "covers": covers,
        "rejected": rejected,
        # Every candidate, so a user can see why a frame was not chosen.
        "frames": [
            {"time": round(c.time, 3), "score": c.score, "rejected": c.rejected} for c in candidates
        ],
    }
    path = ctx.out_dir / "cover.json"
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    best = max(chosen, key=lambda c: c.score) if chosen else None
    info: dict[str, Any] = {"count": len(chosen), "candidates": len(candidates)}
    if best is not None:
        info["bestTime"] = round(best.time, 3)
        info["bestScore"] = best.score
    if fallback and chosen:
        info["fallback"] = True
    files.append(OutputFile(path, info))
    for i, cand in enumerate(chosen):
        if i in written:
            files.append(OutputFile(written[i], {"time": round(cand.time, 3), "score": cand.score}))
    return files


def _write_images(spec: CoverTask, ctx: TaskContext, times: Sequence[float]) -> dict[int, Path]:
    """Each cover from the input at full quality, sized like ``snapshot``
    (the snapshot's ffmpeg commands: a seek, then the frame shown at the
    instant when the seek finds none)."""
    images = spec.images
    assert images is not None
    plan = plan_size(
        *ctx.display_size(),
        images.width,
        images.height,
        fill=images.fill_type,
        pad_color=images.pad_color,
    )
    ext = IMAGE_EXTENSIONS[images.format]
    written: dict[int, Path] = {}
    for i, at in enumerate(times):
        out = ctx.out_dir / f"cover-{i + 1:02d}.{ext}"
        _extract(ctx, at, plan, images.format, out, f"{ctx.task_name} #{i + 1}")
        written[i] = out
    return written


def _extract(ctx: TaskContext, at: float, plan: SizePlan, fmt: str, out: Path, label: str) -> None:
    args = snapshot_args(
        ctx.input_path, ctx.probe.demuxer, ctx.limits.max_pixels, at, plan, fmt, out
    )
    run_ffmpeg(args, label=label, expected_seconds=None, deadline=ctx.deadline)
    for window in (2.0, 10.0, at):
        if out.exists() and out.stat().st_size > 0:
            return
        args = snapshot_window_args(
            ctx.input_path, ctx.probe.demuxer, ctx.limits.max_pixels, at, window, plan, fmt, out
        )
        run_ffmpeg(args, label=label, expected_seconds=None, deadline=ctx.deadline)
    if not (out.exists() and out.stat().st_size > 0):
        raise ProcessingError(f"{label}: no frame at {at:g} s")
