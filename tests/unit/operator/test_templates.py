"""Template references: the models, the generated CRDs and the pure resolution
(``mediaflow_api.templates``), shared by the operator and ``mediaflow-worker run``."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mediaflow_api import crd, templates
from mediaflow_api.tasks import TaskSpec
from mediaflow_api.templates import TemplateError, TemplateKey, resolve_tasks

pytestmark = pytest.mark.unit

HD = {
    "transcode": {
        "preset": "h264-720p",
        "video": {"height": 480, "crf": 23},
        "audio": {"bitrate": "96k"},
    }
}


def _lookup(store: dict[TemplateKey, dict[str, Any]]) -> templates.TemplateLookup:
    return store.get


def _task(raw: dict[str, Any]) -> TaskSpec:
    return TaskSpec.model_validate(raw)


def test_a_task_without_overrides_takes_the_templates_settings() -> None:
    key = TemplateKey("MediaTemplate", "media", "hd")
    task = _task({"name": "hd", "template": {"name": "hd"}})
    [resolved] = resolve_tasks([task], "media", _lookup({key: HD}))
    assert resolved.template is None
    assert resolved.kind == "transcode"
    assert resolved.transcode is not None
    assert resolved.transcode.preset == "h264-720p"
    assert resolved.transcode.video is not None
    assert resolved.transcode.video.height == 480


def test_overrides_win_and_nested_objects_merge_field_by_field() -> None:
    key = TemplateKey("MediaTemplate", "media", "hd")
    task = _task({"name": "hd", "template": {"name": "hd"}, "transcode": {"video": {"crf": 20}}})
    [resolved] = resolve_tasks([task], "media", _lookup({key: HD}))
    video = resolved.transcode.video if resolved.transcode else None
    assert video is not None
    assert (video.crf, video.height) == (20, 480)
    assert resolved.transcode is not None
    assert resolved.transcode.audio is not None
    assert resolved.transcode.audio.bitrate == "96k"


def test_an_override_equal_to_the_default_keeps_the_templates_value() -> None:
    # What the API server stores: every default filled in (rows: 10, width: 160...).
    key = TemplateKey("ClusterMediaTemplate", "", "thumbs")
    stored = {
        "name": "s",
        "template": {"name": "thumbs", "kind": "ClusterMediaTemplate"},
        "sprite": {"columns": 5, "rows": 10, "width": 160, "maxSheets": 20, "format": "jpeg"},
    }
    [resolved] = resolve_tasks(
        [_task(stored)], "media", _lookup({key: {"sprite": {"rows": 4, "width": 120}}})
    )
    assert resolved.sprite is not None
    assert (resolved.sprite.columns, resolved.sprite.rows, resolved.sprite.width) == (5, 4, 120)


def test_cluster_templates_ignore_the_namespace() -> None:
    task = _task({"name": "a", "template": {"name": "x", "kind": "ClusterMediaTemplate"}})
    assert templates.template_key(task, "team-a") == TemplateKey("ClusterMediaTemplate", "", "x")
    task = _task({"name": "a", "template": {"name": "x"}})
    assert templates.template_key(task, "team-a") == TemplateKey("MediaTemplate", "team-a", "x")


def test_a_missing_template_names_the_task_and_the_template() -> None:
    task = _task({"name": "hd", "template": {"name": "hd-h264"}})
    with pytest.raises(TemplateError) as err:
        resolve_tasks([task], "media", _lookup({}))
    assert err.value.reason == "TemplateNotFound"
    assert "task 'hd'" in err.value.message
    assert "MediaTemplate media/hd-h264" in err.value.message


def test_a_template_of_another_type_is_refused() -> None:
    key = TemplateKey("MediaTemplate", "media", "hd")
    task = _task({"name": "t", "template": {"name": "hd"}, "sprite": {"columns": 4}})
    with pytest.raises(TemplateError) as err:
        resolve_tasks([task], "media", _lookup({key: HD}))
    assert err.value.reason == "TemplateKindMismatch"
    assert "holds transcode settings, the task sets sprite" in err.value.message


def test_a_watermarks_template_is_not_a_tasks_settings() -> None:
    key = TemplateKey("MediaTemplate", "media", "logo")
    task = _task({"name": "t", "template": {"name": "logo"}})
    wm = {"watermarks": [{"text": {"content": "hi"}}]}
    with pytest.raises(TemplateError, match="watermarks template"):
        resolve_tasks([task], "media", _lookup({key: wm}))


def test_merged_settings_are_validated_like_inline_ones() -> None:
    key = TemplateKey("MediaTemplate", "media", "hd")
    # The template's crf and the task's bitrate cannot go together.
    task = _task(
        {"name": "t", "template": {"name": "hd"}, "transcode": {"video": {"bitrate": "1M"}}}
    )
    with pytest.raises(TemplateError) as err:
        resolve_tasks([task], "media", _lookup({key: HD}))
    assert err.value.reason == "TemplateInvalid"
    assert "mutually exclusive" in err.value.message


def test_tasks_without_a_template_pass_unchanged() -> None:
    task = _task({"name": "a", "analysis": {}})
    assert resolve_tasks([task], "media", _lookup({})) == [task]


def test_a_task_with_a_template_sets_at_most_one_type() -> None:
    with pytest.raises(ValidationError, match="at most one"):
        _task({"name": "a", "template": {"name": "x"}, "analysis": {}, "sprite": {}})
    with pytest.raises(ValidationError, match="exactly one"):
        _task({"name": "a"})


def test_an_unresolved_task_says_so_when_asked_its_type() -> None:
    task = _task({"name": "a", "template": {"name": "x"}})
    with pytest.raises(ValueError, match="not resolved"):
        _ = task.kind


def test_template_keys_of_a_raw_spec() -> None:
    spec = {
        "tasks": [
            {"name": "a", "template": {"name": "x"}},
            {"name": "b", "template": {"name": "y", "kind": "ClusterMediaTemplate"}},
            {"name": "c", "template": {"name": "x"}},
            {"name": "d", "analysis": {}},
            {"name": "e", "watermarkTemplate": {"name": "marks"}, "transcode": {}},
        ]
    }
    assert templates.template_keys_of_raw(spec, "ns") == [
        TemplateKey("ClusterMediaTemplate", "", "y"),
        TemplateKey("MediaTemplate", "ns", "marks"),
        TemplateKey("MediaTemplate", "ns", "x"),
    ]


def test_a_template_holds_exactly_one_kind() -> None:
    spec = templates.MediaTemplateSpec.model_validate({"snapshot": {"times": ["1"]}})
    assert spec.kind == "snapshot"
    bad: dict[str, Any]
    for bad in ({}, {"sprite": {}, "analysis": {}}):
        with pytest.raises(ValidationError, match="exactly one of"):
            templates.MediaTemplateSpec.model_validate(bad)


@pytest.mark.parametrize("cluster", [False, True])
def test_template_crds_are_generated_and_structural(cluster: bool) -> None:
    doc = crd.build_template_crd(cluster=cluster)
    assert doc["spec"]["scope"] == ("Cluster" if cluster else "Namespaced")
    version = doc["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Workflows",
        "Used-By",
        "Age",
    ]
    schema = version["schema"]["openAPIV3Schema"]
    spec = schema["properties"]["spec"]
    # The very schema of the inline settings: same properties, same rules.
    workflow_task = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
        "properties"
    ]["spec"]["properties"]["tasks"]["items"]["properties"]
    for kind in ("transcode", "snapshot", "sprite", "animatedImage", "adaptiveStreaming"):
        assert spec["properties"][kind] == workflow_task[kind]
    assert "set exactly one of" in str(spec["x-kubernetes-validations"])
    assert set(schema["properties"]["status"]["properties"]) == {"usedBy", "workflowCount"}


def test_committed_crds_are_fresh() -> None:
    for name, text in crd.render_all().items():
        for directory in (crd.default_path().parent, crd.chart_crds_dir()):
            assert (directory / name).read_text() == text, f"{directory / name} is stale: make crds"


def test_the_cli_prints_every_crd(capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    from mediaflow_operator.cli import main

    assert main(["crd"]) == 0
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(capsys.readouterr().out)]
    assert names == [
        "workflows.mediaflow.dev",
        "mediatemplates.mediaflow.dev",
        "clustermediatemplates.mediaflow.dev",
    ]


LOGO: dict[str, Any] = {"watermarks": [{"text": "(c) Example", "position": "bottom-left"}]}
MARKS = TemplateKey("ClusterMediaTemplate", "", "marks")


def test_a_watermarks_template_draws_first_and_the_tasks_own_on_top() -> None:
    task = _task(
        {
            "name": "hd",
            "template": {"name": "hd"},
            "watermarkTemplate": {"name": "marks", "kind": "ClusterMediaTemplate"},
            "transcode": {"watermarks": [{"text": "mine"}]},
        }
    )
    store: dict[TemplateKey, dict[str, Any]] = {
        TemplateKey("MediaTemplate", "media", "hd"): HD,
        MARKS: LOGO,
    }
    [resolved] = resolve_tasks([task], "media", _lookup(store))
    assert not resolved.refers_to_templates
    assert resolved.transcode is not None
    assert resolved.transcode.preset == "h264-720p"
    assert [w.text for w in resolved.transcode.watermarks or []] == ["(c) Example", "mine"]


def test_watermarks_go_only_where_a_task_type_has_them() -> None:
    task = _task(
        {
            "name": "s",
            "watermarkTemplate": {"name": "marks", "kind": "ClusterMediaTemplate"},
            "analysis": {},
        }
    )
    with pytest.raises(TemplateError, match="analysis takes no watermarks"):
        resolve_tasks([task], "media", _lookup({MARKS: LOGO}))
    not_marks: dict[TemplateKey, dict[str, Any]] = {MARKS: {"sprite": {}}}
    task = _task(
        {
            "name": "t",
            "watermarkTemplate": {"name": "marks", "kind": "ClusterMediaTemplate"},
            "transcode": {},
        }
    )
    with pytest.raises(TemplateError, match="not a watermarks template"):
        resolve_tasks([task], "media", _lookup(not_marks))
    with pytest.raises(TemplateError, match="ClusterMediaTemplate marks not found"):
        resolve_tasks([task], "media", _lookup({}))


def test_too_many_watermarks_after_the_merge_are_refused_naming_the_field() -> None:
    many: dict[str, Any] = {"watermarks": [{"text": str(i)} for i in range(10)]}
    task = _task(
        {
            "name": "t",
            "watermarkTemplate": {"name": "marks", "kind": "ClusterMediaTemplate"},
            "transcode": {"watermarks": [{"text": "one more"}]},
        }
    )
    with pytest.raises(TemplateError, match="watermarks"):
        resolve_tasks([task], "media", _lookup({MARKS: many}))


@pytest.mark.parametrize(
    ("kind", "settings"),
    [("snapshot", {"count": 1}), ("sprite", {}), ("animatedImage", {})],
)
def test_a_watermarks_template_applies_to_every_image_task(
    kind: str, settings: dict[str, Any]
) -> None:
    task = _task(
        {
            "name": "t",
            "watermarkTemplate": {"name": "marks", "kind": "ClusterMediaTemplate"},
            kind: {**settings, "watermarks": [{"text": "mine", "font": "cjk-sans"}]},
        }
    )
    (resolved,) = resolve_tasks([task], "media", _lookup({MARKS: LOGO}))
    marks = getattr(resolved.type_spec, "watermarks", None) or []
    assert len(marks) == 2
    assert marks[-1].text == "mine"
    assert marks[-1].font == "cjk-sans"
