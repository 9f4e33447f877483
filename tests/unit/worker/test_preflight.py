"""The preflight (watermark images, the text font) and the local stand-in for
a bucket, without ffmpeg: ffprobe of an image is replaced by a stub."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, cast

import pytest

from mediaflow_api.job import WorkerJob
from mediaflow_api.tasks import TaskSpec
from mediaflow_worker import fonts, preflight
from mediaflow_worker.cli import asset_mapping, build_parser
from mediaflow_worker.errors import (
    AssetError,
    AssetNotFoundError,
    SpecError,
    UnreadableInputError,
)
from mediaflow_worker.job_mode import run_job
from mediaflow_worker.local_mode import local_assets
from mediaflow_worker.storage import Storage

pytestmark = pytest.mark.unit

TRUETYPE = b"\x00\x01\x00\x00" + b"\x00" * 60


def _tasks() -> list[TaskSpec]:
    return [
        TaskSpec.model_validate(raw)
        for raw in (
            {"name": "hls", "adaptiveStreaming": {"ladder": "standard-ladder"}},
            {
                "name": "web",
                "transcode": {
                    "preset": "h264-720p",
                    "watermarks": [
                        {"image": {"bucket": "media-assets", "key": "brand/logo.png"}},
                        {"text": "(c) Example"},
                    ],
                },
            },
            {
                "name": "social",
                "transcode": {
                    "preset": "h264-720p",
                    "watermarks": [{"image": {"bucket": "media-assets", "key": "brand/logo.png"}}],
                },
            },
        )
    ]


@pytest.fixture
def font(tmp_path: Path) -> str:
    path = tmp_path / "font.ttf"
    path.write_bytes(TRUETYPE)
    return str(path)


@pytest.fixture
def probed(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    seen: list[Path] = []

    def fake_size(path: Path) -> tuple[int, int]:
        seen.append(path)
        if path.read_bytes() != b"png":
            raise AssetError("is not a PNG, JPEG or WebP image")
        return (240, 80)

    monkeypatch.setattr(preflight, "image_size", fake_size)
    return seen


def test_the_inputs_a_workflow_needs_are_found_in_task_order() -> None:
    refs = preflight.watermark_images(_tasks())
    assert [(r.task, r.bucket, r.key) for r in refs] == [
        ("web", "media-assets", "brand/logo.png"),
        ("social", "media-assets", "brand/logo.png"),
    ]
    assert preflight.text_watermark_tasks(_tasks()) == ["web"]


def test_every_image_is_fetched_and_probed_once_and_then_served_from_the_check(
    tmp_path: Path, font: str, probed: list[Path]
) -> None:
    fetched: list[tuple[str, str]] = []

    def fetch(bucket: str, key: str) -> Path:
        fetched.append((bucket, key))
        path = tmp_path / f"{len(fetched)}.png"
        path.write_bytes(b"png")
        return path

    serve = preflight.check(_tasks(), fetch, font)
    assert fetched == [("media-assets", "brand/logo.png")]
    assert probed == [tmp_path / "1.png"]
    assert serve("media-assets", "brand/logo.png") == tmp_path / "1.png"
    assert fetched == [("media-assets", "brand/logo.png")]  # not fetched again


def test_a_missing_image_names_the_first_task_that_needs_it(font: str, probed: list[Path]) -> None:
    def fetch(bucket: str, key: str) -> Path:
        raise AssetNotFoundError(f"watermark image s3://{bucket}/{key} does not exist")

    with pytest.raises(AssetNotFoundError) as caught:
        preflight.check(_tasks(), fetch, font)
    assert caught.value.exit_code == 2
    assert caught.value.reason == "AssetNotFound"
    assert caught.value.message == (
        "task 'web': watermark image s3://media-assets/brand/logo.png does not exist"
    )
    assert probed == []


def test_an_undecodable_or_huge_image_is_unusable(
    tmp_path: Path, font: str, probed: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    page = tmp_path / "page.png"
    page.write_bytes(b"<html>")
    with pytest.raises(AssetError) as caught:
        preflight.check(_tasks(), lambda b, k: page, font)
    assert (caught.value.exit_code, caught.value.reason) == (2, "AssetUnusable")
    assert caught.value.message == (
        "task 'web': watermark image media-assets/brand/logo.png is not a PNG, JPEG or WebP image"
    )
    monkeypatch.setattr(preflight, "image_size", lambda _p: (5000, 5000))
    with pytest.raises(AssetError, match=r"^task 'web': .* is 5000x5000; the limit is"):
        preflight.check(_tasks(), lambda b, k: page, font)


@pytest.mark.parametrize(
    ("content", "error", "says"),
    [
        (None, AssetNotFoundError, "does not exist"),
        (b"<!doctype html>", AssetError, "is not a TrueType or OpenType font"),
    ],
)
def test_the_font_must_be_a_font_file_when_a_task_draws_text(
    tmp_path: Path,
    probed: list[Path],
    content: bytes | None,
    error: type[AssetError],
    says: str,
) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(b"png")
    font = tmp_path / "DejaVuSans.ttf"
    if content is not None:
        font.write_bytes(content)
    with pytest.raises(error) as caught:
        preflight.check(_tasks(), lambda b, k: logo, str(font))
    assert caught.value.exit_code == 2
    assert caught.value.message.startswith(f"task 'web': the font for text watermarks {font}")
    assert says in caught.value.message
    # No text watermark: the font is not needed.
    preflight.check(_tasks()[2:], lambda b, k: logo, str(font))


def test_local_assets_read_dir_bucket_key_and_mapped_files(tmp_path: Path) -> None:
    root = tmp_path / "assets"
    (root / "media-assets" / "brand").mkdir(parents=True)
    (root / "media-assets" / "brand" / "logo.png").write_bytes(b"png")
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"png")
    fetch = local_assets(root, {("other", "x.png"): mine})
    assert fetch("media-assets", "brand/logo.png") == root / "media-assets/brand/logo.png"
    assert fetch("other", "x.png") == mine
    with pytest.raises(AssetNotFoundError, match=r"no file .*assets/media-assets/nope\.png"):
        fetch("media-assets", "nope.png")
    (tmp_path / "secret.png").write_bytes(b"png")
    with pytest.raises(AssetNotFoundError):
        fetch("media-assets", "../../secret.png")  # never outside the assets dir
    with pytest.raises(AssetNotFoundError, match="--asset names"):
        local_assets(root, {("b", "k"): tmp_path / "gone.png"})("b", "k")


def test_asset_flags_parse() -> None:
    run = ["run", "-f", "w.yaml", "in.mp4", "-o", "out", "--assets", "examples/assets"]
    mapped = ["--asset", "media-assets/brand/logo.png=/tmp/my=logo.png", "--asset", "b/k=f"]
    args = build_parser().parse_args([*run, *mapped])
    assert args.assets == Path("examples/assets")
    assert dict(args.asset) == {
        ("media-assets", "brand/logo.png"): Path("/tmp/my=logo.png"),
        ("b", "k"): Path("f"),
    }
    for bad in ("logo.png=/tmp/x", "b/k", "b/k=", "/k=f"):
        with pytest.raises(argparse.ArgumentTypeError):
            asset_mapping(bad)


def test_asset_errors_are_permanent_spec_errors() -> None:
    assert issubclass(AssetError, SpecError)
    assert not issubclass(AssetError, UnreadableInputError)
    assert AssetError("x").exit_code == AssetNotFoundError("x").exit_code == 2


class _Storage:
    """Just enough of ``Storage`` for a run that fails in the preflight."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.written: dict[str, Any] = {}

    def read_json(self, bucket: str, key: str) -> None:
        return None

    def download_asset(self, bucket: str, key: str, dest: Path) -> Path:
        self.calls.append(f"asset {bucket}/{key}")
        raise AssetNotFoundError(f"watermark image s3://{bucket}/{key} does not exist")

    def download_input(self, *args: Any, **kwargs: Any) -> int:
        self.calls.append("input")
        raise AssertionError("the input must not be downloaded")

    def current_etag(self, bucket: str, key: str) -> str:
        return "e"  # unchanged: the failure is recorded

    def delete(self, bucket: str, keys: list[str]) -> list[str]:
        assert keys == []
        return []

    def upload_bytes(self, bucket: str, key: str, data: bytes, meta: dict[str, str]) -> None:
        self.written[key] = json.loads(data)


def test_a_job_checks_its_assets_before_downloading_the_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDIAFLOW_SCRATCH_DIR", str(tmp_path))
    job = WorkerJob.model_validate(
        {
            "workflow": {"namespace": "media", "name": "vod", "uid": "u", "generation": 1},
            "input": {"bucket": "uploads", "key": "incoming/a.mp4", "etag": "e"},
            "output": {"bucket": "media", "dir": "vod/a.mp4.mediaflow/media/vod/"},
            "tasks": [t.model_dump(by_alias=True, exclude_none=True) for t in _tasks()],
        }
    )
    storage = _Storage()
    with pytest.raises(AssetNotFoundError, match=r"^task 'web': watermark image s3://media-assets"):
        run_job(job, cast(Storage, storage))
    assert storage.calls == ["asset media-assets/brand/logo.png"]
    failure = storage.written["vod/a.mp4.mediaflow/media/vod/manifest.json"]
    assert failure["ok"] is False
    assert failure["error"]["reason"] == "AssetNotFound"
    assert list(tmp_path.iterdir()) == []  # scratch removed


def test_watermarks_of_every_image_task_and_their_fonts_are_checked(
    tmp_path: Path, font: str, probed: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = [
        TaskSpec.model_validate(raw)
        for raw in (
            {
                "name": "stills",
                "snapshot": {
                    "count": 1,
                    "watermarks": [{"image": {"bucket": "brand", "key": "a.png"}}],
                },
            },
            {"name": "sheet", "sprite": {"watermarks": [{"text": "x", "font": "cjk-sans"}]}},
            {"name": "gif", "animatedImage": {"watermarks": [{"text": "y"}]}},
        )
    ]
    assert [(r.task, r.key) for r in preflight.watermark_images(tasks)] == [("stills", "a.png")]
    assert preflight.text_watermark_tasks(tasks) == ["sheet", "gif"]
    needed = preflight.text_watermark_fonts(tasks, font)
    assert needed == {fonts.font_file("cjk-sans", font): "sheet", font: "gif"}

    def fetch(bucket: str, key: str) -> Path:
        path = tmp_path / key
        path.write_bytes(b"png")
        return path

    # The CJK font is not where the table says: the run stops, naming the
    # task and the watermark's font (not MEDIAFLOW_FONT_FILE).
    monkeypatch.setitem(fonts.FONT_FILES, "cjk-sans", str(tmp_path / "no-such-cjk.ttc"))
    with pytest.raises(AssetNotFoundError, match=r"task 'sheet'.*a watermark's font"):
        preflight.check(tasks, fetch, font)
    assert probed == [tmp_path / "a.png"]


def test_named_sidecars_of_transcode_and_streaming_tasks_are_preflighted() -> None:
    tasks = [
        TaskSpec.model_validate(raw)
        for raw in (
            {
                "name": "hls",
                "adaptiveStreaming": {
                    "subtitles": {"file": {"bucket": "media-assets", "key": "subs/a.srt"}}
                },
            },
            # Found by the naming rule: optional, the task looks for it.
            {"name": "dash", "adaptiveStreaming": {"format": "dash", "subtitles": {}}},
            {
                "name": "web",
                "transcode": {
                    "preset": "h264-720p",
                    "subtitles": {"file": {"bucket": "media-assets", "key": "subs/b.vtt"}},
                },
            },
        )
    ]
    refs = preflight.subtitle_files(tasks)
    assert [(r.task, r.bucket, r.key) for r in refs] == [
        ("hls", "media-assets", "subs/a.srt"),
        ("web", "media-assets", "subs/b.vtt"),
    ]
