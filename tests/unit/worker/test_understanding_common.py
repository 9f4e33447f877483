"""The machinery the understanding tasks share: merging detections into
ranges, cue documents, keyword matching, frame sizes, execution providers and
the packaged models."""

from __future__ import annotations

import pytest

from mediaflow_worker.errors import ModelUnavailableError
from mediaflow_worker.understanding import packages
from mediaflow_worker.understanding.cues import Cue, runs, srt, timestamp, webvtt
from mediaflow_worker.understanding.frames import sample_args, scaled_size
from mediaflow_worker.understanding.keywords import KeywordMatcher, normalise
from mediaflow_worker.understanding.onnx import wanted_providers

pytestmark = pytest.mark.unit


def test_samples_seen_in_a_row_are_one_range_and_a_gap_starts_another() -> None:
    assert runs([0.0, 1.0, 2.0, 6.0, 7.0], 1.0) == [(0.0, 3.0), (6.0, 8.0)]


def test_one_missed_sample_is_tolerated_two_are_not() -> None:
    assert runs([0.0, 2.0], 1.0) == [(0.0, 3.0)]
    assert runs([0.0, 3.0], 1.0) == [(0.0, 1.0), (3.0, 4.0)]
    assert runs([0.0, 2.0], 1.0, tolerance=0) == [(0.0, 1.0), (2.0, 3.0)]


def test_runs_sorts_its_samples_and_keeps_sub_second_steps() -> None:
    assert runs([1.0, 0.5, 0.0], 0.5) == [(0.0, 1.5)]
    assert runs([], 1.0) == []


def test_timestamps_in_both_formats() -> None:
    assert timestamp(3725.5) == "01:02:05.500"
    assert timestamp(0.0004, decimal=",") == "00:00:00,000"
    assert timestamp(-1) == "00:00:00.000"


def test_webvtt_and_srt_leave_out_empty_cues_and_defuse_cue_syntax() -> None:
    cues = [
        Cue(0.0, 1.5, "hello\n\nworld"),
        Cue(2.0, 2.0, "zero length"),
        Cue(3.0, 4.0, "   "),
        Cue(5.0, 6.0, "a --> b"),
    ]
    assert webvtt(cues) == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nhello\nworld\n\n"
        "00:00:05.000 --> 00:00:06.000\na -> b\n"
    )
    assert srt(cues) == (
        "1\n00:00:00,000 --> 00:00:01,500\nhello\nworld\n\n"
        "2\n00:00:05,000 --> 00:00:06,000\na -> b\n"
    )


def test_keywords_match_whole_words_case_and_width_insensitively() -> None:
    matcher = KeywordMatcher.of(
        [
            "Art",
            "free  gift",
            "\uff33\uff21\uff2c\uff25",  # full-width SALE
            "",
            "art",
        ]
    )
    assert matcher.words == ("art", "free gift", "sale")
    assert matcher.find("Modern ART museum") == ["art"]
    assert matcher.find("start the party") == []
    assert matcher.find("A FREE\tGIFT and a sale!") == ["free gift", "sale"]


def test_keywords_in_scripts_without_spaces_match_inside_words() -> None:
    matcher = KeywordMatcher.of(["免费", "セール"])
    assert matcher.find("今天免费送货") == ["免费"]
    assert matcher.find("大セール開催") == ["セール"]
    assert normalise("  \uff21\u00a0b ") == "a b"


@pytest.mark.parametrize(
    ("size", "max_side", "expected"),
    [
        ((1920, 1080), 640, (640, 360)),
        ((1080, 1920), 640, (360, 640)),
        ((320, 240), 640, (320, 240)),  # never scaled up
        ((161, 121), 100, (100, 74)),
        ((3, 1000), 10, (2, 10)),  # never below 2 pixels
    ],
)
def test_sampled_frames_are_scaled_down_to_an_even_size(
    size: tuple[int, int], max_side: int, expected: tuple[int, int]
) -> None:
    assert scaled_size(*size, max_side) == expected


def test_frame_sampling_reads_a_restricted_input_on_a_grid_from_zero() -> None:
    from pathlib import Path

    from mediaflow_worker.safety import unrestricted_inputs

    args = sample_args(Path("/in/clip.mp4"), "mov", 10_000, fps=0.5, size=(320, 180))
    assert unrestricted_inputs(args) == []
    # The picture shown at each grid time; the first frame even of a short input.
    graph = "fps=fps=0.5:start_time=0:round=up:eof_action=pass,"
    assert graph + "scale=320:180:flags=area,format=rgb24" in args
    assert args[-3:] == ["-f", "rawvideo", "pipe:1"]


def test_providers_default_to_cpu_and_unavailable_ones_are_left_out() -> None:
    available = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert wanted_providers(None, available) == ["CPUExecutionProvider"]
    assert wanted_providers("CUDAExecutionProvider", available) == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert wanted_providers(
        "TensorrtExecutionProvider, CUDAExecutionProvider", ["CPUExecutionProvider"]
    ) == ["CPUExecutionProvider"]


def test_every_packaged_model_is_a_file_inside_its_installed_wheel() -> None:
    for model in packages.MODELS:
        path = model.path()
        assert path.exists(), model
        assert "site-packages" in str(path), path  # inside the installed package


def test_a_missing_package_is_named_with_the_image_to_use() -> None:
    missing = packages.PackagedModel("test", "no-such-distribution", "x.onnx", "MIT")
    with pytest.raises(ModelUnavailableError, match=r"'no-such-distribution'.*worker-ml"):
        missing.path()
    with pytest.raises(ModelUnavailableError, match=r"task 'ocr'.*'no_such_module'.*worker-ml"):
        packages.check_modules(["numpy", "no_such_module"], task="ocr")
