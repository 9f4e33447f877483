"""Encoder control of the transcode task (issue 13, item 7), checked on what
the worker writes: profile, level, B-frames, keyframe grid, rate control,
bit depth and HDR signalling, audio codecs, tracks and loudness, trim."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from .helpers import ffprobe, make_clip, run_local, video_stream, write_workflow

pytestmark = pytest.mark.integration


def _run(tmp_path: Path, source: Path, transcode: dict[str, Any], name: str = "enc") -> Path:
    """Run one transcode task on ``source``; the path of its output file."""
    workflow = write_workflow(tmp_path, [{"name": name, "transcode": transcode}])
    out = tmp_path / "out"
    done = run_local(workflow, source, out)
    assert done.returncode == 0, done.stderr
    (result,) = (out / name).iterdir()
    return result


def _keyframe_times(path: Path) -> list[float]:
    frames = subprocess.run(
        [
            *("ffprobe", "-v", "error", "-select_streams", "v:0", "-skip_frame", "nokey"),
            *("-show_entries", "frame=pts_time", "-of", "csv=p=0", str(path)),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [float(line.split(",")[0]) for line in frames.split()]


@pytest.mark.parametrize(
    ("codec", "profile", "level", "expected_profile", "expected_level"),
    [("h264", "main", "3.1", "Main", 31), ("h265", "main", "4.1", "Main", 123)],
)
def test_profile_level_bframes_and_gop_seconds_show_in_the_stream(
    tmp_path: Path,
    codec: str,
    profile: str,
    level: str,
    expected_profile: str,
    expected_level: int,
) -> None:
    clip = make_clip(tmp_path, "c", fps="30000/1001", duration=3)
    result = _run(
        tmp_path,
        clip.path,
        {
            "video": {
                "codec": codec,
                "profile": profile,
                "level": level,
                "bframes": 2,
                "gopSeconds": 1,
                "preset": "ultrafast",
            }
        },
    )
    video = video_stream(ffprobe(result))
    assert video is not None
    assert (video["profile"], video["level"]) == (expected_profile, expected_level)
    assert video["has_b_frames"] >= 1
    # 29.97 fps: a 30-frame GOP would drift; the keyframes sit on the 1 s grid.
    keys = _keyframe_times(result)
    assert len(keys) == 3, keys
    assert keys == pytest.approx([0.0, 1.001, 2.002], abs=0.035)


def test_baseline_profile_has_no_b_frames(tmp_path: Path) -> None:
    clip = make_clip(tmp_path, "c", duration=1)
    result = _run(tmp_path, clip.path, {"video": {"profile": "baseline", "preset": "ultrafast"}})
    video = video_stream(ffprobe(result))
    assert video is not None
    assert (video["profile"], video["has_b_frames"]) == ("Constrained Baseline", 0)


def _noisy_clip(path: Path, duration: float = 3.0) -> Path:
    """A clip that needs bits (moving pattern plus per-frame noise), so an
    encoder asked for a bitrate cannot undershoot it on easy content."""
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-y", "-f", "lavfi"),
            *("-i", f"testsrc2=s=320x240:r=25:d={duration},noise=alls=30:allf=t"),
            *("-f", "lavfi", "-i", f"anoisesrc=d={duration}:a=0.1:c=pink"),
            *("-c:v", "libx264", "-preset", "ultrafast", "-crf", "10", "-c:a", "aac"),
            str(path),
        ],
        check=True,
        timeout=120,
    )
    return path


def _video_packets(path: Path) -> list[tuple[float, int]]:
    """(pts seconds, bytes) of every video packet."""
    info = ffprobe(path, "-select_streams", "v:0", "-show_entries", "packet=pts_time,size")
    return [(float(p["pts_time"]), int(p["size"])) for p in info["packets"]]


def _video_kbps(path: Path, duration: float) -> float:
    return sum(size for _, size in _video_packets(path)) * 8 / duration / 1000


@pytest.mark.parametrize(
    ("container", "video"),
    [
        ("mp4", {"codec": "h264", "bitrate": "400k", "twoPass": True}),
        ("mkv", {"codec": "h265", "bitrate": "400k", "twoPass": True}),
        ("webm", {"codec": "vp9", "bitrate": "400k", "twoPass": True, "preset": "faster"}),
    ],
    ids=["h264", "h265", "vp9"],
)
def test_two_pass_lands_within_ten_percent_of_the_bitrate(
    tmp_path: Path, container: str, video: dict[str, Any]
) -> None:
    source = _noisy_clip(tmp_path / "noisy.mp4", duration=4)
    result = _run(tmp_path, source, {"container": container, "video": {"preset": "fast", **video}})
    assert _video_kbps(result, 4.0) == pytest.approx(400, rel=0.10)
    # The stats file lived in the run's scratch directory, which is gone.
    assert not list(tmp_path.rglob("*2pass*"))


def test_cbr_holds_the_bitrate_in_every_second(tmp_path: Path) -> None:
    source = _noisy_clip(tmp_path / "noisy.mp4", duration=4)
    result = _run(
        tmp_path,
        source,
        {"container": "ts", "video": {"rateControl": "cbr", "bitrate": "400k", "preset": "fast"}},
    )
    packets = _video_packets(result)
    assert _video_kbps(result, 4.0) == pytest.approx(400, rel=0.08)
    # No second far above or below the target: a VBV of one second of
    # bitrate and minrate = maxrate (x264 pads with filler data).
    per_second = [0.0] * 4
    for pts, size in packets:
        per_second[min(3, int(pts - packets[0][0]))] += size * 8 / 1000
    assert all(300 <= kbps <= 500 for kbps in per_second), per_second


def _pq_clip(path: Path) -> Path:
    """A 1 s 10-bit HEVC clip signalled as HDR10 (BT.2020, PQ)."""
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-y", "-f", "lavfi"),
            *("-i", "testsrc2=s=320x240:r=25:d=1,format=yuv420p10le"),
            *("-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"),
            *("-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc"),
            str(path),
        ],
        check=True,
        timeout=120,
    )
    return path


def _bitstream_colors(path: Path, tmp_path: Path) -> tuple[str, str, str]:
    """(primaries, transfer, matrix) as the elementary stream itself says
    (remuxed to a raw stream, so no container tag can stand in for it)."""
    stream = video_stream(ffprobe(path))
    assert stream is not None
    codec = stream["codec_name"]
    raw = tmp_path / f"raw.{codec}"
    fmt = {"hevc": "hevc", "av1": "obu", "h264": "h264"}[codec]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(path), "-c", "copy", "-f", fmt, str(raw)],
        check=True,
        timeout=60,
    )
    video = video_stream(ffprobe(raw))
    assert video is not None
    return video["color_primaries"], video["color_transfer"], video["color_space"]


@pytest.mark.parametrize(
    ("container", "codec", "profile"),
    [("mp4", "h265", "Main 10"), ("mkv", "av1", "Main")],
)
def test_hdr_passthrough_keeps_ten_bits_and_the_pq_signalling(
    tmp_path: Path, container: str, codec: str, profile: str
) -> None:
    source = _pq_clip(tmp_path / "pq.mp4")
    result = _run(
        tmp_path,
        source,
        {
            "container": container,
            "video": {"codec": codec, "hdr": "passthrough", "preset": "ultrafast"},
        },
    )
    video = video_stream(ffprobe(result))
    assert video is not None
    assert (video["pix_fmt"], video["profile"]) == ("yuv420p10le", profile)
    assert _bitstream_colors(result, tmp_path) == ("bt2020", "smpte2084", "bt2020nc")


def test_hdr_is_tone_mapped_to_8_bit_bt709_by_default(tmp_path: Path) -> None:
    source = _pq_clip(tmp_path / "pq.mp4")
    result = _run(tmp_path, source, {"video": {"codec": "h264", "preset": "ultrafast"}})
    video = video_stream(ffprobe(result))
    assert video is not None
    assert video["pix_fmt"] == "yuv420p"
    assert _bitstream_colors(result, tmp_path) == ("bt709", "bt709", "bt709")


def test_the_iphone_hlg_clip_passes_through_as_hlg_or_tone_maps(
    tmp_path: Path, corpus_dir: Path
) -> None:
    source = corpus_dir / "iphone_hevc_10bit_rotated.mov"
    workflow = write_workflow(
        tmp_path,
        [
            {"name": "hdr", "transcode": {"video": {"codec": "h265", "hdr": "passthrough"}}},
            {"name": "sdr", "transcode": {"video": {"codec": "h264"}}},
        ],
    )
    done = run_local(workflow, source, tmp_path / "out")
    assert done.returncode == 0, done.stderr
    hdr = video_stream(ffprobe(tmp_path / "out" / "hdr" / "hdr.mp4"))
    sdr = video_stream(ffprobe(tmp_path / "out" / "sdr" / "sdr.mp4"))
    assert hdr is not None
    assert sdr is not None
    assert (hdr["width"], hdr["height"], hdr["pix_fmt"]) == (720, 1280, "yuv420p10le")
    assert (hdr["color_transfer"], hdr["color_primaries"]) == ("arib-std-b67", "bt2020")
    assert (sdr["pix_fmt"], sdr["color_transfer"], sdr["color_primaries"]) == (
        "yuv420p",
        "bt709",
        "bt709",
    )


def test_an_8_bit_source_encodes_to_10_bit_when_asked(tmp_path: Path) -> None:
    clip = make_clip(tmp_path, "c", duration=1)
    result = _run(
        tmp_path, clip.path, {"video": {"codec": "h264", "bitDepth": 10, "preset": "ultrafast"}}
    )
    video = video_stream(ffprobe(result))
    assert video is not None
    assert (video["pix_fmt"], video["profile"]) == ("yuv420p10le", "High 10")


def _integrated_lufs(path: Path, track: int = 0) -> float:
    """Integrated loudness of one audio track, measured by ffmpeg's ebur128."""
    done = subprocess.run(
        [
            *("ffmpeg", "-hide_banner", "-nostats", "-i", str(path)),
            *("-map", f"0:a:{track}", "-af", "ebur128", "-f", "null", "-"),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    summary = done.stderr[done.stderr.rindex("Summary:") :]
    return float(summary.split("I:")[1].split()[0])


def _multi_track_clip(path: Path) -> Path:
    """3 s: video, a quiet English tone (-30 dB) and loud French pink noise."""
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-y"),
            *("-f", "lavfi", "-i", "testsrc2=s=160x120:r=10:d=3"),
            *("-f", "lavfi", "-i", "sine=f=440:d=3:sample_rate=48000,volume=-30dB"),
            *("-f", "lavfi", "-i", "anoisesrc=d=3:c=pink:a=0.3:r=44100"),
            *("-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-preset", "ultrafast"),
            *("-c:a", "aac", "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra"),
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path


def _audio_streams(path: Path) -> list[tuple[str, str | None]]:
    return [
        (s["codec_name"], s.get("tags", {}).get("language"))
        for s in ffprobe(path)["streams"]
        if s["codec_type"] == "audio"
    ]


@pytest.mark.parametrize("container", ["mp4", "mkv", "ts", "mov"])
@pytest.mark.parametrize("codec", ["ac3", "eac3"])
def test_dolby_audio_in_every_container_that_takes_it(
    tmp_path: Path, container: str, codec: str
) -> None:
    clip = make_clip(tmp_path, "c", size=(160, 120), duration=1)
    result = _run(
        tmp_path,
        clip.path,
        {
            "container": container,
            "video": {"preset": "ultrafast"},
            "audio": {"codec": codec, "bitrate": "192k"},
        },
    )
    (audio,) = [s for s in ffprobe(result)["streams"] if s["codec_type"] == "audio"]
    assert (audio["codec_name"], int(audio["sample_rate"])) == (codec, 48000)
    assert int(audio["bit_rate"]) == 192000


def test_all_tracks_are_kept_each_normalised_to_the_target(tmp_path: Path) -> None:
    source = _multi_track_clip(tmp_path / "multi.mkv")
    result = _run(
        tmp_path,
        source,
        {
            "container": "mkv",
            "video": {"preset": "ultrafast"},
            "audio": {
                "codec": "ac3",
                "tracks": "all",
                "loudness": {"integrated": -16, "truePeak": -1.5, "range": 11},
            },
        },
    )
    assert _audio_streams(result) == [("ac3", "eng"), ("ac3", "fra")]
    # The tone started near -33 LUFS, the noise near -14: both end at -16.
    for track in (0, 1):
        assert _integrated_lufs(result, track) == pytest.approx(-16, abs=1.0)
    rates = [int(s["sample_rate"]) for s in ffprobe(result)["streams"] if "sample_rate" in s]
    assert rates == [48000, 44100]  # loudnorm's 192 kHz is not passed on


def test_languages_pick_tracks_in_the_order_asked(tmp_path: Path) -> None:
    source = _multi_track_clip(tmp_path / "multi.mkv")
    result = _run(
        tmp_path,
        source,
        {
            "container": "mp4",
            "video": {"codec": "copy"},
            "audio": {"codec": "copy", "languages": ["fra", "deu"]},
        },
    )
    assert _audio_streams(result) == [("aac", "fra")]


def test_a_language_the_source_lacks_keeps_the_first_track(tmp_path: Path) -> None:
    source = _multi_track_clip(tmp_path / "multi.mkv")
    result = _run(tmp_path, source, {"container": "m4a", "audio": {"languages": ["jpn"]}})
    assert _audio_streams(result) == [("aac", "eng")]


@pytest.mark.parametrize(
    ("name", "target"),
    [("landscape_720p_h264_aac_camera.mp4", -16.0), ("audio_music_vbr.mp3", -23.0)],
)
def test_corpus_audio_is_normalised_to_the_target(
    tmp_path: Path, corpus_dir: Path, name: str, target: float
) -> None:
    result = _run(
        tmp_path,
        corpus_dir / name,
        {"container": "m4a", "audio": {"codec": "aac", "loudness": {"integrated": target}}},
    )
    assert _integrated_lufs(result) == pytest.approx(target, abs=1.0)


@pytest.mark.parametrize(
    ("trim", "expected"),
    [({"start": 0.5, "end": 2.5}, 2.0), ({"start": 1, "endOffset": 1.5}, 1.5)],
    ids=["end", "endOffset"],
)
def test_end_relative_trims_give_the_expected_duration(
    tmp_path: Path, trim: dict[str, float], expected: float
) -> None:
    clip = make_clip(tmp_path, "c", size=(160, 120), duration=4)
    result = _run(tmp_path, clip.path, {"video": {"preset": "ultrafast"}, "trim": trim})
    info = ffprobe(result)
    assert float(info["format"]["duration"]) == pytest.approx(expected, abs=0.1)
    for stream in info["streams"]:
        assert float(stream["duration"]) == pytest.approx(expected, abs=0.1), stream


def test_an_end_offset_longer_than_the_input_skips_the_task(tmp_path: Path) -> None:
    clip = make_clip(tmp_path, "c", size=(160, 120), duration=2)
    workflow = write_workflow(tmp_path, [{"name": "cut", "transcode": {"trim": {"endOffset": 3}}}])
    done = run_local(workflow, clip.path, tmp_path / "out")
    assert done.returncode == 0, done.stderr
    manifest = (tmp_path / "out" / "manifest.json").read_text()
    assert '"skipped"' in manifest
    assert "trim leaves nothing" in manifest
