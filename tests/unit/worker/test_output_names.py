"""Custom output names (``tasks[].output``): template rendering, where each
output of a task goes, and the Workflow-level rules (loop safety, no two
tasks with the same names) whose CEL twins ``test_task_cel_twins`` proves."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mediaflow_api.tasks import TaskSpec
from mediaflow_api.tasks.output import NameVars, index_template, render
from mediaflow_api.workflow import WorkflowSpec
from mediaflow_operator.notify.events import output_of
from mediaflow_operator.reconcile import buckets_to_check
from mediaflow_worker import output_names
from mediaflow_worker.errors import OutputCollisionError, OutputNameError
from mediaflow_worker.tasks import OutputFile

pytestmark = pytest.mark.unit

NAMED = {"fileName": "{inputDir}{inputName}_{taskName}.{format}"}


def _spec(*tasks: dict[str, Any], output: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "trigger": {"bucket": "uploads", "prefix": "incoming/"},
        "tasks": list(tasks),
    }
    if output is not None:
        spec["output"] = output
    return spec


def _task(name: str, **output: Any) -> dict[str, Any]:
    return {"name": name, "analysis": {}, "output": {**NAMED, **output}}


# Workflow specs with custom output names: (id, spec). Shared with the CEL twins.
VALID_SPECS: list[tuple[str, dict[str, Any]]] = [
    ("prefix beside the trigger", _spec(_task("a", prefix="processed/"))),
    ("another bucket, trigger prefix", _spec(_task("a", bucket="public", prefix="incoming/"))),
    (
        "workflow output bucket elsewhere",
        _spec(_task("a", prefix="incoming/"), output={"bucket": "results"}),
    ),
    (
        "two tasks, same template, other prefixes",
        _spec(_task("a", prefix="x/"), _task("b", prefix="y/")),
    ),
    ("prefix shares letters only", _spec(_task("a", prefix="incomings/"))),
]
# (id, spec, words the error must contain, pydantic's and the server's)
INVALID_SPECS: list[tuple[str, dict[str, Any], str]] = [
    ("no prefix in the trigger bucket", _spec(_task("a")), "outside the trigger directory"),
    ("prefix below the trigger", _spec(_task("a", prefix="incoming/out/")), "outside the trigger"),
    ("prefix is the trigger", _spec(_task("a", prefix="incoming/")), "outside the trigger"),
    (
        "explicit trigger bucket",
        _spec(_task("a", bucket="uploads", prefix="incoming/")),
        "outside the trigger",
    ),
    (
        "whole-bucket trigger",
        {"trigger": {"bucket": "uploads"}, "tasks": [_task("a", prefix="out/")]},
        "outside the trigger",
    ),
    (
        "two tasks with the same names",
        _spec(_task("a", prefix="out/"), _task("b", prefix="out/")),
        "same output names",
    ),
]


@pytest.mark.parametrize(("case", "raw"), VALID_SPECS, ids=[c for c, _ in VALID_SPECS])
def test_workflow_with_custom_names_outside_the_trigger_is_valid(
    case: str, raw: dict[str, Any]
) -> None:
    WorkflowSpec.model_validate(copy.deepcopy(raw))


@pytest.mark.parametrize(
    ("case", "raw", "needle"), INVALID_SPECS, ids=[c for c, _, _ in INVALID_SPECS]
)
def test_workflow_with_looping_or_colliding_names_is_refused(
    case: str, raw: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        WorkflowSpec.model_validate(copy.deepcopy(raw))
    assert needle in str(caught.value)


def test_workflow_rules_have_cel_twins_in_the_schema() -> None:
    text = str(WorkflowSpec.model_json_schema(by_alias=True))
    assert "outside the trigger directory" in text
    assert "same output names" in text


@pytest.mark.parametrize(
    ("key", "prefix", "expected"),
    [
        ("incoming/a/b/clip.final.mp4", "incoming/", NameVars("clip.final", "mp4", "a/b/", "t")),
        ("incoming/clip.mov", "incoming/", NameVars("clip", "mov", "", "t")),
        ("incoming/README", "incoming/", NameVars("README", "", "", "t")),
        ("incoming/.hidden", "incoming/", NameVars(".hidden", "", "", "t")),
        ("x/clip one.mp4", "", NameVars("clip one", "mp4", "x/", "t")),
    ],
)
def test_name_variables_come_from_the_key_relative_to_the_trigger(
    key: str, prefix: str, expected: NameVars
) -> None:
    assert NameVars.of(key, prefix, "t") == expected


def test_render_replaces_every_variable_and_pads_the_number() -> None:
    variables = NameVars("clip", "mov", "a/", "thumbs")
    template = "{inputDir}{inputName}.{inputExt}/{taskName}-{number}.{format}"
    assert render(template, variables, "jpg", 7, 3) == "a/clip.mov/thumbs-007.jpg"
    assert render(template, variables, "jpg", 1234, 3) == "a/clip.mov/thumbs-1234.jpg"
    assert render("{inputName}{number}.{format}", variables, "vtt", None, 3) == "clip.vtt"
    assert index_template("{inputName}_sprite_{number}.{format}") == "{inputName}_sprite.{format}"
    assert index_template("{inputName}/{number}/s.{format}") == "{inputName}/s.{format}"
    assert index_template("{number}/{inputName}.{format}") == "{inputName}.{format}"


def _files(root: Path, task: str, names: list[str]) -> list[OutputFile]:
    outs = []
    for name in names:
        path = root / task / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
        outs.append(OutputFile(path))
    return outs


def _place(task: dict[str, Any], outputs: list[OutputFile], root: Path) -> list[tuple[str, str]]:
    spec = TaskSpec.model_validate(task)
    placed = output_names.place(
        spec,
        outputs,
        root / spec.name,
        default_prefix="out/clip.mp4.mediaflow/ns/wf/",
        input_key="incoming/sub/clip.mp4",
        trigger_prefix="incoming/",
    )
    return [(p.bucket or "-", p.key) for p in placed]


def test_without_output_names_the_layout_is_the_workflows_directory(tmp_path: Path) -> None:
    outs = _files(tmp_path, "web", ["web.mp4"])
    assert _place({"name": "web", "transcode": {}}, outs, tmp_path) == [
        ("-", "out/clip.mp4.mediaflow/ns/wf/web/web.mp4")
    ]


def test_a_single_file_takes_the_template_in_its_bucket(tmp_path: Path) -> None:
    outs = _files(tmp_path, "web", ["web.mp4"])
    task = {
        "name": "web",
        "transcode": {},
        "output": {"bucket": "public", "prefix": "v/", **NAMED},
    }
    assert _place(task, outs, tmp_path) == [("public", "v/sub/clip_web.mp4")]


def test_snapshots_are_numbered_from_the_start_with_the_width(tmp_path: Path) -> None:
    outs = _files(tmp_path, "thumbs", ["snapshot-0001.jpg", "snapshot-0002.jpg"])
    task = {
        "name": "thumbs",
        "snapshot": {"count": 2},
        "output": {"fileName": "{inputName}-{number}.{format}", "numberWidth": 2, "numberStart": 0},
    }
    assert [k for _, k in _place(task, outs, tmp_path)] == ["clip-00.jpg", "clip-01.jpg"]


def test_the_sprite_index_names_the_renamed_sheets_relative_to_itself(tmp_path: Path) -> None:
    outs = _files(tmp_path, "sprite", ["sprite-001.jpg", "sprite-002.jpg", "sprite.vtt"])
    outs[2].path.write_text(
        "WEBVTT\n\n00:00.000 --> 00:01.000\nsprite-001.jpg#xywh=0,0,160,90\n\n"
        "00:01.000 --> 00:02.000\nsprite-002.jpg#xywh=0,0,160,90\n"
    )
    task = {
        "name": "sprite",
        "sprite": {},
        "output": {"prefix": "s/", "fileName": "{inputName}/sheets/{taskName}_{number}.{format}"},
    }
    assert [k for _, k in _place(task, outs, tmp_path)] == [
        "s/clip/sheets/sprite_1.jpg",
        "s/clip/sheets/sprite_2.jpg",
        "s/clip/sheets/sprite.vtt",
    ]
    vtt = outs[2].path.read_text()
    assert "sprite_1.jpg#xywh=0,0,160,90" in vtt
    assert "sprite_2.jpg#xywh" in vtt
    assert "sprite-00" not in vtt


def test_sprite_index_in_another_directory_gets_a_relative_path(tmp_path: Path) -> None:
    outs = _files(tmp_path, "sp", ["sprite-001.jpg", "sprite.vtt"])
    outs[1].path.write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nsprite-001.jpg#xywh=0,0,1,1\n")
    task = {"name": "sp", "sprite": {}, "output": {"fileName": "{inputName}/{number}/s.{format}"}}
    keys = [k for _, k in _place(task, outs, tmp_path)]
    assert keys == ["clip/1/s.jpg", "clip/s.vtt"]
    assert "\n1/s.jpg#xywh=0,0,1,1" in outs[1].path.read_text()


def test_a_streaming_package_keeps_its_layout_next_to_the_named_playlist(tmp_path: Path) -> None:
    names = ["master.m3u8", "stream_0/index.m3u8", "stream_0/data000.ts"]
    outs = _files(tmp_path, "hls", names)
    task = {
        "name": "hls",
        "adaptiveStreaming": {},
        "output": {"prefix": "st/", "fileName": "{inputName}/{taskName}.{format}"},
    }
    assert [k for _, k in _place(task, outs, tmp_path)] == [
        "st/clip/hls.m3u8",
        "st/clip/stream_0/index.m3u8",
        "st/clip/stream_0/data000.ts",
    ]


def test_two_outputs_of_one_task_with_one_key_are_a_collision(tmp_path: Path) -> None:
    # The playlist named like another file of the package.
    outs = _files(tmp_path, "hls", ["master.m3u8", "hls.m3u8"])
    task = {
        "name": "hls",
        "adaptiveStreaming": {},
        "output": {"fileName": "{inputName}/{taskName}.{format}"},
    }
    with pytest.raises(OutputCollisionError, match="same key") as caught:
        _place(task, outs, tmp_path)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("key", ["incoming/a//clip.mp4", "incoming/../clip.mp4"])
def test_a_rendered_key_s3_cannot_hold_is_bad_input(tmp_path: Path, key: str) -> None:
    outs = _files(tmp_path, "web", ["web.mp4"])
    task = TaskSpec.model_validate({"name": "web", "transcode": {}, "output": NAMED})
    with pytest.raises(OutputNameError) as caught:
        output_names.place(
            task,
            outs,
            tmp_path / "web",
            default_prefix="",
            input_key=key,
            trigger_prefix="incoming/",
        )
    assert caught.value.exit_code == 2


def test_a_notification_names_the_bucket_of_a_custom_output() -> None:
    entry = {"bucket": "public", "key": "v/clip.mp4", "size": 3, "contentType": "video/mp4"}
    out = output_of("web", "uploads", entry)
    assert (out.bucket, out.key, out.details) == ("public", "v/clip.mp4", None)
    assert output_of("web", "uploads", {"key": "k", "size": 1}).bucket == "uploads"


def test_hls_names_rename_variants_and_segments_and_rewrite_every_reference(
    tmp_path: Path,
) -> None:
    names = ["master.m3u8", "stream_0/index.m3u8", "stream_0/init.mp4"]
    names += ["stream_0/segment_00000.m4s", "stream_0/segment_00001.m4s"]
    outs = _files(tmp_path, "hls", names)
    root = tmp_path / "hls"
    (root / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nstream_0/index.m3u8\n"
    )
    (root / "stream_0/index.m3u8").write_text(
        '#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI="https://keys.example/k"\n'
        '#EXT-X-MAP:URI="init.mp4"\n#EXTINF:1,\nsegment_00000.m4s\n#EXTINF:1,\n'
        "segment_00001.m4s\n#EXT-X-ENDLIST\n"
    )
    task = {
        "name": "hls",
        "adaptiveStreaming": {},
        "output": {
            "fileName": "{inputName}/{taskName}.{format}",
            "variantName": "v/{inputName}_{rendition}.{format}",
            "segmentName": "s/{rendition}/{inputName}-{number}.{format}",
            "numberWidth": 2,
        },
    }
    assert [k for _, k in _place(task, outs, tmp_path)] == [
        "clip/hls.m3u8",
        "clip/v/clip_0.m3u8",
        "clip/s/0/clip-init.mp4",
        "clip/s/0/clip-01.m4s",
        "clip/s/0/clip-02.m4s",
    ]
    assert (root / "master.m3u8").read_text().endswith("\nv/clip_0.m3u8\n")
    variant = (root / "stream_0/index.m3u8").read_text()
    assert 'URI="https://keys.example/k"' in variant  # not a file of the package
    assert '#EXT-X-MAP:URI="../s/0/clip-init.mp4"' in variant
    assert "\n../s/0/clip-01.m4s\n" in variant
    assert "\n../s/0/clip-02.m4s\n" in variant
    assert "segment_" not in variant


def test_the_operator_checks_every_tasks_own_output_bucket_once() -> None:
    spec = WorkflowSpec.model_validate(
        _spec(
            _task("a", bucket="public", prefix="x/"),
            _task("b", bucket="public", prefix="y/"),
            _task("c", prefix="z/"),
            output={"bucket": "results"},
        )
    )
    assert buckets_to_check(spec) == [
        ("trigger", "uploads"),
        ("output", "results"),
        ("task 'a' output", "public"),
    ]
