"""adaptiveStreaming on real output: per-rendition settings, never above the
source, fMP4/CMAF segments shared by HLS and DASH, audio ladders, AES-128
encryption and watermarks on every rendition (ffprobe, ffmpeg reading the
playlists, openssl, pixels)."""

from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from .helpers import Clip, ffprobe, make_clip, run_local, video_stream, write_workflow

pytestmark = pytest.mark.integration

MPD_NS = "{urn:mpeg:dash:schema:mpd:2011}"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """A 2 s 640x360 clip at 25 fps with a tone."""
    return make_clip(tmp_path_factory.mktemp("clips"), "small", size=(640, 360), duration=2)


def _run(tmp_path: Path, clip: Path, task: dict[str, Any], *extra: str) -> Path:
    """Run one ``adaptiveStreaming`` task named ``s``; its output directory."""
    workflow = write_workflow(tmp_path, [{"name": "s", "adaptiveStreaming": task}])
    out = tmp_path / "out"
    done = run_local(workflow, clip, out, *extra)
    assert done.returncode == 0, done.stderr
    return out / "s"


def _entry(out: Path, name: str) -> dict[str, Any]:
    """The manifest entry of ``s/<name>``."""
    manifest = json.loads((out.parent / "manifest.json").read_text())
    for task in manifest["tasks"]:
        for output in task["outputs"]:
            if output["path"] == f"s/{name}":
                entry: dict[str, Any] = output
                return entry
    raise AssertionError(f"s/{name} is not in the manifest")


def _plays(playlist: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """ffmpeg decoding every stream a playlist (or MPD) refers to."""
    args = ["ffmpeg", "-v", "error", *extra, "-i", str(playlist.resolve())]
    return subprocess.run(
        [*args, "-map", "0", "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _variants(master: Path) -> list[str]:
    return [line for line in master.read_text().splitlines() if line.startswith("#EXT-X-STREAM")]


def _first_segment(playlist: Path) -> Path:
    name = next(
        line for line in playlist.read_text().splitlines() if line and not line.startswith("#")
    )
    return playlist.parent / name


def test_a_1080p_ladder_on_a_360p_clip_keeps_only_what_fits_with_each_renditions_settings(
    tmp_path: Path, clip: Clip
) -> None:
    out = _run(
        tmp_path,
        clip.path,
        {
            "segmentSeconds": 1,
            "preset": "ultrafast",
            "segmentFormat": "fmp4",
            "renditions": [
                {"height": 1080, "videoBitrate": "5M"},
                {"height": 720, "videoBitrate": "3M"},
                # far above the source's bitrate: capped to it
                {"height": 360, "videoBitrate": "50M"},
                {
                    "width": 320,
                    "videoBitrate": "200k",
                    "fps": 10,
                    "codec": "h265",
                    "audioBitrate": "48k",
                    "audioChannels": 1,
                    "audioSampleRate": 44100,
                },
            ],
        },
    )
    master = out / "master.m3u8"
    variants = _variants(master)
    assert len(variants) == 2
    assert "RESOLUTION=640x360" in variants[0]
    assert "RESOLUTION=320x180" in variants[1]
    assert "hvc1" in variants[1]
    big = ffprobe(out / "stream_0" / "index.m3u8")
    assert video_stream(big)["height"] == 360
    small = ffprobe(out / "stream_1" / "index.m3u8")
    video = video_stream(small)
    assert video is not None
    assert (video["codec_name"], video["width"], video["height"]) == ("hevc", 320, 180)
    assert video["avg_frame_rate"] in ("10/1", "10")
    audio = next(s for s in small["streams"] if s["codec_type"] == "audio")
    assert (audio["channels"], audio["sample_rate"]) == (1, "44100")
    entry = _entry(out, "master.m3u8")
    source_rate = int(video_stream(ffprobe(clip.path))["bit_rate"])
    top = entry["renditions"][0]
    assert top["cappedAtSource"] is True
    assert top["videoBitrate"] == source_rate
    assert [d["height"] for d in entry["dropped"]] == [1080, 720]
    assert all("larger than the source" in d["reason"] for d in entry["dropped"])
    played = _plays(master)
    assert played.returncode == 0, played.stderr


def test_a_source_smaller_than_every_rendition_keeps_the_nearest_one(
    tmp_path: Path, clip: Clip
) -> None:
    out = _run(
        tmp_path,
        clip.path,
        {
            "ladder": "standard-ladder",
            "segmentSeconds": 1,
            "preset": "ultrafast",
            "renditions": [
                {"height": 1080, "videoBitrate": "5M"},
                {"height": 720, "videoBitrate": "3M"},
            ],
        },
    )
    variants = _variants(out / "master.m3u8")
    assert len(variants) == 1
    assert "RESOLUTION=640x360" in variants[0]
    entry = _entry(out, "master.m3u8")
    assert [d["height"] for d in entry["dropped"]] == [1080]


def test_cmaf_writes_one_set_of_fmp4_segments_for_hls_and_dash(tmp_path: Path, clip: Clip) -> None:
    out = _run(
        tmp_path,
        clip.path,
        {
            "format": "cmaf",
            "segmentSeconds": 1,
            "preset": "ultrafast",
            # 426x240 is not exactly 16:9: the DASH muxer refused it beside
            # 640x360 until the renditions got one display aspect ratio.
            "renditions": [
                {"height": 360, "videoBitrate": "600k"},
                {"height": 240, "videoBitrate": "200k"},
            ],
        },
    )
    assert not list(out.rglob("*.ts"))
    master = out / "master.m3u8"
    assert len(_variants(master)) == 2
    hls_segments = set()
    for media in out.glob("media_*.m3u8"):
        text = media.read_text()
        hls_segments |= set(re.findall(r"^(chunk-\S+\.m4s)$", text, re.MULTILINE))
        hls_segments |= set(re.findall(r'#EXT-X-MAP:URI="([^"]+)"', text))
    on_disk = {p.name for p in out.glob("*.m4s")}
    # Every segment is one file both manifests use: HLS lists them all...
    assert hls_segments == on_disk
    # ...and the MPD's templates name the same files.
    mpd = ET.fromstring((out / "manifest.mpd").read_text())  # noqa: S314 - our own file
    reps = mpd.findall(f".//{MPD_NS}Representation")
    templates = mpd.findall(f".//{MPD_NS}SegmentTemplate")
    assert len(reps) == 3
    assert {t.get("initialization") for t in templates} == {"init-$RepresentationID$.m4s"}
    for r in reps:
        assert f"init-{r.get('id')}.m4s" in on_disk
    for playlist in (master, out / "manifest.mpd"):
        played = _plays(playlist)
        assert played.returncode == 0, (playlist.name, played.stderr)
    assert {r.get("sar") for r in reps if r.get("width")} == {"1:1", "640:639"}
    assert _entry(out, "manifest.mpd")["format"] == "cmaf"
    assert _entry(out, "master.m3u8")["format"] == "cmaf"


def test_hls_fmp4_segments_for_h264(tmp_path: Path, clip: Clip) -> None:
    out = _run(
        tmp_path,
        clip.path,
        {
            "segmentFormat": "fmp4",
            "segmentSeconds": 1,
            "preset": "ultrafast",
            "renditions": [{"height": 240, "videoBitrate": "300k"}],
        },
    )
    playlist = (out / "stream_0" / "index.m3u8").read_text()
    assert '#EXT-X-MAP:URI="init.mp4"' in playlist
    assert "segment_00000.m4s" in playlist
    assert video_stream(ffprobe(out / "stream_0" / "index.m3u8"))["codec_name"] == "h264"
    assert _plays(out / "master.m3u8").returncode == 0


def test_audio_only_ladder_from_a_video_input(tmp_path: Path, clip: Clip) -> None:
    audio_renditions = [{"bitrate": "64k"}, {"bitrate": "32k", "channels": 1}]
    out = _run(
        tmp_path,
        clip.path,
        {"audioOnly": True, "segmentSeconds": 1, "audioRenditions": audio_renditions},
    )
    variants = _variants(out / "master.m3u8")
    assert len(variants) == 2
    assert all('CODECS="mp4a.40.2"' in v and "RESOLUTION" not in v for v in variants)
    for i, channels in enumerate((2, 1)):
        info = ffprobe(out / f"stream_{i}" / "index.m3u8")
        assert [s["codec_type"] for s in info["streams"]] == ["audio"]
        assert info["streams"][0]["channels"] == channels
    assert _plays(out / "master.m3u8").returncode == 0
    (tmp_path / "dash").mkdir()
    dash = _run(
        tmp_path / "dash",
        clip.path,
        {"format": "dash", "audioOnly": True, "audioRenditions": audio_renditions},
    )
    mpd = ET.fromstring((dash / "manifest.mpd").read_text())  # noqa: S314 - our own file
    reps = mpd.findall(f".//{MPD_NS}Representation")
    assert sorted(int(r.get("bandwidth") or 0) // 1000 for r in reps) == [32, 64]
    assert {r.get("codecs") for r in reps} == {"mp4a.40.2"}


def test_audio_renditions_with_video_are_one_hls_audio_group(tmp_path: Path, clip: Clip) -> None:
    out = _run(
        tmp_path,
        clip.path,
        {
            "segmentSeconds": 1,
            "preset": "ultrafast",
            "renditions": [
                {"height": 360, "videoBitrate": "600k"},
                {"height": 180, "videoBitrate": "200k"},
            ],
            "audioRenditions": [{"bitrate": "64k"}, {"bitrate": "32k"}],
        },
    )
    master = (out / "master.m3u8").read_text()
    media = [line for line in master.splitlines() if line.startswith("#EXT-X-MEDIA:TYPE=AUDIO")]
    assert len(media) == 2
    assert all('GROUP-ID="group_audio"' in m for m in media)
    variants = _variants(out / "master.m3u8")
    assert len(variants) == 2
    assert all('AUDIO="group_audio"' in v for v in variants)
    # The video variants carry no audio of their own.
    assert [s["codec_type"] for s in ffprobe(out / "stream_0" / "index.m3u8")["streams"]] == [
        "video"
    ]
    played = _plays(out / "master.m3u8")
    assert played.returncode == 0, played.stderr


def test_an_audio_input_streams_one_rendition_or_its_audio_ladder(tmp_path: Path) -> None:
    song = make_clip(tmp_path, "song", video=False, duration=2, container="m4a")
    one = _run(tmp_path, song.path, {"segmentSeconds": 1})
    assert len(_variants(one / "master.m3u8")) == 1
    (tmp_path / "ladder").mkdir()
    ladder = _run(
        tmp_path / "ladder",
        song.path,
        {
            "audioOnly": True,
            "segmentSeconds": 1,
            "audioRenditions": [{"bitrate": "48k"}, {"bitrate": "24k", "channels": 1}],
        },
    )
    assert len(_variants(ladder / "master.m3u8")) == 2
    assert _plays(ladder / "master.m3u8").returncode == 0


def _key_lines(playlist: Path) -> list[str]:
    return [line for line in playlist.read_text().splitlines() if line.startswith("#EXT-X-KEY")]


def _decrypt(segment: Path, key: bytes, iv: str, out: Path) -> subprocess.CompletedProcess[str]:
    cipher = ["openssl", "aes-128-cbc", "-d", "-K", key.hex(), "-iv", iv]
    return subprocess.run(
        [*cipher, "-in", str(segment), "-out", str(out)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _probe_rc(path: Path) -> int:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", str(path)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.returncode


def test_aes_128_segments_play_with_the_key_only_and_the_key_is_never_an_output(
    tmp_path: Path, clip: Clip
) -> None:
    key = bytes(range(16, 32))
    secrets = tmp_path / "secrets"
    (secrets / "hls-keys").mkdir(parents=True)
    # As `kubectl create secret generic --from-literal` would hold it: hex text.
    (secrets / "hls-keys" / "movie.key").write_text(key.hex() + "\n")
    uri = "https://keys.example.com/v1/movie"
    out = _run(
        tmp_path,
        clip.path,
        {
            "segmentSeconds": 1,
            "preset": "ultrafast",
            "renditions": [
                {"height": 360, "videoBitrate": "600k"},
                {"height": 180, "videoBitrate": "200k"},
            ],
            "encryption": {
                "keySecret": {"name": "hls-keys", "key": "movie.key"},
                "keyUri": uri,
            },
        },
        "--secret-dir",
        str(secrets),
    )
    ivs = set()
    for i in (0, 1):
        playlist = out / f"stream_{i}" / "index.m3u8"
        (line,) = _key_lines(playlist)
        assert f'METHOD=AES-128,URI="{uri}"' in line
        iv = line.split("IV=0x")[1]
        ivs.add(iv)
        segment = _first_segment(playlist)
        # Encrypted: not media without the key.
        assert _probe_rc(segment) != 0
        plain = tmp_path / f"plain-{i}.ts"
        assert _decrypt(segment, key, iv, plain).returncode == 0
        info = ffprobe(plain)
        assert sorted(s["codec_name"] for s in info["streams"]) == ["aac", "h264"]
        assert plain.read_bytes()[0] == 0x47  # the MPEG-TS sync byte
        wrong = tmp_path / f"wrong-{i}.ts"
        failed = _decrypt(segment, bytes(16), iv, wrong)
        assert failed.returncode != 0 or _probe_rc(wrong) != 0
        # A player with the key (here a local copy of it) plays the playlist...
        local_key = tmp_path / "k.bin"
        local_key.write_bytes(key)
        local = playlist.with_name("local.m3u8")
        local.write_text(playlist.read_text().replace(uri, str(local_key)))
        played = _plays(local, "-allowed_extensions", "ALL")
        assert played.returncode == 0, played.stderr
        local.unlink()
        # ...one without it cannot.
        assert _plays(playlist).returncode != 0
    assert all(len(iv) == 32 for iv in ivs)
    # The key is nowhere in the outputs or the manifest, and not left in scratch.
    manifest = (out.parent / "manifest.json").read_text()
    assert ".key" not in manifest
    assert _entry(out, "master.m3u8")["encryption"] == {"method": "aes-128", "keyUri": uri}
    for path in out.parent.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert key not in data, path
            assert key.hex().encode() not in data, path
    assert not list(tmp_path.glob("*/*-hls.key")) + list(tmp_path.glob("*-hls.key"))


def test_a_missing_key_is_exit_2_naming_the_secret(tmp_path: Path, clip: Clip) -> None:
    task = {
        "encryption": {
            "keySecret": {"name": "hls-keys", "key": "absent.key"},
            "keyUri": "https://keys.example.com/k",
        }
    }
    workflow = write_workflow(tmp_path, [{"name": "s", "adaptiveStreaming": task}])
    done = run_local(workflow, clip.path, tmp_path / "out", "--secret-dir", str(tmp_path))
    assert done.returncode == 2, done.stderr
    assert "Secret 'hls-keys', key 'absent.key'" in done.stderr


def _first_frame(playlist: Path, size: tuple[int, int]) -> bytes:
    """The first decoded frame of a media playlist as RGB24 bytes."""
    decode = ["ffmpeg", "-v", "error", "-i", str(playlist), "-frames:v", "1"]
    done = subprocess.run(
        [*decode, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert len(done.stdout) == size[0] * size[1] * 3
    return done.stdout


def _region(frame: bytes, width: int, box: tuple[int, int, int, int]) -> list[tuple[int, ...]]:
    """The RGB pixels of ``box`` (x0, y0, x1, y1) in a frame ``width`` wide."""
    x0, y0, x1, y1 = box
    return [
        tuple(frame[(y * width + x) * 3 : (y * width + x) * 3 + 3])
        for y in range(y0, y1)
        for x in range(x0, x1)
    ]


def _mean_difference(a: list[tuple[int, ...]], b: list[tuple[int, ...]]) -> float:
    total = sum(
        abs(p - q) for pa, pb in zip(a, b, strict=True) for p, q in zip(pa, pb, strict=True)
    )
    return total / (3 * len(a))


def test_watermarks_are_drawn_on_every_rendition_at_its_size(
    tmp_path: Path, clip: Clip, logo_png: Path
) -> None:
    renditions = [
        {"height": 360, "videoBitrate": "1500k"},
        {"height": 180, "videoBitrate": "600k"},
    ]
    base = {"segmentSeconds": 1, "preset": "ultrafast", "renditions": renditions}
    (tmp_path / "plain").mkdir()
    plain = _run(tmp_path / "plain", clip.path, base)
    (tmp_path / "marked").mkdir()
    logo = {"bucket": "assets", "key": "logo.png"}
    marks = [
        # 25 % of each rendition's width, in its top-left corner.
        {"image": logo, "position": "top-left", "offsetX": "0", "offsetY": "0", "width": "25%"},
        {"text": "PREVIEW", "position": "bottom-right", "fontSize": "12%"},
    ]
    marked = _run(
        tmp_path / "marked",
        clip.path,
        {**base, "watermarks": marks},
        "--assets",
        str(logo_png.parents[1]),
    )
    for i, (w, h) in enumerate([(640, 360), (320, 180)]):
        with_marks = _first_frame(marked / f"stream_{i}" / "index.m3u8", (w, h))
        without = _first_frame(plain / f"stream_{i}" / "index.m3u8", (w, h))
        # The logo (red at 60 %) is 25 % of this rendition's width: w/4 x w/8.
        logo_box = (2, 2, w // 4 - 2, w // 8 - 2)
        drawn = _region(with_marks, w, logo_box)
        assert _mean_difference(drawn, _region(without, w, logo_box)) > 40, i
        assert sum(p[0] for p in drawn) / len(drawn) > 150, i  # red
        # Just right of and below the logo: untouched.
        clear = (w // 4 + 4, w // 8 + 4, w // 2, h // 2)
        assert _mean_difference(_region(with_marks, w, clear), _region(without, w, clear)) < 8
        # The text, bottom right, sized to 12 % of this rendition's height.
        text_box = (w // 2, h - h // 4, w - 4, h - 4)
        assert (
            _mean_difference(_region(with_marks, w, text_box), _region(without, w, text_box)) > 3
        ), i
