"""Custom output names (``tasks[].output``) with ``mediaflow-worker job``
against the real MinIO of the local stack: the files land at the rendered
keys, the manifest (still in the Workflow's output directory) lists them, a
re-run with other names removes the old ones, a failure removes only its own,
and a key that holds another input's object is never overwritten (exit 2)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from mediaflow_api import metadata as md

from .helpers import ffprobe, make_clip, make_png
from .test_job_minio import Env

pytestmark = pytest.mark.integration

WEB = {"name": "web", "transcode": {"preset": "h264-360p", "video": {"preset": "ultrafast"}}}
THUMBS = {"name": "thumbs", "snapshot": {"count": 2, "format": "png", "width": 80}}
SHEET = {"name": "sheet", "sprite": {"columns": 2, "rows": 2, "width": 64, "intervalSeconds": 0.5}}


def _named(task: dict[str, Any], **output: Any) -> dict[str, Any]:
    return {**task, "output": output}


TASKS = [
    _named(WEB, prefix="public/", fileName="{inputDir}{inputName}.{format}"),
    _named(
        THUMBS,
        prefix="public/",
        fileName="{inputDir}{inputName}/thumb_{number}.{format}",
        numberWidth=3,
        numberStart=0,
    ),
    _named(SHEET, prefix="sprites/", fileName="{inputName}-{inputExt}/sheet-{number}.{format}"),
]


@pytest.fixture
def env(minio_server: Any, tmp_path: Path) -> Env:
    logo = tmp_path / "logo.png"
    make_png(logo, "blue@0.5", (48, 48))
    return Env(minio_server, tmp_path, logo)


def _job(env: Env, key: str, etag: str, tasks: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    job = env.job(key, etag, tasks=tasks, **kw)
    job["output"]["triggerPrefix"] = "incoming/"
    return job


def _manifest(env: Env, key: str) -> dict[str, Any]:
    raw = env.client.get_object(env.media, env.out_dir(key) + md.MANIFEST_NAME).read()
    doc: dict[str, Any] = json.loads(raw)
    return doc


def _meta(env: Env, key: str) -> dict[str, str]:
    stat = env.client.stat_object(env.media, key)
    return {k.lower(): v for k, v in (stat.metadata or {}).items()}


def test_custom_names_land_at_their_keys_and_the_manifest_lists_them(env: Env) -> None:
    clip = make_clip(env.tmp, "clip", duration=2)
    key = "incoming/shows/ep1.mp4"
    etag = env.upload(key, clip.path)
    done, summary = env.run(_job(env, key, etag, TASKS))
    assert done.returncode == 0, done.stderr
    expected = [
        "public/shows/ep1.mp4",
        "public/shows/ep1/thumb_000.png",
        "public/shows/ep1/thumb_001.png",
        "sprites/ep1-mp4/sheet-1.jpg",
        "sprites/ep1-mp4/sheet.vtt",
    ]
    out_dir = env.out_dir(key)
    # Only the manifest stays in the Workflow's output directory.
    assert env.keys(out_dir) == [out_dir + md.MANIFEST_NAME]
    assert env.keys("public/") + env.keys("sprites/") == expected
    assert summary.outputs == len(expected)
    doc = _manifest(env, key)
    listed = [(o["bucket"], o["key"]) for t in doc["tasks"] for o in t["outputs"]]
    assert sorted(listed) == [(env.media, k) for k in expected]
    assert doc["customOutputs"] == [{"bucket": env.media, "key": k} for k in expected]
    for out_key in expected:
        meta = _meta(env, out_key)
        assert meta["x-amz-meta-mediaflow-workflow"] == "media-team/vod"
        assert meta["x-amz-meta-mediaflow-source-key"] == key
    video = env.tmp / "web.mp4"
    env.client.fget_object(env.media, "public/shows/ep1.mp4", str(video))
    assert ffprobe(video)["streams"][0]["codec_name"] == "h264"
    thumb = env.tmp / "t.png"
    env.client.fget_object(env.media, "public/shows/ep1/thumb_001.png", str(thumb))
    assert ffprobe(thumb)["streams"][0]["width"] == 80
    # The sprite index names the sheets by their new names.
    vtt = env.client.get_object(env.media, "sprites/ep1-mp4/sheet.vtt").read().decode()
    assert "sheet-1.jpg#xywh=" in vtt
    assert "sprite-" not in vtt


def test_a_rerun_with_other_names_removes_the_old_ones_and_a_failure_keeps_them(
    env: Env,
) -> None:
    clip = make_clip(env.tmp, "c", duration=1)
    key = "incoming/c.mp4"
    etag = env.upload(key, clip.path)
    first = [_named(THUMBS, prefix="a/", fileName="{inputName}_{number}.{format}")]
    done, _ = env.run(_job(env, key, etag, first))
    assert done.returncode == 0, done.stderr
    assert env.keys("a/") == ["a/c_1.png", "a/c_2.png"]

    # A failing run (its second task passes the output limit after the first
    # uploaded) deletes its own uploads and leaves the earlier outputs, which
    # its failure manifest still records.
    failing = [
        _named(THUMBS, prefix="b/", fileName="{inputName}_{number}.{format}"),
        _named(WEB, prefix="b/", fileName="{inputName}.{format}"),
    ]
    small = {"timeoutSeconds": 300, "maxOutputBytes": 40_000}
    done, summary = env.run(_job(env, key, etag, failing, limits=small))
    assert (done.returncode, summary.reason) == (1, "OutputTooLarge"), done.stderr
    assert env.keys("b/") == []
    assert env.keys("a/") == ["a/c_1.png", "a/c_2.png"]
    doc = _manifest(env, key)
    assert doc["ok"] is False
    assert [o["key"] for o in doc["customOutputs"]] == ["a/c_1.png", "a/c_2.png"]

    # The next success with other names finds them through that manifest.
    other = [_named(THUMBS, prefix="c/", fileName="{inputName}-{number}.{format}")]
    done, _ = env.run(_job(env, key, etag, other))
    assert done.returncode == 0, done.stderr
    assert env.keys("a/") == []
    assert env.keys("c/") == ["c/c-1.png", "c/c-2.png"]


def test_a_key_holding_another_inputs_output_is_never_overwritten(env: Env) -> None:
    clip = make_clip(env.tmp, "same", duration=1)
    # No {inputDir}: two inputs of one name in two directories render one key.
    tasks = [
        _named(THUMBS, prefix="p/", fileName="{inputName}-{number}.{format}"),
        _named({"name": "facts", "analysis": {}}, prefix="p/", fileName="{inputName}.{format}"),
    ]
    first_key, second_key = "incoming/x/same.mp4", "incoming/y/same.mp4"
    done, _ = env.run(_job(env, first_key, env.upload(first_key, clip.path), tasks))
    assert done.returncode == 0, done.stderr
    before = {k: env.client.stat_object(env.media, k).etag for k in env.keys("p/")}
    assert sorted(before) == ["p/same-1.png", "p/same-2.png", "p/same.json"]

    done, summary = env.run(_job(env, second_key, env.upload(second_key, clip.path), tasks))
    assert done.returncode == 2, done.stderr
    assert summary.reason == "OutputCollision"
    assert f"s3://{env.uploads}/{first_key}" in summary.message
    after = {k: env.client.stat_object(env.media, k).etag for k in env.keys("p/")}
    assert after == before
    for out_key in before:
        assert _meta(env, out_key)["x-amz-meta-mediaflow-source-key"] == first_key
    assert _manifest(env, second_key)["error"]["reason"] == "OutputCollision"

    # An object mediaflow did not write is not overwritten either.
    env.client.put_object(env.media, "q/mine.json", io.BytesIO(b"{}"), 2)
    facts = [_named({"name": "facts", "analysis": {}}, prefix="q/", fileName="{inputName}.json")]
    mine = "incoming/mine.mp4"
    done, summary = env.run(_job(env, mine, env.upload(mine, clip.path), facts))
    assert (done.returncode, summary.reason) == (2, "OutputCollision")
    assert "mediaflow did not write" in summary.message
    assert env.client.get_object(env.media, "q/mine.json").read() == b"{}"
