"""``mediaflow-worker run`` resolves template references like the operator
(``mediaflow_api.templates.resolve_tasks``): templates from ``-t`` files or the
Workflow file itself, the task's fields on top, checked on the real outputs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from .helpers import REPO, ffprobe, make_clip, run_local, video_stream, write_workflow

pytestmark = pytest.mark.integration

TEMPLATES = [
    {
        "apiVersion": "mediaflow.dev/v1alpha1",
        "kind": "MediaTemplate",
        "metadata": {"name": "small"},
        "spec": {
            "transcode": {
                "container": "mp4",
                "video": {"codec": "h264", "height": 180, "crf": 23, "preset": "ultrafast"},
                "audio": {"codec": "aac", "bitrate": "64k"},
            }
        },
    },
    {
        "apiVersion": "mediaflow.dev/v1alpha1",
        "kind": "ClusterMediaTemplate",
        "metadata": {"name": "thumbs"},
        "spec": {"sprite": {"intervalSeconds": 1, "columns": 3, "rows": 2, "width": 96}},
    },
]


def _x264_settings(path: Path) -> str:
    """x264's settings string, written into the stream (its SEI) by the encoder."""
    data = path.read_bytes()
    start = data.find(b"x264 - core")
    return data[start : data.find(b"\x00", start)].decode("ascii", "replace")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip"), "clip", size=(640, 360), duration=2).path


def test_templates_from_a_file_with_overrides(clip: Path, tmp_path: Path) -> None:
    templates = tmp_path / "templates.yaml"
    templates.write_text(yaml.safe_dump_all(TEMPLATES))
    workflow = write_workflow(
        tmp_path,
        [
            {"name": "web", "template": {"name": "small"}, "transcode": {"video": {"crf": 30}}},
            {
                "name": "thumbs",
                "template": {"name": "thumbs", "kind": "ClusterMediaTemplate"},
                "sprite": {"width": 80},
            },
        ],
    )
    out = tmp_path / "out"
    done = run_local(workflow, clip, out, "-t", str(templates))
    assert done.returncode == 0, done.stderr
    video = video_stream(ffprobe(out / "web" / "web.mp4"))
    assert video is not None
    assert (video["codec_name"], video["height"]) == ("h264", 180)  # the template's size
    assert "crf=30.0" in _x264_settings(out / "web" / "web.mp4")  # the task's override
    vtt = (out / "thumbs" / "sprite.vtt").read_text()
    assert "#xywh=0,0,80,44" in vtt  # the override's width (even height), the template's interval
    assert "#xywh=80,0,80,44" in vtt


def test_a_missing_template_fails_before_any_task_naming_it(clip: Path, tmp_path: Path) -> None:
    workflow = write_workflow(tmp_path, [{"name": "web", "template": {"name": "nowhere"}}])
    done = run_local(workflow, clip, tmp_path / "out")
    assert done.returncode == 1
    assert "task 'web': MediaTemplate default/nowhere not found" in done.stderr
    assert not (tmp_path / "out").exists()


def test_an_invalid_template_is_refused_naming_the_field(clip: Path, tmp_path: Path) -> None:
    bad = {**TEMPLATES[1], "spec": {"sprite": {"columns": 99}}}
    workflow = write_workflow(
        tmp_path, [{"name": "t", "template": {"name": "thumbs", "kind": "ClusterMediaTemplate"}}]
    )
    workflow.write_text(workflow.read_text() + "---\n" + yaml.safe_dump(bad))
    done = run_local(workflow, clip, tmp_path / "out")
    assert done.returncode == 1
    assert "ClusterMediaTemplate thumbs: spec.sprite.columns" in done.stderr


def _gray_frame(video: Path, at: float = 0.5) -> tuple[bytes, int, int]:
    """One frame as 8-bit gray pixels, with its width and height."""
    info = video_stream(ffprobe(video))
    assert info is not None
    width, height = int(info["width"]), int(info["height"])
    raw = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-ss",
            str(at),
            "-i",
            str(video),
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    assert len(raw) == width * height
    return raw, width, height


def _mean_difference(a: bytes, b: bytes, width: int, rows: range, cols: range) -> float:
    total = sum(abs(a[y * width + x] - b[y * width + x]) for y in rows for x in cols)
    return total / (len(rows) * len(cols))


def test_a_watermarks_template_is_drawn(clip: Path, tmp_path: Path) -> None:
    marks = {
        "apiVersion": "mediaflow.dev/v1alpha1",
        "kind": "ClusterMediaTemplate",
        "metadata": {"name": "marks"},
        "spec": {
            "watermarks": [
                {"text": "MARK", "position": "bottom-left", "fontSize": "25%", "fontColor": "white"}
            ]
        },
    }
    templates = tmp_path / "templates.yaml"
    templates.write_text(yaml.safe_dump_all([*TEMPLATES, marks]))
    plain = {"name": "web", "template": {"name": "small"}}
    marked = {**plain, "watermarkTemplate": {"name": "marks", "kind": "ClusterMediaTemplate"}}
    outputs = []
    for name, task in (("plain", plain), ("marked", marked)):
        directory = tmp_path / name
        directory.mkdir()
        done = run_local(
            write_workflow(directory, [task]), clip, directory / "out", "-t", str(templates)
        )
        assert done.returncode == 0, done.stderr
        outputs.append(directory / "out" / "web" / "web.mp4")
    (a, width, height), (b, _, _) = _gray_frame(outputs[0]), _gray_frame(outputs[1])
    # The text sits in the bottom-left quarter; the top-right quarter is untouched.
    bottom_left = _mean_difference(a, b, width, range(height // 2, height), range(width // 2))
    top_right = _mean_difference(a, b, width, range(height // 2), range(width // 2, width))
    assert bottom_left > 10 * max(top_right, 0.5), (bottom_left, top_right)


def test_the_templates_example_runs(clip: Path, tmp_path: Path) -> None:
    example = REPO / "examples" / "templates"
    out = tmp_path / "out"
    done = run_local(example / "workflow.yaml", clip, out, "-t", str(example / "templates.yaml"))
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "manifest.json").read_text())
    assert [t["name"] for t in result["tasks"]] == ["web", "preview"]
    assert "crf=26.0" in _x264_settings(out / "web" / "web.mp4")
    probed = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=width",
            "-of",
            "csv=p=0",
            str(out / "preview" / "sprite-001.jpg"),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert int(probed.stdout.strip()) == 5 * 120  # the cluster template's columns x width
