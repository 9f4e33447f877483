"""adaptiveStreaming.subtitles on real output: a WebVTT rendition in HLS
(segmented .vtt, EXT-X-MEDIA group every variant refers to) and DASH (a
text/vtt AdaptationSet), read back by ffmpeg/ffprobe."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from .helpers import Clip, make_clip, run_local, write_workflow

pytestmark = pytest.mark.integration

MPD_NS = "{urn:mpeg:dash:schema:mpd:2011}"
SRT = (
    "1\n00:00:00,200 --> 00:00:00,900\nFirst line\n\n"
    "2\n00:00:01,200 --> 00:00:01,800\nSecond & last\n\n"
)
LADDER = [{"height": 360, "videoBitrate": "600k"}, {"height": 240, "videoBitrate": "200k"}]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """A 2 s 640x360 clip at 25 fps with a tone."""
    return make_clip(tmp_path_factory.mktemp("clips"), "small", size=(640, 360), duration=2)


def _run(tmp_path: Path, clip: Clip, task: dict[str, Any], srt: bool = True) -> Path:
    """Run one ``adaptiveStreaming`` task named ``s`` on a copy of the clip
    with (``srt``) a sidecar next to it; the task's output directory."""
    src = tmp_path / "src"
    src.mkdir()
    video = src / "talk.mp4"
    shutil.copy(clip.path, video)
    if srt:
        (src / "talk.eng.srt").write_text(SRT)
    workflow = write_workflow(tmp_path, [{"name": "s", "adaptiveStreaming": task}])
    out = tmp_path / "out"
    done = run_local(workflow, video, out)
    assert done.returncode == 0, done.stderr
    return out / "s"


def _entry(out: Path, name: str) -> dict[str, Any]:
    manifest = json.loads((out.parent / "manifest.json").read_text())
    paths = {o["path"]: o for t in manifest["tasks"] for o in t["outputs"]}
    return dict(paths[f"s/{name}"])


def _listed(out: Path) -> set[str]:
    manifest = json.loads((out.parent / "manifest.json").read_text())
    return {o["path"] for t in manifest["tasks"] for o in t["outputs"]}


# ffmpeg 5.1's HLS demuxer reads subtitle renditions only when told to, and
# its DASH demuxer opens only the media extensions it is given.
EXPERIMENTAL = ("-strict", "experimental")
DASH_VTT = ("-allowed_extensions", "aac,m4a,m4s,m4v,mov,mp4,webm,ts,vtt")


def _ffmpeg_reads(playlist: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """ffmpeg demuxing every stream ``playlist`` refers to (decoding the video)."""
    return subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            *extra,
            "-i",
            str(playlist.resolve()),
            "-map",
            "0",
            "-c:s",
            "copy",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _subtitle_text(playlist: Path, *extra: str) -> str:
    """The subtitle stream ffmpeg reads through ``playlist``, as WebVTT."""
    done = subprocess.run(
        ["ffmpeg", "-v", "error", *extra, "-i", str(playlist.resolve()),
         "-map", "0:s", "-c:s", "webvtt", "-f", "webvtt", "-"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )  # fmt: skip
    return done.stdout


def _stream_types(playlist: Path, *extra: str) -> list[tuple[str, str]]:
    done = subprocess.run(
        ["ffprobe", "-v", "error", *extra, "-show_streams", "-of", "json", str(playlist.resolve())],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    streams = json.loads(done.stdout)["streams"]
    return [(s.get("codec_type", ""), s.get("codec_name", "")) for s in streams]


def _cue_texts(vtt: str) -> list[str]:
    blocks = vtt.split("\n\n")
    return [b.split("\n", 1)[1].strip() for b in blocks if "-->" in b.split("\n", 1)[0]]


@pytest.mark.parametrize("segment_format", ["ts", "fmp4"])
def test_hls_gets_a_webvtt_subtitle_group(tmp_path: Path, clip: Clip, segment_format: str) -> None:
    out = _run(
        tmp_path,
        clip,
        {
            "format": "hls",
            "segmentFormat": segment_format,
            "segmentSeconds": 1,
            "preset": "ultrafast",
            "renditions": LADDER,
            "subtitles": {"language": "eng"},
        },
    )
    master = (out / "master.m3u8").read_text()
    media = [line for line in master.splitlines() if line.startswith("#EXT-X-MEDIA:")]
    subs = [line for line in media if "TYPE=SUBTITLES" in line]
    assert len(subs) == 1
    assert 'GROUP-ID="subs"' in subs[0]
    assert 'LANGUAGE="eng"' in subs[0]
    uri = re.search(r'URI="([^"]+)"', subs[0])
    assert uri is not None
    variants = [line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF")]
    assert len(variants) == 2
    assert all('SUBTITLES="subs"' in v for v in variants)
    playlist = out / uri.group(1)
    names = [ln for ln in playlist.read_text().splitlines() if ln and not ln.startswith("#")]
    assert len(names) == 2  # 2 s in 1 s segments
    segments = [(playlist.parent / n).read_text() for n in names]
    assert all(s.startswith("WEBVTT") for s in segments)
    assert ("X-TIMESTAMP-MAP=MPEGTS:" in segments[0]) == (segment_format == "ts")
    assert _cue_texts(segments[0]) == ["First line"]
    assert _cue_texts(segments[1]) == ["Second &amp; last"]
    played = _ffmpeg_reads(out / "master.m3u8", *EXPERIMENTAL)
    assert played.returncode == 0, played.stderr
    assert ("subtitle", "webvtt") in _stream_types(out / "master.m3u8", *EXPERIMENTAL)
    read_back = _subtitle_text(out / "master.m3u8", *EXPERIMENTAL)
    assert "First line" in read_back
    assert "Second & last" in read_back
    listed = _listed(out)
    assert f"s/{uri.group(1)}" in listed
    assert {f"s/subs/{n}" for n in names} <= listed
    info = _entry(out, "master.m3u8")["subtitles"]
    assert info["found"] is True
    assert info["language"] == "eng"
    assert info["cues"] == 2
    assert info["renditions"] == [uri.group(1)]


def test_dash_gets_a_text_vtt_adaptation_set(tmp_path: Path, clip: Clip) -> None:
    out = _run(
        tmp_path,
        clip,
        {
            "format": "dash",
            "segmentSeconds": 1,
            "preset": "ultrafast",
            "renditions": LADDER,
            "subtitles": {"language": "eng"},
        },
    )
    text = (out / "manifest.mpd").read_text()
    assert text.startswith("<?xml")
    assert "ns0:" not in text
    mpd = ET.fromstring(text)  # noqa: S314 - our own file
    sets = mpd.findall(f".//{MPD_NS}AdaptationSet")
    vtt = [a for a in sets if a.get("mimeType") == "text/vtt"]
    assert len(vtt) == 1
    assert vtt[0].get("contentType") == "text"
    assert vtt[0].get("lang") == "eng"
    assert len({a.get("id") for a in sets}) == len(sets)
    base = vtt[0].find(f"{MPD_NS}Representation/{MPD_NS}BaseURL")
    assert base is not None
    assert base.text
    assert _cue_texts((out / base.text).read_text()) == ["First line", "Second &amp; last"]
    assert f"s/{base.text}" in _listed(out)
    mpd_path = out / "manifest.mpd"
    types = _stream_types(mpd_path, *DASH_VTT)
    assert ("subtitle", "webvtt") in types
    assert ("video", "h264") in types
    read_back = _subtitle_text(mpd_path, *DASH_VTT)
    assert "First line" in read_back
    assert "Second & last" in read_back
    played = _ffmpeg_reads(mpd_path, *DASH_VTT)
    assert played.returncode == 0, played.stderr
    # Without vtt among its extensions ffmpeg 5.1 refuses the MPD.
    assert _ffmpeg_reads(mpd_path).returncode != 0


def test_cmaf_has_both_renditions(tmp_path: Path, clip: Clip) -> None:
    out = _run(
        tmp_path,
        clip,
        {
            "format": "cmaf",
            "segmentSeconds": 1,
            "preset": "ultrafast",
            "renditions": LADDER,
            "subtitles": {"language": "eng"},
        },
    )
    master = (out / "master.m3u8").read_text()
    assert "TYPE=SUBTITLES" in master
    assert "text/vtt" in (out / "manifest.mpd").read_text()
    for playlist, extra in (("master.m3u8", EXPERIMENTAL), ("manifest.mpd", DASH_VTT)):
        assert "Second & last" in _subtitle_text(out / playlist, *extra)
        played = _ffmpeg_reads(out / playlist, *extra)
        assert played.returncode == 0, (playlist, played.stderr)


def test_no_sidecar_under_the_naming_rule_means_no_rendition(tmp_path: Path, clip: Clip) -> None:
    out = _run(
        tmp_path,
        clip,
        {"format": "hls", "preset": "ultrafast", "renditions": LADDER[:1], "subtitles": {}},
        srt=False,
    )
    assert "SUBTITLES" not in (out / "master.m3u8").read_text()
    assert not (out / "subs").exists()
    info = _entry(out, "master.m3u8")["subtitles"]
    assert info["found"] is False
    assert info["tried"][0] == "talk.srt"


def test_custom_names_rename_the_subtitle_playlist_and_segments(tmp_path: Path, clip: Clip) -> None:
    """variantName/segmentName: the subtitle playlist counts as the rendition
    after the variants (here 1) and its segments follow segmentName."""
    src = tmp_path / "src"
    src.mkdir()
    video = src / "talk.mp4"
    shutil.copy(clip.path, video)
    (src / "talk.srt").write_text(SRT)
    task = {
        "name": "s",
        "adaptiveStreaming": {
            "segmentSeconds": 1,
            "preset": "ultrafast",
            "renditions": LADDER[:1],
            "subtitles": {},
        },
        "output": {
            "prefix": "st/",
            "fileName": "{inputName}/main.{format}",
            "variantName": "{inputName}_{rendition}.{format}",
            "segmentName": "seg/{rendition}_{number}.{format}",
            "numberWidth": 3,
            "numberStart": 0,
        },
    }
    out = tmp_path / "out"
    done = run_local(write_workflow(tmp_path, [task]), video, out)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    paths = sorted(o["path"] for t in manifest["tasks"] for o in t["outputs"])
    assert [p for p in paths if p.endswith((".vtt", "talk_1.m3u8"))] == [
        "st/talk/seg/1_000.vtt",
        "st/talk/seg/1_001.vtt",
        "st/talk/talk_1.m3u8",
    ]
    master = (out / "st/talk/main.m3u8").read_text()
    assert 'URI="talk_1.m3u8"' in master
    assert "\nseg/1_001.vtt\n" in (out / "st/talk/talk_1.m3u8").read_text()
    read_back = _subtitle_text(out / "st/talk/main.m3u8", *EXPERIMENTAL)
    assert "First line" in read_back
    assert "Second & last" in read_back


ASS = """[Script Info]
ScriptType: v4.00+
PlayResX: 640
PlayResY: 360

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, \
Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, \
Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,DejaVu Sans,48,&H0000FFFF,&H0000FFFF,&H00000000,&H00000000,0,0,0,0,100,100,\
0,0,1,2,0,8,10,10,20,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:00.50,0:00:01.50,Default,,0,0,0,,{\\b1}Styled{\\b0} line
"""


def test_an_ass_sidecar_becomes_plain_webvtt_cues(tmp_path: Path, clip: Clip) -> None:
    src = tmp_path / "src"
    src.mkdir()
    video = src / "talk.mp4"
    shutil.copy(clip.path, video)
    (src / "talk.ass").write_text(ASS)
    task = {
        "format": "dash",
        "preset": "ultrafast",
        "renditions": LADDER[:1],
        "subtitles": {},
    }
    out = tmp_path / "out"
    done = run_local(
        write_workflow(tmp_path, [{"name": "s", "adaptiveStreaming": task}]), video, out
    )
    assert done.returncode == 0, done.stderr
    vtt = (out / "s" / "subtitles.vtt").read_text()
    assert "00:00:00.500 --> 00:00:01.500" in vtt
    # The style (font, colour, {\\an8}) is dropped; bold stays a WebVTT tag.
    assert _cue_texts(vtt) == ["<b>Styled</b> line"]
    info = _entry(out / "s", "manifest.mpd")["subtitles"]
    assert info["format"] == "ass"
    assert info["language"] == "und"
    assert 'lang="und"' in (out / "s" / "manifest.mpd").read_text()
