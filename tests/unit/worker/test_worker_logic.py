"""Pure pieces of the worker: probe parsing, safety rules, detectors, progress,
termination message, manifest idempotency, endpoint parsing, encoders."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from mediaflow_api.job import TERMINATION_MESSAGE_LIMIT, TerminationSummary
from mediaflow_api.tasks import TaskSpec
from mediaflow_worker import manifest, safety, termination
from mediaflow_worker.config import parse_endpoint, storage_from_env
from mediaflow_worker.content_types import content_type
from mediaflow_worker.encoders import check_encoders
from mediaflow_worker.errors import (
    BadInputError,
    EmptyInputError,
    EncoderUnavailableError,
    InputRejectedError,
    SpecError,
    WorkerError,
)
from mediaflow_worker.probe import parse_probe
from mediaflow_worker.process import parse_progress_line
from mediaflow_worker.runner import TaskResult, task_entries
from mediaflow_worker.tasks import OutputFile
from mediaflow_worker.tasks.analysis import parse_detectors
from mediaflow_worker.tasks.animated_image import clip_window
from mediaflow_worker.tasks.registry import prepare

pytestmark = pytest.mark.unit

PHONE = {
    "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "0.313", "bit_rate": "1"},
    "streams": [
        {
            "codec_type": "video",
            "codec_name": "h264",
            "width": 3840,
            "height": 2160,
            "avg_frame_rate": "1000/1",
            "r_frame_rate": "60/1",
            "pix_fmt": "yuvj420p",
            "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}],
        },
        {"codec_type": "audio", "codec_name": "aac", "sample_rate": "48000", "channels": 2},
    ],
}


def test_probe_applies_rotation_and_ignores_implausible_average_rates() -> None:
    result = parse_probe(PHONE, 10)
    assert result.demuxer == "mov"
    assert result.video is not None
    assert (result.video.display_width, result.video.display_height) == (2160, 3840)
    assert result.video.rotation == 90
    assert result.video.fps == 60
    assert result.audio is not None
    assert result.audio.channels == 2


def test_probe_skips_cover_art_as_video() -> None:
    raw = {
        "format": {"format_name": "flac", "duration": "19.7"},
        "streams": [
            {"codec_type": "audio", "codec_name": "flac", "sample_rate": "44100", "channels": 2},
            {
                "codec_type": "video",
                "codec_name": "png",
                "width": 120,
                "height": 63,
                "disposition": {"attached_pic": 1},
            },
        ],
    }
    result = parse_probe(raw, 10)
    assert result.video is None
    assert result.audio is not None


def test_sniff_rejects_empty_playlist_concat_and_html(tmp_path: Path) -> None:
    cases = {
        "empty.mp4": (b"", EmptyInputError),
        "hls.mp4": (b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n", InputRejectedError),
        "bom.mp4": (b"\xef\xbb\xbf  #EXTM3U\n", InputRejectedError),
        "concat.mp4": (b"ffconcat version 1.0\nfile '/etc/passwd'\n", InputRejectedError),
        "plain.mp4": (b"file '/etc/passwd'\n", InputRejectedError),
        "page.mp4": (b"<html><body>404</body></html>", InputRejectedError),
        "notes.mp4": (b"just some notes\nline two\n", InputRejectedError),
    }
    for name, (content, error) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(error):
            safety.sniff(path)
        assert issubclass(error, BadInputError)


def test_sniff_accepts_binary_media_with_text_in_its_header(tmp_path: Path) -> None:
    path = tmp_path / "a.mp3"
    path.write_bytes(b"ID3\x03\x00\x00\x00\x00@rTYER\x00\x00" + b"<?xpacket begin='' ?>" * 100)
    safety.sniff(path)


def test_demuxer_allow_list_excludes_playlists() -> None:
    assert safety.check_demuxer("matroska,webm") == "matroska"
    for name in ("hls", "concat", "image2", "tty", "lavfi", "dash"):
        with pytest.raises(InputRejectedError):
            safety.check_demuxer(name)


def test_limits_reject_long_large_and_huge_inputs() -> None:
    def check(duration: float = 10.0, pixels: int = 100, size: int = 10) -> None:
        safety.check_limits(
            duration=duration,
            pixels=pixels,
            size=size,
            max_duration=60,
            max_pixels=1000,
            max_size=100,
        )

    check()
    with pytest.raises(InputRejectedError, match="lasts"):
        check(duration=61.0)
    with pytest.raises(InputRejectedError, match="pixels"):
        check(pixels=1001)
    with pytest.raises(InputRejectedError, match="bytes"):
        check(size=101)


def test_detector_log_lines_become_segments() -> None:
    lines = [
        "[scdet @ 0x1] lavfi.scd.score: 40.658, lavfi.scd.time: 0.52",
        "[blackdetect @ 0x2] black_start:0.52 black_end:1.24 black_duration:0.72",
        "[silencedetect @ 0x3] silence_start: 1.02168",
        "[silencedetect @ 0x3] silence_end: 1.81109 | silence_duration: 0.78941",
        "[silencedetect @ 0x3] silence_start: 3.5",
        "[Parsed_ebur128_4 @ 0x4] Summary:",
        "  Integrated loudness:",
        "    I:         -21.8 LUFS",
        "    Threshold: -31.9 LUFS",
        "  Loudness range:",
        "    LRA:         2.0 LU",
        "  True peak:",
        "    Peak:       -17.7 dBFS",
    ]
    found = parse_detectors(lines, 4.0)
    assert found["scenes"] == [{"time": 0.52, "score": 40.658}]
    assert found["black"] == [{"start": 0.52, "end": 1.24, "duration": 0.72}]
    assert found["silence"] == [
        {"start": 1.022, "end": 1.811, "duration": 0.789},
        {"start": 3.5, "end": 4.0, "duration": 0.5},
    ]
    assert found["loudness"] == {"integrated": -21.8, "range": 2.0, "truePeak": -17.7}


def test_progress_lines_give_seconds_done() -> None:
    assert parse_progress_line("out_time_us=2500000\n") == 2.5
    assert parse_progress_line("out_time_us=N/A") is None
    assert parse_progress_line("frame=10") is None


def test_termination_message_stays_under_the_limit() -> None:
    summary = TerminationSummary(ok=False, exitCode=1, reason="X", message="é" * 10_000)
    data = termination.render(summary)
    assert len(data) < TERMINATION_MESSAGE_LIMIT
    parsed = TerminationSummary.model_validate_json(data)
    assert parsed.message.endswith("...")


def test_manifest_matches_only_same_etag_same_tasks_and_success() -> None:
    tasks = [TaskSpec.model_validate({"name": "a", "analysis": {}})]
    h = manifest.spec_hash(tasks)
    good = {"ok": True, "input": {"etag": "e1"}, "specHash": h}
    assert manifest.is_up_to_date(good, "e1", h)
    assert not manifest.is_up_to_date(good, "e2", h)
    assert not manifest.is_up_to_date({**good, "ok": False}, "e1", h)
    other = [TaskSpec.model_validate({"name": "a", "analysis": {"loudness": True}})]
    assert not manifest.is_up_to_date(good, "e1", manifest.spec_hash(other))
    assert not manifest.is_up_to_date(None, "e1", h)


def test_spec_hash_ignores_how_defaults_were_spelled() -> None:
    short = [TaskSpec.model_validate({"name": "a", "snapshot": {"count": 2}})]
    full = [TaskSpec.model_validate({"name": "a", "snapshot": {"count": 2, "format": "jpeg"}})]
    assert manifest.spec_hash(short) == manifest.spec_hash(full)
    assert json.dumps(
        manifest.build(
            workflow={},
            input_={},
            spec_hash_="h",
            probe=None,
            tasks=[],
            started_at="",
            finished_at="",
            seconds=0,
            ok=True,
        )
    )


@pytest.mark.parametrize(
    ("value", "secure", "expected"),
    [
        ("127.0.0.1:9000", None, ("127.0.0.1:9000", False)),
        ("minio:9000", "true", ("minio:9000", True)),
        ("http://minio:9000", None, ("minio:9000", False)),
        ("https://s3.example.com", None, ("s3.example.com", True)),
        ("https://s3.example.com", "false", ("s3.example.com", False)),
    ],
)
def test_endpoint_may_carry_a_scheme(
    value: str, secure: str | None, expected: tuple[str, bool]
) -> None:
    assert parse_endpoint(value, secure) == expected


def test_storage_settings_never_show_the_secret() -> None:
    env = {
        "MEDIAFLOW_S3_ENDPOINT": "m:9000",
        "MEDIAFLOW_S3_ACCESS_KEY": "a",
        "MEDIAFLOW_S3_SECRET_KEY": "s3cr3t-value",
    }
    assert "s3cr3t-value" not in repr(storage_from_env(env))
    with pytest.raises(SpecError, match="MEDIAFLOW_S3_SECRET_KEY"):
        storage_from_env({"MEDIAFLOW_S3_ENDPOINT": "m:9000", "MEDIAFLOW_S3_ACCESS_KEY": "a"})


def test_required_encoders_follow_presets_and_missing_ones_fail_clearly() -> None:
    tasks = [
        prepare(TaskSpec.model_validate({"name": "a", "transcode": {"preset": "av1-720p"}})),
        prepare(TaskSpec.model_validate({"name": "b", "snapshot": {"count": 1, "format": "webp"}})),
    ]
    assert tasks[0].required_encoders() == {"libsvtav1", "aac"}
    assert tasks[1].required_encoders() == {"libwebp"}
    with pytest.raises(EncoderUnavailableError, match="task 'a' needs encoder libsvtav1"):
        check_encoders(tasks, frozenset({"aac", "libwebp"}))
    check_encoders(tasks, frozenset({"aac", "libwebp", "libsvtav1"}))


def test_error_taxonomy_exit_codes() -> None:
    assert BadInputError("x").exit_code == 2
    assert SpecError("x").exit_code == 1
    assert WorkerError("x").exit_code == 1
    assert InputRejectedError("x").reason == "InputRejected"


def test_content_types_by_extension() -> None:
    assert content_type("a/master.m3u8") == "application/vnd.apple.mpegurl"
    assert content_type("x.mpd") == "application/dash+xml"
    assert content_type("s.vtt") == "text/vtt"
    assert content_type("v.mp4") == "video/mp4"


def test_animation_window_moves_back_to_fit_the_input() -> None:
    assert clip_window(10.0, (50, True), 3) == (5.0, 3.0)
    assert clip_window(10.0, (9, False), 3) == (7.0, 3.0)
    assert clip_window(1.0, (0, False), 3) == (0.0, 1.0)


@pytest.mark.parametrize(
    "fields",
    [
        {"message": "x" * 1_000_000},
        {"message": '\x00\x1f"\\' * 50_000},  # JSON escapes grow these up to 6x
        {"message": "日本語🎬" * 100_000},
        {"message": "m" * 10_000, "reason": "R" * 10_000},
        {"message": "m" * 10_000, "manifest": "k/" * 5_000},
    ],
    ids=["ascii", "escaped", "multibyte", "huge-reason", "huge-manifest-key"],
)
def test_termination_message_of_any_size_fits_and_parses(fields: dict[str, str]) -> None:
    summary = TerminationSummary.model_validate(
        {"ok": False, "exitCode": 2, "reason": "InputRejected", **fields}
    )
    data = termination.render(summary)
    assert len(data) < TERMINATION_MESSAGE_LIMIT
    parsed = TerminationSummary.model_validate_json(data)
    assert (parsed.ok, parsed.exit_code) == (False, 2)
    assert parsed.reason  # never cut to nothing
    assert summary.message.startswith(parsed.message.removesuffix("..."))


def _run_failing_job_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: Callable[..., None]
) -> Path:
    """Run ``mediaflow-worker job`` with ``run_job`` replaced by ``fail``;
    it must exit 1. Returns the termination-message file."""
    from mediaflow_worker import cli, job_mode

    monkeypatch.setattr(job_mode, "run_job", fail)
    term = tmp_path / "termination-log"
    job = {
        "workflow": {"namespace": "ns", "name": "wf"},
        "input": {"bucket": "up", "key": "a.mp4", "etag": "e"},
        "output": {"bucket": "media", "dir": "a.mp4.mediaflow/ns/wf/"},
        "tasks": [{"name": "facts", "analysis": {}}],
    }
    monkeypatch.setenv("MEDIAFLOW_JOB", json.dumps(job))
    monkeypatch.setenv("MEDIAFLOW_S3_ENDPOINT", "127.0.0.1:9")
    monkeypatch.setenv("MEDIAFLOW_S3_ACCESS_KEY", "k")
    monkeypatch.setenv("MEDIAFLOW_S3_SECRET_KEY", "s")
    monkeypatch.setenv("MEDIAFLOW_TERMINATION_MESSAGE_PATH", str(term))
    assert cli.main(["job"]) == 1
    return term


def test_job_command_writes_a_short_termination_message_for_a_huge_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mediaflow_worker.errors import ProcessingError

    def fail(*_args: object, **_kwargs: object) -> None:
        raise ProcessingError("ffmpeg said: " + "Ω bad frame\n" * 200_000)

    term = _run_failing_job_command(tmp_path, monkeypatch, fail)
    raw = term.read_bytes()
    assert len(raw) < TERMINATION_MESSAGE_LIMIT
    parsed = TerminationSummary.model_validate_json(raw)
    assert parsed.reason == "ProcessingFailed"
    assert parsed.message.startswith("ffmpeg said: Ω bad frame Ω bad frame")
    # stderr: exactly one line, also bounded.
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert len(err[0]) < 600


def test_transfers_and_ffmpeg_stop_in_order_before_the_jobs_deadline() -> None:
    from mediaflow_worker.job_mode import deadlines

    for timeout in (30, 600, 3600, 86_400):
        processing, uploads = deadlines(1000.0, timeout)
        assert 1000.0 < processing < uploads < 1000.0 + timeout
        # Cleanup after a timed-out upload gets at least 0.9 s per 30 s of
        # budget, never more than 30 s; ffmpeg gives up at most 2 minutes.
        assert 1000.0 + timeout - uploads == pytest.approx(min(30.0, 0.03 * timeout))
        assert 1000.0 + timeout - processing == pytest.approx(min(120.0, 0.1 * timeout))


def test_the_last_video_packet_is_the_latest_presentation_time() -> None:
    from mediaflow_worker.probe import parse_last_frame

    # Decode order: a B-frame (5.5) after the frame shown last (5.585).
    listing = "5.477795,0.066302\n5.585503,1.570000\n5.544097,0.041406\nN/A,N/A\n"
    assert parse_last_frame(listing) == (5.585503, 1.57)
    assert parse_last_frame("1.0,N/A\n") == (1.0, None)
    assert parse_last_frame("") is None


@pytest.mark.parametrize(
    ("raised", "reason"),
    [(KeyboardInterrupt(), "Interrupted"), (RuntimeError("bug"), "InternalError")],
)
def test_job_command_reports_signals_and_bugs_in_the_termination_message(
    raised: BaseException, reason: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_args: object, **_kwargs: object) -> None:
        raise raised

    term = _run_failing_job_command(tmp_path, monkeypatch, fail)
    parsed = TerminationSummary.model_validate_json(term.read_bytes())
    assert (parsed.ok, parsed.exit_code, parsed.reason) == (False, 1, reason)


def test_manifest_output_entries_carry_key_size_content_type_and_facts(tmp_path: Path) -> None:
    (tmp_path / "posters").mkdir()
    still = tmp_path / "posters" / "snapshot-0001.jpg"
    still.write_bytes(b"x" * 7)
    playlist = tmp_path / "posters" / "index.m3u8"
    playlist.write_bytes(b"#EXTM3U\n")
    result = TaskResult(
        "posters",
        "snapshot",
        "succeeded",
        1.23456,
        [OutputFile(still, {"time": 1.5, "width": 64, "height": 36}), OutputFile(playlist)],
    )
    (entry,) = task_entries([result], tmp_path, "out/")
    assert entry["outputs"] == [
        {
            "key": "out/posters/snapshot-0001.jpg",
            "size": 7,
            "contentType": "image/jpeg",
            "time": 1.5,
            "width": 64,
            "height": 36,
        },
        {
            "key": "out/posters/index.m3u8",
            "size": 8,
            "contentType": "application/vnd.apple.mpegurl",
        },
    ]
    assert entry["seconds"] == 1.235


def test_the_job_command_logs_the_jobs_traceparent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from mediaflow_api.job import TRACEPARENT_ENV
    from mediaflow_worker.errors import ProcessingError

    def fail(*_args: object, **_kwargs: object) -> None:
        raise ProcessingError("stop here")

    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    monkeypatch.setenv(TRACEPARENT_ENV, traceparent)
    with caplog.at_level(logging.INFO, logger="mediaflow_worker"):
        _run_failing_job_command(tmp_path, monkeypatch, fail)
    assert f"traceparent {traceparent}" in caplog.messages
