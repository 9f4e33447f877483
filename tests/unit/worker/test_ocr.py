"""The ``ocr`` task's pure parts: readings merged into spans across samples,
pieces of a line joined, keyword hits, the JSON and WebVTT written, the
settings given to RapidOCR, and the spec's bounds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mediaflow_api.tasks import OcrTask, TaskSpec
from mediaflow_worker.understanding import packages
from mediaflow_worker.understanding.cues import Cue, webvtt
from mediaflow_worker.understanding.ocr import (
    Reading,
    TextSpan,
    crop_region,
    document,
    engine_params,
    join_pieces,
    keyword_hits,
    merge_readings,
    overlap,
    similarity,
    summary,
)

pytestmark = pytest.mark.unit

TOP = (0.1, 0.1, 0.5, 0.1)
BOTTOM = (0.1, 0.8, 0.6, 0.1)


def at(time: float, text: str, box: tuple[float, float, float, float] = TOP) -> Reading:
    return Reading(time, text, 0.95, box)


def test_similarity_ignores_case_spaces_and_width_and_scores_misreads() -> None:
    assert similarity("Breaking News", "BREAKINGNEWS") == 1.0
    assert similarity("\uff21\uff22\uff23", "abc") == 1.0  # full-width ABC
    assert 0.8 <= similarity("Welcome to mediaflow", "Welcome to mediafl0w") < 1.0
    assert similarity("Welcome", "Goodbye") < 0.5


def test_overlap_is_relative_to_the_smaller_box() -> None:
    assert overlap(TOP, TOP) == 1.0
    assert overlap(TOP, BOTTOM) == 0.0
    inner = (0.2, 0.12, 0.1, 0.05)
    assert overlap(TOP, inner) == pytest.approx(1.0)
    assert overlap((0.0, 0.0, 0.2, 0.2), (0.1, 0.0, 0.2, 0.2)) == pytest.approx(0.5)


def test_a_line_on_consecutive_samples_is_one_span_ending_a_step_after_its_last() -> None:
    readings = [at(t, "Hello world") for t in (1.0, 2.0, 3.0)]
    assert merge_readings(readings, 1.0) == [TextSpan(1.0, 4.0, "Hello world", 0.95, TOP)]


def test_a_misread_sample_joins_the_span_and_the_text_read_most_often_wins() -> None:
    readings = [at(0.0, "Hello world"), at(1.0, "He11o world"), at(2.0, "Hello world")]
    (span,) = merge_readings(readings, 1.0)
    assert (span.start, span.end, span.text) == (0.0, 3.0, "Hello world")


def test_one_missed_sample_is_bridged_two_are_not() -> None:
    bridged = merge_readings([at(0.0, "Hi there"), at(2.0, "Hi there")], 1.0)
    assert [(s.start, s.end) for s in bridged] == [(0.0, 3.0)]
    apart = merge_readings([at(0.0, "Hi there"), at(3.0, "Hi there")], 1.0)
    assert [(s.start, s.end) for s in apart] == [(0.0, 1.0), (3.0, 4.0)]


def test_the_same_text_elsewhere_or_other_text_in_place_is_another_span() -> None:
    moved = merge_readings([at(0.0, "Same text"), at(1.0, "Same text", BOTTOM)], 1.0)
    assert len(moved) == 2
    replaced = merge_readings([at(0.0, "First caption"), at(1.0, "Second line")], 1.0)
    assert [(s.text, s.start, s.end) for s in replaced] == [
        ("First caption", 0.0, 1.0),
        ("Second line", 1.0, 2.0),
    ]


def test_two_lines_of_one_sample_never_continue_the_same_span() -> None:
    readings = [at(0.0, "Twin"), at(1.0, "Twin"), at(1.0, "Twin", (0.12, 0.1, 0.5, 0.1))]
    spans = merge_readings(readings, 1.0)
    assert sorted((s.start, s.end) for s in spans) == [(0.0, 2.0), (1.0, 2.0)]


def test_spans_end_at_the_duration_and_a_still_image_at_once() -> None:
    (span,) = merge_readings([at(4.0, "Last")], 1.0, duration=4.5)
    assert span.end == 4.5
    (still,) = merge_readings([at(0.0, "Poster")], 1.0, still=True)
    assert (still.start, still.end) == (0.0, 0.0)


def test_spans_are_sorted_by_start_then_top_to_bottom() -> None:
    spans = merge_readings([at(1.0, "Low", BOTTOM), at(1.0, "High"), at(0.0, "Early", BOTTOM)], 1.0)
    assert [s.text for s in spans] == ["Early", "High", "Low"]


def test_pieces_of_one_line_are_joined_left_to_right() -> None:
    pieces = [
        Reading(0.0, "NEWS", 1.0, (0.5, 0.08, 0.28, 0.16)),
        Reading(0.0, "BREAKING", 0.9, (0.06, 0.09, 0.44, 0.13)),
        Reading(0.0, "Other line", 0.9, (0.06, 0.7, 0.44, 0.1)),
    ]
    joined = join_pieces(pieces)
    assert sorted(r.text for r in joined) == ["BREAKING NEWS", "Other line"]
    line = next(r for r in joined if r.text == "BREAKING NEWS")
    assert line.box == pytest.approx((0.06, 0.08, 0.72, 0.16))
    assert 0.9 < line.confidence < 1.0


def test_pieces_far_apart_or_of_other_sizes_stay_apart_and_cjk_joins_without_space() -> None:
    far = [
        Reading(0.0, "left", 1.0, (0.0, 0.1, 0.1, 0.05)),
        Reading(0.0, "right", 1.0, (0.8, 0.1, 0.1, 0.05)),
    ]
    assert len(join_pieces(far)) == 2
    sizes = [
        Reading(0.0, "big", 1.0, (0.0, 0.1, 0.2, 0.2)),
        Reading(0.0, "small", 1.0, (0.2, 0.15, 0.1, 0.05)),
    ]
    assert len(join_pieces(sizes)) == 2
    cjk = [
        Reading(0.0, "欢迎", 1.0, (0.1, 0.1, 0.2, 0.1)),
        Reading(0.0, "观看", 1.0, (0.3, 0.1, 0.2, 0.1)),
    ]
    assert [r.text for r in join_pieces(cjk)] == ["欢迎观看"]


def test_keyword_hits_name_list_word_and_span() -> None:
    spans = [
        TextSpan(0.0, 3.0, "BREAKING NEWS", 0.99, TOP),
        TextSpan(1.0, 4.0, "Welcome to mediaflow", 0.99, BOTTOM),
        TextSpan(5.0, 6.0, "Start here", 0.99, TOP),
    ]
    hits = keyword_hits(spans, [("news", ["breaking news", "art"]), ("brand", ["MediaFlow"])])
    assert [(h.list, h.word, h.start, h.end) for h in hits] == [
        ("news", "breaking news", 0.0, 3.0),
        ("brand", "mediaflow", 1.0, 4.0),
    ]
    assert summary(spans, hits, ["news", "brand", "none"]) == {
        "spans": 3,
        "keywordHits": {"news": 1, "brand": 1, "none": 0},
        "words": ["breaking news", "mediaflow"],
    }


def test_the_json_document_has_settings_spans_and_hits() -> None:
    spec = OcrTask.model_validate(
        {
            "intervalSeconds": 0.5,
            "region": {"y": 0.6, "height": 0.4},
            "keywords": [{"name": "brand", "words": ["mediaflow"]}],
        }
    )
    spans = [TextSpan(1.0, 4.0, "Welcome to mediaflow", 0.987, BOTTOM)]
    doc = document(spec, spans, keyword_hits(spans, [("brand", ["mediaflow"])]))
    assert doc["version"] == 1
    assert doc["settings"]["intervalSeconds"] == 0.5
    assert doc["settings"]["region"] == {"x": 0.0, "y": 0.6, "width": 1.0, "height": 0.4}
    assert doc["spans"] == [
        {
            "start": 1.0,
            "end": 4.0,
            "text": "Welcome to mediaflow",
            "confidence": 0.987,
            "box": {"x": 0.1, "y": 0.8, "width": 0.6, "height": 0.1},
        }
    ]
    assert doc["keywordHits"] == [
        {"list": "brand", "word": "mediaflow", "start": 1.0, "end": 4.0, "text": spans[0].text}
    ]


def test_spans_as_webvtt() -> None:
    spans = [TextSpan(1.0, 4.0, "Welcome", 0.9, TOP), TextSpan(0.0, 0.0, "Still", 0.9, TOP)]
    vtt = webvtt([Cue(s.start, s.end, s.text) for s in spans])
    assert vtt == "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nWelcome\n"


def test_the_region_is_cropped_in_pixels_and_clipped_to_the_frame() -> None:
    assert crop_region(640, 360, None) == (0, 0, 640, 360)
    assert crop_region(640, 360, (0.0, 2 / 3, 1.0, 1 / 3)) == (0, 240, 640, 120)
    assert crop_region(640, 360, (0.9, 0.9, 1.0, 1.0)) == (576, 324, 64, 36)


def test_rapidocr_gets_the_packaged_models_the_threads_and_cuda_only_when_asked() -> None:
    params = engine_params(max_side=960, threads="2", provider_names=["CPUExecutionProvider"])
    assert params["Det.model_path"] == str(packages.TEXT_DETECTION.path())
    assert params["Rec.model_path"] == str(packages.TEXT_RECOGNITION.path())
    assert params["Cls.model_path"] == str(packages.TEXT_ORIENTATION.path())
    assert params["EngineConfig.onnxruntime.intra_op_num_threads"] == 2
    assert params["EngineConfig.onnxruntime.use_cuda"] is False
    assert params["Det.limit_side_len"] == 960
    assert params["Global.log_level"] == "error"
    gpu = engine_params(
        max_side=640, threads=None, provider_names=["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    assert gpu["EngineConfig.onnxruntime.use_cuda"] is True
    assert gpu["EngineConfig.onnxruntime.intra_op_num_threads"] == -1


def test_the_params_are_ones_rapidocr_knows() -> None:
    # RapidOCR refuses unknown keys: this catches a renamed setting on upgrade.
    from rapidocr.main import DEFAULT_CFG_PATH
    from rapidocr.utils.parse_parameters import ParseParams

    cfg = ParseParams.load(DEFAULT_CFG_PATH)
    params = engine_params(max_side=960, threads="1", provider_names=["CPUExecutionProvider"])
    ParseParams.update_batch(cfg, params)
    assert cfg.Det.limit_type == "max"


@pytest.mark.parametrize(
    "settings",
    [
        {"intervalSeconds": 0.01},
        {"intervalSeconds": 61},
        {"minConfidence": 1.5},
        {"maxSide": 100},
        {"maxSide": 4000},
        {"region": {"x": 1.0}},
        {"region": {"width": 0}},
        {"keywords": [{"name": "Bad Name", "words": ["x"]}]},
        {"keywords": [{"name": "empty", "words": []}]},
        {"keywords": [{"name": f"l{i}", "words": ["x"]} for i in range(21)]},
        {"language": "en"},
    ],
)
def test_out_of_bounds_settings_are_refused(settings: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TaskSpec.model_validate({"name": "text", "ocr": settings})


def test_the_defaults_and_the_ml_image() -> None:
    task = TaskSpec.model_validate({"name": "text", "ocr": {}})
    assert task.kind == "ocr"
    assert task.ocr is not None
    assert (task.ocr.interval_seconds, task.ocr.min_confidence, task.ocr.max_side) == (
        1.0,
        0.6,
        960,
    )
    assert OcrTask.needs_ml
