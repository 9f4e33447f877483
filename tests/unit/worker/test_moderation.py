"""The moderation task's pure logic: keyword lists over timed text, the
classifier's scores as segments, suggestions and scores per label, the
model's shapes against the spec, the input tensor, the spec's rules."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from mediaflow_api.tasks import Classifier, ModerationTask, TaskSpec
from mediaflow_worker.errors import AssetError, AssetNotFoundError
from mediaflow_worker.understanding import moderation as m

pytestmark = pytest.mark.unit

RGB = ["red", "green", "blue"]


def classifier(**overrides: Any) -> Classifier:
    doc: dict[str, Any] = {
        "model": {"path": "colours.onnx"},
        "labels": RGB,
        "inputSize": [16, 8],
        "thresholds": [
            {"label": "red", "review": 0.5, "block": 0.8},
            {"label": "blue", "review": 0.6},
        ],
    }
    doc.update(overrides)
    return Classifier.model_validate(doc)


def task(**doc: Any) -> ModerationTask:
    return ModerationTask.model_validate(doc)


# ------------------------------------------------------------------ keywords


def test_a_block_list_word_in_text_is_a_block_segment_with_the_texts_times() -> None:
    spec = task(
        block=[{"name": "banned", "words": ["Forbidden Word"]}],
        review=[{"name": "watch", "words": ["casino"]}],
    )
    texts = [
        m.TimedText(1.0, 3.0, "this is the FORBIDDEN word here", 0.9),
        m.TimedText(4.0, 5.5, "visit our casino", 0.7),
        m.TimedText(6.0, 7.0, "nothing to see", 0.99),
    ]
    found = m.keyword_segments(texts, "ocr", m.keyword_rules(spec))
    assert set(found) == {"banned", "watch"}
    (hit,) = found["banned"]
    assert (hit.start, hit.end, hit.source, hit.suggestion) == (1.0, 3.0, "ocr", "block")
    assert hit.keyword == "forbidden word"
    assert hit.text == "this is the FORBIDDEN word here"
    assert hit.score == 0.9
    assert found["watch"][0].suggestion == "review"


def test_whole_words_only_and_one_segment_per_keyword_hit() -> None:
    rules = m.keyword_rules(task(review=[{"name": "w", "words": ["art", "bet", "win"]}]))
    found = m.keyword_segments(
        [m.TimedText(0, 1, "start betting", 0.8), m.TimedText(2, 3, "bet to win", 0.8)],
        "speech",
        rules,
    )
    assert [(s.start, s.keyword) for s in found["w"]] == [(2, "bet"), (2, "win")]


def test_with_word_times_a_keyword_segment_is_its_words_each_time_it_is_said() -> None:
    rules = m.keyword_rules(task(block=[{"name": "b", "words": ["go forward", "ten"]}]))
    words: tuple[tuple[float, float, str], ...] = (
        (1.0, 1.2, "go"),
        (1.2, 1.6, "forward"),
        (1.7, 1.9, "ten"),
        (2.0, 2.2, "GO"),
        (2.2, 2.5, "forward"),
    )
    text = m.TimedText(1.0, 2.5, "go forward ten go forward", 0.8, words)
    found = m.keyword_segments([text], "speech", rules)
    assert [(s.keyword, s.start, s.end) for s in found["b"]] == [
        ("go forward", 1.0, 1.6),
        ("go forward", 2.0, 2.5),
        ("ten", 1.7, 1.9),
    ]
    # Words that do not spell the keyword: the text's whole time.
    odd = m.TimedText(3.0, 4.0, "ten", 0.8, ((3.0, 3.5, "tenth"),))
    (hit,) = m.keyword_segments([odd], "speech", rules)["b"]
    assert (hit.start, hit.end) == (3.0, 4.0)


def test_confidence_is_clipped_to_a_score() -> None:
    rules = m.keyword_rules(task(block=[{"name": "b", "words": ["x"]}]))
    (hit,) = m.keyword_segments([m.TimedText(0, 1, "x", 1.7)], "ocr", rules)["b"]
    assert hit.score == 1.0


# ------------------------------------------------------------------ classifier


def scores_of(colours: list[str]) -> list[tuple[float, list[float]]]:
    table = {"red": [0.9, 0.05, 0.05], "blue": [0.05, 0.05, 0.9], "pink": [0.6, 0.2, 0.2]}
    return [(float(i), table[c]) for i, c in enumerate(colours)]


def test_classifier_runs_become_segments_on_the_grid() -> None:
    found = m.classifier_segments(
        scores_of(["red", "red", "blue", "blue"]), classifier(), duration=4.0
    )
    assert [(s.start, s.end, s.suggestion) for s in found["red"]] == [(0.0, 2.0, "block")]
    assert [(s.start, s.end, s.suggestion) for s in found["blue"]] == [(2.0, 4.0, "review")]
    assert found["red"][0].source == "image"
    assert found["red"][0].score == pytest.approx(0.9)
    assert "green" not in found  # no threshold: never reported


def test_a_segment_below_block_is_review_and_the_end_is_clipped_to_the_duration() -> None:
    found = m.classifier_segments(scores_of(["pink", "pink", "blue"]), classifier(), duration=2.5)
    assert [(s.start, s.end, s.suggestion) for s in found["red"]] == [(0.0, 2.0, "review")]
    assert found["blue"][0].end == 2.5


def test_one_missed_frame_does_not_split_a_segment_two_do() -> None:
    one = m.classifier_segments(scores_of(["red", "blue", "red"]), classifier())
    assert [(s.start, s.end) for s in one["red"]] == [(0.0, 3.0)]
    two = m.classifier_segments(scores_of(["red", "blue", "blue", "red"]), classifier())
    assert [(s.start, s.end) for s in two["red"]] == [(0.0, 1.0), (3.0, 4.0)]


def test_a_block_only_threshold_reports_block_segments_only() -> None:
    spec = classifier(thresholds=[{"label": "red", "block": 0.8}])
    found = m.classifier_segments(scores_of(["pink", "red"]), spec)
    assert [(s.start, s.suggestion) for s in found["red"]] == [(1.0, "block")]


def test_activation() -> None:
    soft = m.activate([1.0, 1.0, 3.0], "softmax")
    assert sum(soft) == pytest.approx(1.0)
    assert soft[2] > 0.7
    assert m.activate([0.0, 1000.0], "sigmoid") == [0.5, pytest.approx(1.0)]
    assert m.activate([0.2, 0.3], "none") == [0.2, 0.3]


# ------------------------------------------------------------------ results


def test_labels_suggestion_score_and_order() -> None:
    labels = m.merge_labels(
        {"a": [m.Segment(5, 6, "ocr", 0.7, "review", "t", "k")]},
        {
            "b": [m.Segment(1, 2, "image", 0.6, "block")],
            "a": [m.Segment(1, 2, "speech", 0.9, "review")],
        },
    )
    results = m.label_results(labels)
    assert [r["label"] for r in results] == ["b", "a"]  # block before review
    a = results[1]
    assert a["suggestion"] == "review"
    assert a["score"] == 0.9
    assert [s["start"] for s in a["segments"]] == [1, 5]
    assert a["segments"][1] == {
        "start": 5,
        "end": 6,
        "source": "ocr",
        "score": 0.7,
        "suggestion": "review",
        "text": "t",
        "keyword": "k",
    }
    assert m.worst(r["suggestion"] for r in results) == "block"
    assert m.worst([]) == "pass"
    assert m.summary("block", results) == {"suggestion": "block", "labels": {"b": 1, "a": 2}}


def test_summary_stays_small() -> None:
    many = m.label_results({f"l{i}": [m.Segment(0, 1, "ocr", 0.5, "review")] for i in range(50)})
    info = m.summary("review", many)
    assert len(info["labels"]) == m.INFO_MAX_LABELS
    assert info["moreLabels"] == 30
    long = m.label_results(
        {f"{i:02d}" + "x" * 98: [m.Segment(0, 1, "image", 0.5, "block")] for i in range(20)}
    )
    info = m.summary("block", long)
    assert 0 < len(info["labels"]) < 20
    assert info["moreLabels"] == 20 - len(info["labels"])
    assert len(json.dumps(info)) < 1024


def test_blocked_message_names_label_source_keyword_and_time() -> None:
    results = m.label_results({"banned": [m.Segment(1.5, 3, "speech", 0.8, "block", "x y", "y")]})
    message = m.blocked_message("mod", "block", results)
    assert message == "task 'mod': moderation suggests block: banned (block: speech 'y' at 1.5-3 s)"


# ------------------------------------------------------------------ model checks


def io(shape: list[Any], kind: str = "tensor(float)") -> list[tuple[str, list[Any], str]]:
    return [("x", shape, kind)]


def test_fitting_shapes_pass_dynamic_dims_included() -> None:
    spec = classifier()
    m.check_io(io([1, 3, 8, 16]), io([1, 3]), spec, "model")
    m.check_io(io(["N", 3, None, "w"]), io(["N", 3]), spec, "model")
    m.check_io(io([1, 3, 8, 16]), io(["N", "K"]), spec, "model")  # checked per frame
    m.check_io(io([1, 8, 16, 3]), io([3]), classifier(layout="NHWC"), "model")


@pytest.mark.parametrize(
    ("inputs", "outputs", "words"),
    [
        (io([1, 3, 224, 224]), io([1, 3]), "needs 1x3x8x16"),
        (io([1, 8, 16, 3]), io([1, 3]), "needs 1x3x8x16"),
        (io([4, 3, 8, 16]), io([4, 3]), "needs 1x3x8x16"),
        (io([1, 3, 8]), io([1, 3]), "is 1x3x8"),
        (io([1, 3, 8, 16], "tensor(uint8)"), io([1, 3]), "must be tensor(float)"),
        (io([1, 3, 8, 16]), io([1, 1000]), "holds 1000 scores per image; classifier.labels has 3"),
        (io([1, 3, 8, 16]), io([1, 3], "tensor(int64)"), "must hold float scores"),
        ([], io([1, 3]), "has 0 inputs"),
        (io([1, 3, 8, 16]) * 2, io([1, 3]), "has 2 inputs"),
    ],
)
def test_shapes_that_do_not_fit_are_asset_errors(
    inputs: list[tuple[str, list[Any], str]], outputs: list[tuple[str, list[Any], str]], words: str
) -> None:
    with pytest.raises(AssetError, match=re.escape(words)) as caught:
        m.check_io(inputs, outputs, classifier(), "the model")
    assert caught.value.exit_code == 2


def test_preprocess_nchw_rgb_and_nhwc_bgr() -> None:
    image = np.zeros((20, 40, 3), dtype=np.uint8)
    image[:, :, 0] = 255  # red
    tensor = m.preprocess(image, classifier(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5]))
    assert tensor.shape == (1, 3, 8, 16)
    assert tensor.dtype == np.float32
    assert np.allclose(tensor[0, 0], 1.0)
    assert np.allclose(tensor[0, 2], -1.0)
    bgr = m.preprocess(image, classifier(layout="NHWC", channelOrder="BGR"))
    assert bgr.shape == (1, 8, 16, 3)
    assert np.allclose(bgr[0, :, :, 2], 1.0)
    assert np.allclose(bgr[0, :, :, 0], 0.0)


def test_models_dir_file_stays_inside_and_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(m.MODELS_DIR_ENV, str(tmp_path / "models"))
    (tmp_path / "models").mkdir()
    (tmp_path / "outside.onnx").write_bytes(b"x")
    (tmp_path / "models" / "link.onnx").symlink_to(tmp_path / "outside.onnx")
    (tmp_path / "models" / "ok.onnx").write_bytes(b"onnx")
    (tmp_path / "models" / "empty.onnx").write_bytes(b"")
    assert m.dir_model_file("ok.onnx", "w") == (tmp_path / "models" / "ok.onnx").resolve()
    with pytest.raises(AssetNotFoundError, match="does not exist"):
        m.dir_model_file("missing.onnx", "w")
    with pytest.raises(AssetError, match="outside the models directory"):
        m.dir_model_file("link.onnx", "w")
    with pytest.raises(AssetError, match="empty"):
        m.dir_model_file("empty.onnx", "w")
    monkeypatch.setattr(m, "MAX_DIR_MODEL_BYTES", 2)
    with pytest.raises(AssetError, match="is 4 bytes; the limit is 2"):
        m.dir_model_file("ok.onnx", "w")


def test_bucket_model_errors_name_the_task_and_the_model(tmp_path: Path) -> None:
    def missing(bucket: str, key: str) -> Path:
        raise AssetNotFoundError(f"watermark image {bucket}/{key} not found")

    with pytest.raises(AssetNotFoundError) as caught:
        m.fetch_bucket_model("models", "c.onnx", missing, "mod")
    assert caught.value.message == "task 'mod': classifier model models/c.onnx not found"
    big = tmp_path / "big.onnx"
    big.write_bytes(b"x" * (m.MAX_BUCKET_MODEL_BYTES + 1))
    with pytest.raises(AssetError, match="put larger models on the models volume"):
        m.fetch_bucket_model("models", "big.onnx", lambda b, k: big, "mod")


# ------------------------------------------------------------------ the spec


def test_spec_defaults_and_round_trip() -> None:
    spec = task(
        block=[{"name": "b", "words": ["x"]}], classifier=classifier().model_dump(by_alias=True)
    )
    assert spec.sources.ocr.enabled
    assert spec.sources.speech.enabled
    assert spec.classifier is not None
    assert spec.classifier.layout == "NCHW"
    entry = TaskSpec.model_validate({"name": "mod", "moderation": spec.model_dump(by_alias=True)})
    dumped = entry.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert TaskSpec.model_validate(dumped) == entry
    assert ModerationTask.needs_ml


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ({}, "set block or review lists, a classifier, or both"),
        (
            {"block": [{"name": "a", "words": ["x"]}], "review": [{"name": "a", "words": ["y"]}]},
            "must be unique",
        ),
        (
            {
                "review": [{"name": "a", "words": ["x"]}],
                "sources": {"ocr": {"enabled": False}, "speech": {"enabled": False}},
            },
            "need sources.ocr or sources.speech",
        ),
        ({"classifier": {"model": {"bucket": "models"}}}, "bucket and key, or path"),
        ({"classifier": {"model": {"path": "../etc/x.onnx"}}}, "pattern|inside the models"),
        ({"classifier": {"model": {"path": "a.onnx", "bucket": "models", "key": "k"}}}, "or path"),
        ({"classifier": {"thresholds": [{"label": "pink", "review": 0.5}]}}, "not one of"),
        ({"classifier": {"thresholds": [{"label": "red"}]}}, "set review, block or both"),
        (
            {"classifier": {"thresholds": [{"label": "red", "review": 0.9, "block": 0.5}]}},
            "review must not be above block",
        ),
        ({"classifier": {"inputSize": [4, 224]}}, "8-1024"),
        ({"classifier": {"std": [1, 0, 1]}}, "above 0"),
        ({"classifier": {"labels": ["red", "red", "blue"]}}, "unique"),
        ({"classifier": {"layout": "CHW"}}, "NCHW"),
        ({"failOn": "pass", "block": [{"name": "a", "words": ["x"]}]}, "block"),
    ],
)
def test_spec_rules(doc: dict[str, Any], words: str) -> None:
    if "classifier" in doc:
        base = classifier().model_dump(by_alias=True, exclude_none=True)
        model = doc["classifier"].pop("model", None)
        base.update(doc["classifier"])
        if model is not None:
            base["model"] = model
        doc = {**doc, "classifier": base}
    with pytest.raises(ValidationError, match=words):
        task(**doc)


# Whole task entries the models and the API server (CEL twins,
# tests/integration/worker/test_task_cel_twins.py) accept and refuse alike.
_CLASSIFIER: dict[str, Any] = {
    "model": {"bucket": "models", "key": "c.onnx"},
    "labels": ["red", "green", "blue"],
    "inputSize": [32, 32],
    "thresholds": [{"label": "red", "review": 0.5, "block": 0.9}],
}


def _mod(**doc: Any) -> dict[str, Any]:
    return {"name": "mod", "moderation": doc}


def _cls(**changes: Any) -> dict[str, Any]:
    return _mod(classifier={**_CLASSIFIER, **changes})


MODERATION_VALID: list[dict[str, Any]] = [
    _mod(block=[{"name": "banned", "words": ["forbidden"]}]),
    {
        "name": "mod-all",
        "moderation": {
            "block": [{"name": "banned", "words": ["forbidden"]}],
            "review": [{"name": "gambling", "words": ["casino"]}],
            "sources": {"ocr": {"intervalSeconds": 2}, "speech": {"enabled": False}},
            "classifier": {**_CLASSIFIER, "model": {"path": "nsfw/model.onnx"}},
            "failOn": "block",
        },
    },
    _cls(thresholds=[{"label": "blue", "block": 0.7}], layout="NHWC", channelOrder="BGR"),
]
MODERATION_INVALID: list[tuple[dict[str, Any], str]] = [
    (_mod(), "set block or review lists, a classifier, or both"),
    (
        _mod(block=[{"name": "a", "words": ["x"]}], review=[{"name": "a", "words": ["y"]}]),
        "the names of block and review lists must be unique",
    ),
    (
        _mod(
            review=[{"name": "a", "words": ["x"]}],
            sources={"ocr": {"enabled": False}, "speech": {"enabled": False}},
        ),
        "need sources.ocr or sources.speech enabled",
    ),
    (_cls(model={"bucket": "models"}), "set either bucket and key, or path"),
    (_cls(model={"path": "a.onnx", "bucket": "models", "key": "k"}), "set either bucket"),
    (_cls(model={"path": "../etc/x.onnx"}), "model.path"),
    (_cls(thresholds=[{"label": "pink", "review": 0.5}]), "one of classifier.labels"),
    (_cls(thresholds=[{"label": "red"}]), "set review, block or both"),
    (
        _cls(thresholds=[{"label": "red", "review": 0.9, "block": 0.5}]),
        "review must not be above block",
    ),
    (_cls(inputSize=[4, 224]), "width and height must be 8-1024"),
    (_cls(std=[1, 0, 1]), "every value must be above 0"),
    (_cls(labels=["red", "red", "blue"]), "classifier.labels must be unique"),
]


@pytest.mark.parametrize("raw", MODERATION_VALID, ids=lambda r: str(r["name"]))
def test_valid_task_entries(raw: dict[str, Any]) -> None:
    assert TaskSpec.model_validate(raw).kind == "moderation"


@pytest.mark.parametrize(
    ("raw", "needle"), MODERATION_INVALID, ids=[n for _, n in MODERATION_INVALID]
)
def test_invalid_task_entries(raw: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(needle)):
        TaskSpec.model_validate(raw)


def test_preflight_fetches_a_bucket_model_once_and_refuses_a_missing_dir_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mediaflow_worker import preflight

    model = tmp_path / "c.onnx"
    model.write_bytes(b"onnx")
    fetched: list[tuple[str, str]] = []

    def fetch(bucket: str, key: str) -> Path:
        fetched.append((bucket, key))
        return model

    entry = TaskSpec.model_validate(_cls())
    serve = preflight.check([entry, entry.model_copy(update={"name": "again"})], fetch, "font")
    assert fetched == [("models", "c.onnx")]
    assert serve("models", "c.onnx") == model
    assert fetched == [("models", "c.onnx")]  # served from the preflight's copy
    monkeypatch.setenv(m.MODELS_DIR_ENV, str(tmp_path))
    in_dir = TaskSpec.model_validate(_cls(model={"path": "nope/model.onnx"}))
    with pytest.raises(AssetNotFoundError, match=r"task 'mod': classifier model nope/model.onnx"):
        preflight.check([in_dir], fetch, "font")
