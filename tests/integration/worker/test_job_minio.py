"""``mediaflow-worker job`` against the real MinIO of the local stack, run as
the Job's container would run it: a subprocess with env vars only."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from minio import Minio

from mediaflow_api import metadata as md
from mediaflow_api.job import TerminationSummary

from .helpers import WORKER, ffprobe, make_clip, make_png

pytestmark = pytest.mark.integration

TASKS: list[dict[str, Any]] = [
    {
        "name": "web",
        "transcode": {
            "preset": "h264-360p",
            "video": {"preset": "ultrafast"},
            "watermarks": [
                {"image": {"bucket": "assets", "key": "brand/logo.png"}, "width": "20%"}
            ],
        },
    },
    {"name": "thumbs", "snapshot": {"count": 2, "format": "png", "width": 80}},
    {
        "name": "hls",
        "adaptiveStreaming": {
            "renditions": [{"height": 144, "videoBitrate": "200k"}],
            "segmentSeconds": 1,
            "preset": "ultrafast",
        },
    },
    {"name": "sheet", "sprite": {"columns": 2, "rows": 2, "width": 64}},
    {"name": "facts", "analysis": {"loudness": True}},
]


class Env:
    """Buckets and a runner for one test."""

    def __init__(self, server: Any, tmp: Path, logo: Path) -> None:
        self.server = server
        self.client: Minio = server.client()
        suffix = uuid.uuid4().hex[:8]
        self.uploads, self.media = f"up-{suffix}", f"media-{suffix}"
        for bucket in (self.uploads, self.media):
            self.client.make_bucket(bucket)
        if not self.client.bucket_exists("assets"):
            self.client.make_bucket("assets")
        self.client.fput_object("assets", "brand/logo.png", str(logo), content_type="image/png")
        self.tmp = tmp

    def upload(self, key: str, path: Path) -> str:
        result = self.client.fput_object(self.uploads, key, str(path))
        return str(result.etag)

    def job(
        self,
        key: str,
        etag: str,
        *,
        tasks: list[dict[str, Any]] = TASKS,
        force: bool = False,
        limits: dict[str, Any] | None = None,
        workflow: str = "vod",
    ) -> dict[str, Any]:
        return {
            "workflow": {"namespace": "media-team", "name": workflow, "uid": "u1", "generation": 3},
            "input": {"bucket": self.uploads, "key": key, "etag": etag},
            "output": {"bucket": self.media, "dir": self.out_dir(key, workflow)},
            "tasks": tasks,
            "limits": limits or {"timeoutSeconds": 300},
            "force": force,
        }

    def out_dir(self, key: str, workflow: str = "vod") -> str:
        """The output directory of ``workflow`` (namespace media-team) for ``key``."""
        return md.output_dir_for(key, "incoming/", "out/", "media-team", workflow)

    def run(
        self, job: dict[str, Any]
    ) -> tuple[subprocess.CompletedProcess[str], TerminationSummary]:
        term = self.tmp / f"termination-{uuid.uuid4().hex[:6]}"
        scratch = self.tmp / "scratch"
        scratch.mkdir(exist_ok=True)
        env = {
            "PATH": os.environ["PATH"],
            "MEDIAFLOW_JOB": json.dumps(job),
            "MEDIAFLOW_S3_ENDPOINT": f"http://{self.server.endpoint}",
            "MEDIAFLOW_S3_ACCESS_KEY": self.server.access_key,
            "MEDIAFLOW_S3_SECRET_KEY": self.server.secret_key,
            "MEDIAFLOW_SCRATCH_DIR": str(scratch),
            "MEDIAFLOW_TERMINATION_MESSAGE_PATH": str(term),
        }
        done = subprocess.run(
            [*WORKER, "job"], env=env, capture_output=True, text=True, timeout=300, check=False
        )
        raw = term.read_bytes()
        assert len(raw) < 4096
        # Nothing stays behind in scratch space.
        assert list(scratch.iterdir()) == []
        assert self.server.secret_key not in done.stdout + done.stderr + raw.decode()
        return done, TerminationSummary.model_validate_json(raw)

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(
            o.object_name
            for o in self.client.list_objects(self.media, prefix=prefix, recursive=True)
        )


@pytest.fixture
def env(minio_server: Any, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Env:
    logo = tmp_path / "logo.png"
    make_png(logo, "blue@0.5", (48, 48))
    return Env(minio_server, tmp_path, logo)


def test_job_writes_outputs_with_metadata_content_types_and_manifest_last(env: Env) -> None:
    clip = make_clip(env.tmp, "clip", duration=2)
    key = "incoming/shows/episode 1.mp4"
    etag = env.upload(key, clip.path)
    done, summary = env.run(env.job(key, etag))
    assert done.returncode == 0, done.stderr
    assert "% done" in done.stdout  # progress is in the log
    out_dir = "out/shows/episode 1.mp4.mediaflow/media-team/vod/"
    assert summary.ok
    assert summary.manifest == out_dir + "manifest.json"
    keys = env.keys(out_dir)
    assert summary.outputs == len(keys) - 1
    assert out_dir + "web/web.mp4" in keys
    assert out_dir + "thumbs/snapshot-0002.png" in keys
    assert out_dir + "hls/master.m3u8" in keys
    assert out_dir + "sheet/sprite.vtt" in keys
    assert out_dir + "facts/analysis.json" in keys

    manifest = json.loads(env.client.get_object(env.media, summary.manifest).read())
    assert manifest["ok"] is True
    assert manifest["input"] == {
        "bucket": env.uploads,
        "key": key,
        "etag": etag,
        "size": clip.path.stat().st_size,
    }
    assert manifest["probe"]["video"]["width"] == 320
    listed = {o["key"]: o for t in manifest["tasks"] for o in t["outputs"]}
    assert set(listed) == set(keys) - {summary.manifest}
    # The manifest is written last: every output is older than it.
    manifest_time = env.client.stat_object(env.media, summary.manifest).last_modified
    types = {
        ".mp4": "video/mp4",
        ".png": "image/png",
        ".m3u8": "application/vnd.apple.mpegurl",
        ".ts": "video/mp2t",
        ".vtt": "text/vtt",
        ".json": "application/json",
        ".jpg": "image/jpeg",
    }
    for out_key, entry in listed.items():
        stat = env.client.stat_object(env.media, out_key)
        assert stat.size == entry["size"]
        assert stat.last_modified <= manifest_time
        assert stat.content_type == types[Path(out_key).suffix]
        assert entry["contentType"] == stat.content_type  # notifications pass it on
        meta = {k.lower(): v for k, v in (stat.metadata or {}).items()}
        assert md.is_mediaflow_output(stat.metadata)
        assert meta["x-amz-meta-mediaflow-workflow"] == "media-team/vod"
        assert meta["x-amz-meta-mediaflow-task"] == out_key[len(out_dir) :].split("/")[0]
        assert meta["x-amz-meta-mediaflow-source-bucket"] == env.uploads
        assert meta["x-amz-meta-mediaflow-source-key"] == "incoming/shows/episode%201.mp4".replace(
            "%20", " "
        )
        assert meta["x-amz-meta-mediaflow-source-etag"] == etag
    manifest_stat = env.client.stat_object(env.media, summary.manifest)
    assert md.is_mediaflow_output(manifest_stat.metadata)
    video = env.tmp / "web.mp4"
    env.client.fget_object(env.media, out_dir + "web/web.mp4", str(video))
    assert ffprobe(video)["streams"][0]["codec_name"] == "h264"

    # Same input, same tasks: a no-op that touches nothing.
    done, again = env.run(env.job(key, etag))
    assert done.returncode == 0, done.stderr
    assert again.skipped
    assert again.reason == "UpToDate"
    assert env.client.stat_object(env.media, summary.manifest).last_modified == manifest_time

    # force: the work is done again.
    done, forced = env.run(env.job(key, etag, force=True))
    assert done.returncode == 0, done.stderr
    assert not forced.skipped
    assert env.client.stat_object(env.media, summary.manifest).last_modified >= manifest_time

    # Other tasks: a new run, and outputs of tasks that no longer exist go away.
    done, _changed = env.run(env.job(key, etag, tasks=[TASKS[-1]]))
    assert done.returncode == 0, done.stderr
    assert env.keys(out_dir) == [out_dir + "facts/analysis.json", out_dir + "manifest.json"]


def test_bad_input_exits_2_and_leaves_only_a_failure_manifest(env: Env) -> None:
    path = env.tmp / "fake.mp4"
    path.write_text("#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n")
    key = "incoming/fake.mp4"
    etag = env.upload(key, path)
    done, summary = env.run(env.job(key, etag))
    assert done.returncode == 2
    assert not summary.ok
    assert summary.exit_code == 2
    assert summary.reason == "InputRejected"
    assert "playlist" in done.stderr
    out_dir = env.out_dir(key)
    assert env.keys(out_dir) == [out_dir + "manifest.json"]
    manifest = json.loads(env.client.get_object(env.media, out_dir + "manifest.json").read())
    assert manifest["ok"] is False
    assert manifest["error"]["reason"] == "InputRejected"
    assert manifest["tasks"] == []


def test_a_missing_input_is_a_permanent_failure_and_a_changed_one_is_superseded(
    env: Env,
) -> None:
    done, summary = env.run(env.job("incoming/nothing.mp4", "abc"))
    assert (done.returncode, summary.reason) == (2, "InputNotFound")
    clip = make_clip(env.tmp, "c2", duration=1, audio=False)
    env.upload("incoming/c2.mp4", clip.path)
    done, summary = env.run(env.job("incoming/c2.mp4", "0123456789abcdef0123456789abcdef"))
    # The newer version has its own Job: this one is not a failure, is not
    # retried (exit 0), and leaves nothing behind, not even a manifest.
    assert (done.returncode, summary.reason, summary.ok) == (0, "Superseded", True)
    assert summary.superseded
    assert env.keys(env.out_dir("incoming/c2.mp4")) == []


def test_missing_watermark_image_fails_the_job_without_outputs(env: Env) -> None:
    clip = make_clip(env.tmp, "c3", duration=1)
    key = "incoming/c3.mp4"
    etag = env.upload(key, clip.path)
    tasks = [
        TASKS[-1],
        {
            "name": "web",
            "transcode": {"watermarks": [{"image": {"bucket": "assets", "key": "nope.png"}}]},
        },
    ]
    done, summary = env.run(env.job(key, etag, tasks=tasks))
    # The preflight finds it before the input is downloaded or any task runs:
    # permanent (exit 2), naming the task and the object.
    assert done.returncode == 2
    assert summary.reason == "AssetNotFound"
    assert "task 'web'" in summary.message
    assert "s3://assets/nope.png" in summary.message
    assert "downloading" not in done.stdout
    out_dir = env.out_dir(key)
    assert env.keys(out_dir) == [out_dir + "manifest.json"]


def test_wrong_credentials_are_a_retryable_failure(env: Env) -> None:
    env.server = type(
        "S",
        (),
        {
            "endpoint": env.server.endpoint,
            "access_key": "nobody",
            "secret_key": "wrong-secret-value",
        },
    )()
    done, summary = env.run(env.job("incoming/x.mp4", "e"))
    assert done.returncode == 1
    assert summary.reason == "StorageError"


def test_job_finds_the_subtitle_sidecar_next_to_the_input_and_joins_an_intro(env: Env) -> None:
    clip = make_clip(env.tmp, "clip", duration=1, audio=False)
    key = "incoming/talks/keynote.mp4"
    sidecar = env.tmp / "keynote.eng.srt"
    sidecar.write_text("1\n00:00:00,200 --> 00:00:00,800\nWelcome\n\n")
    env.upload("incoming/talks/keynote.eng.srt", sidecar)
    intro = make_clip(env.tmp, "intro", size=(160, 120), duration=1, audio=False)
    env.client.fput_object("assets", "clips/intro.mp4", str(intro.path))
    etag = env.upload(key, clip.path)
    tasks = [
        {
            "name": "talk",
            "transcode": {
                "container": "mkv",
                "video": {"preset": "ultrafast"},
                "subtitles": {"mode": "soft", "language": "eng"},
                "intro": {"bucket": "assets", "key": "clips/intro.mp4"},
            },
        }
    ]
    done, summary = env.run(env.job(key, etag, tasks=tasks))
    assert done.returncode == 0, done.stderr
    out_key = env.out_dir(key) + "talk/talk.mkv"
    local = env.tmp / "talk.mkv"
    env.client.fget_object(env.media, out_key, str(local))
    info = ffprobe(local)
    [subs] = [s for s in info["streams"] if s["codec_type"] == "subtitle"]
    assert (subs["codec_name"], subs["tags"]["language"]) == ("subrip", "eng")
    assert abs(float(info["format"]["duration"]) - 2.0) < 0.15
    manifest = json.loads(env.client.get_object(env.media, summary.manifest).read())
    entry = manifest["tasks"][0]["outputs"][0]
    assert entry["subtitles"]["source"] == "keynote.eng.srt"
    assert entry["intro"] == {"seconds": 1.0, "audio": False}
