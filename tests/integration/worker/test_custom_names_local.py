"""Custom output names (``tasks[].output``) with ``mediaflow-worker run -f``:
keys become paths under ``-o`` (``<bucket>/<key>`` where the task names a
bucket), and the renamed packages still work: the HLS playlist plays from its
new place, the sprite index names the renamed sheets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .helpers import ffprobe, make_clip, run_local, write_workflow

pytestmark = pytest.mark.integration


def test_local_run_writes_custom_names_under_the_output_dir(tmp_path: Path) -> None:
    clip = make_clip(tmp_path, "my clip", duration=2, size=(320, 240))
    tasks = [
        {
            "name": "web",
            "transcode": {"preset": "h264-360p", "video": {"preset": "ultrafast"}},
            "output": {"bucket": "public", "prefix": "v/", "fileName": "{inputName}.{format}"},
        },
        {
            "name": "hls",
            "adaptiveStreaming": {
                "renditions": [{"height": 144, "videoBitrate": "200k"}],
                "segmentSeconds": 1,
                "preset": "ultrafast",
            },
            "output": {"prefix": "st/", "fileName": "{inputName}-{inputExt}/{taskName}.{format}"},
        },
        {
            "name": "hevc",
            "adaptiveStreaming": {
                "codec": "h265",
                "renditions": [{"height": 144, "videoBitrate": "200k"}],
                "segmentSeconds": 1,
                "preset": "ultrafast",
            },
            "output": {
                "prefix": "st/",
                "fileName": "{inputName}/{taskName}/main.{format}",
                "variantName": "{inputName}_{rendition}.{format}",
                "segmentName": "seg/{rendition}_{number}.{format}",
                "numberWidth": 3,
                "numberStart": 0,
            },
        },
        {
            "name": "sheet",
            "sprite": {"columns": 2, "rows": 1, "width": 64, "intervalSeconds": 0.5},
            "output": {"prefix": "sp/", "fileName": "{inputName}/s{number}.{format}"},
        },
        {"name": "facts", "analysis": {}},
    ]
    out = tmp_path / "out"
    done = run_local(write_workflow(tmp_path, tasks), clip.path, out)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    paths = {t["name"]: [o["path"] for o in t["outputs"]] for t in manifest["tasks"]}
    assert paths["web"] == ["public/v/my clip.mp4"]
    assert paths["hls"][0] == "st/my clip-mp4/hls.m3u8"
    assert all(p.startswith("st/my clip-mp4/") for p in paths["hls"])
    assert paths["sheet"] == ["sp/my clip/s1.jpg", "sp/my clip/s2.jpg", "sp/my clip/s.vtt"]
    # A task without custom names keeps the task directory.
    assert paths["facts"] == ["facts/analysis.json"]
    for names in paths.values():
        for rel in names:
            assert (out / rel).is_file(), rel
    assert not (out / "web").exists()
    assert not (out / "hls").exists()
    assert ffprobe(out / "public/v/my clip.mp4")["streams"][0]["codec_name"] == "h264"
    # The renamed master playlist still finds its variant and segments.
    played = ffprobe(out / "st/my clip-mp4/hls.m3u8")
    assert any(s["codec_type"] == "video" and s["height"] == 144 for s in played["streams"])
    # Renamed variant playlists and segments (fMP4: the init segment too),
    # and the package still plays from the renamed master playlist.
    assert sorted(paths["hevc"]) == [
        "st/my clip/hevc/main.m3u8",
        "st/my clip/hevc/my clip_0.m3u8",
        "st/my clip/hevc/seg/0_000.m4s",
        "st/my clip/hevc/seg/0_001.m4s",
        "st/my clip/hevc/seg/0_init.mp4",
    ]
    variant = (out / "st/my clip/hevc/my clip_0.m3u8").read_text()
    assert '#EXT-X-MAP:URI="seg/0_init.mp4"' in variant
    assert "\nseg/0_001.m4s\n" in variant
    played = ffprobe(out / "st/my clip/hevc/main.m3u8", "-count_frames")
    video = [s for s in played["streams"] if s["codec_type"] == "video"]
    assert video[0]["codec_name"] == "hevc"
    assert int(video[0]["nb_read_frames"]) >= 25 * 2 - 1
    vtt = (out / "sp/my clip/s.vtt").read_text()
    assert "s1.jpg#xywh=" in vtt
    assert "s2.jpg#xywh=" in vtt


def test_two_tasks_rendering_one_path_fail_with_exit_2(tmp_path: Path) -> None:
    clip = make_clip(tmp_path, "c", duration=1, size=(160, 120))
    named = {"prefix": "x/", "fileName": "{inputName}.{format}"}
    tasks = [
        {"name": "a", "analysis": {}, "output": named},
        {"name": "b", "analysis": {"black": True}, "output": {**named, "bucket": "media"}},
        {"name": "c", "analysis": {}, "output": {**named, "prefix": "media/x/"}},
    ]
    out = tmp_path / "out"
    # b lands at media/x/c.json (its bucket), c at media/x/c.json (its prefix).
    done = run_local(write_workflow(tmp_path, tasks), clip.path, out)
    assert done.returncode == 2, done.stderr
    assert "OutputCollision: task 'c': its output media/x/c.json is also another task's" in (
        done.stderr
    )
