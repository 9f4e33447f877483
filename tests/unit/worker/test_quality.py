"""The ``quality`` task's pure parts: the command, the log parser, turning
what the detectors said into findings, the verdict and the rejection."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from mediaflow_api.tasks import FINDING_TYPES, QualityTask, TaskSpec
from mediaflow_worker.ffmpeg.quality import AudioChecks, VideoChecks, packets_args, quality_args
from mediaflow_worker.understanding.quality import (
    CodeHit,
    Finding,
    LogParser,
    Sample,
    audio_findings,
    checks_to_run,
    code_findings,
    dropped_frame_findings,
    order,
    rejection_message,
    report,
    timestamp_findings,
    verdict,
    video_findings,
)

pytestmark = pytest.mark.unit

SPEC = QualityTask()


def _feed(lines: list[str]) -> LogParser:
    parser = LogParser()
    for line in lines:
        assert parser.feed(line) is False  # run_ffmpeg keeps nothing
    return parser


def _frames(branch: str, times: list[float], key: str = "", value: str = "") -> list[str]:
    out = []
    for index, time in enumerate(times):
        out.append(f"[metadata@{branch} @ 0x55] frame:{index}    pts:{index}    pts_time:{time:g}")
        if key:
            out.append(f"[metadata@{branch} @ 0x55] {key}={value}")
    return out


def _stats(time: float, **values: float) -> list[str]:
    lines = [f"[metadata@stats @ 0x55] frame:0    pts:0       pts_time:{time:g}"]
    lines += [f"[metadata@stats @ 0x55] {key}={value:g}" for key, value in values.items()]
    return lines


BUSY = {  # a sharp, mid-grey, colourful picture (testsrc2's statistics)
    "lavfi.signalstats.YLOW": 41,
    "lavfi.signalstats.YAVG": 122,
    "lavfi.signalstats.YHIGH": 210,
    "lavfi.signalstats.ULOW": 16,
    "lavfi.signalstats.UAVG": 129,
    "lavfi.signalstats.UHIGH": 240,
    "lavfi.signalstats.VLOW": 16,
    "lavfi.signalstats.VAVG": 127,
    "lavfi.signalstats.VHIGH": 240,
    "lavfi.blur": 4.7,
    "lavfi.block": 15,
    "lavfi.cropdetect.x1": 0,
    "lavfi.cropdetect.x2": 319,
    "lavfi.cropdetect.y1": 0,
    "lavfi.cropdetect.y2": 239,
}


def _grid(
    seconds: float, step: float = 0.2, **overrides: tuple[float, float, Mapping[str, float]]
) -> list[str]:
    """Stats lines every ``step`` s; ``overrides``: name -> (start, end, values)."""
    lines = []
    n = round(seconds / step)
    for i in range(n):
        t = round(i * step, 3)
        values = dict(BUSY)
        for start, end, changed in overrides.values():
            if start - 1e-6 <= t < end - 1e-6:
                values.update(changed)
        lines += _stats(t, **values)
    return lines


# --- the command -------------------------------------------------------------


def test_one_decode_runs_every_detector_with_the_spec_thresholds() -> None:
    args = quality_args(
        Path("/in"),
        "mov",
        1000,
        video=VideoChecks((320, 180), (1.5, 0.1), (2, -60), True, True, 0.25),
        audio=AudioChecks((-45, 0.5), True, 1.0),
    )
    assert args is not None
    graph = args[args.index("-filter_complex") + 1]
    assert "blackdetect=d=1.5:pix_th=0.1" in graph
    assert "freezedetect=n=-60dB:d=2" in graph
    assert "idet=intl_thres=1.5" in graph
    assert "mpdecimate" in graph
    assert "scale=320:180" in graph
    assert "gte(t-prev_selected_t,0.249)" in graph
    assert "silencedetect=n=-45dB:d=0.5" in graph
    assert "aphasemeter=video=0:phasing=1:duration=1" in graph
    assert "ebur128=peak=true" in graph
    assert args[args.index("-v") + 1] == "verbose"  # graph re-creations are logged there
    assert args.count("-map") == 4  # every frame, picture statistics, blocks, audio
    assert "blockdetect,metadata@block" in graph
    assert args[-3:] == ["-f", "null", "-"]


def test_the_command_leaves_out_what_is_not_asked() -> None:
    video = VideoChecks((320, 240), None, None, False, False, None)
    args = quality_args(Path("/in"), "mov", 1000, video=video, audio=None)
    assert args is not None
    graph = args[args.index("-filter_complex") + 1]
    assert graph == "[0:V:0]scale=320:240:flags=area[vout0]"
    # ebur128 stays: it dates a change of sample rate or channel layout.
    formats = AudioChecks(None, False, None)
    args = quality_args(Path("/in"), "mov", 1000, video=None, audio=formats)
    assert args is not None
    assert args[args.index("-filter_complex") + 1] == (
        "[0:a:0]ebur128=peak=true:framelog=verbose[aout]"
    )
    assert quality_args(Path("/in"), "mov", 1000, video=None, audio=None) is None


def test_packets_are_listed_without_decoding() -> None:
    args = packets_args(Path("/in"), "mpegts")
    assert "packet=stream_index,dts_time,duration_time" in args
    assert args[-1] == "file:/in"


# --- parsing and findings ----------------------------------------------------


def test_detector_lines_become_ranges_and_loudness() -> None:
    parser = _feed(
        [
            "[blackdetect @ 0x5] black_start:2 black_end:3.04 black_duration:1.04",
            "[freezedetect @ 0x5] lavfi.freezedetect.freeze_start: 4.08",
            "[freezedetect @ 0x5] lavfi.freezedetect.freeze_duration: 2.44",
            "[freezedetect @ 0x5] lavfi.freezedetect.freeze_end: 6.52",
            "[silencedetect @ 0x5] silence_start: -0.01",
            "[silencedetect @ 0x5] silence_end: 1.5 | silence_duration: 1.51",
            "[silencedetect @ 0x5] silence_start: 9",
            "[aphasemeter @ 0x5] out_phase_start: 6.03",
            "[aphasemeter @ 0x5] out_phase_end: 7.98 | out_phase_duration: 1.95",
            "[Parsed_ebur128_16 @ 0x5] Summary:",
            "",
            "  Integrated loudness:",
            "    I:         -18.8 LUFS",
            "    Threshold: -28.8 LUFS",
        ]
    )
    assert parser.black == [(2.0, 3.04)]
    assert parser.freeze == [(4.08, 6.52)]
    assert parser.silence == [(0.0, 1.5), (9.0, None)]
    assert parser.phase == [(6.03, 7.98)]
    assert parser.integrated == -18.8
    found = audio_findings(parser, SPEC, duration=10.0)
    # The silence still open at the end runs to the end.
    assert [(f.type, f.start, f.end) for f in found] == [
        ("silence", 0.0, 1.5),
        ("silence", 9.0, 10.0),
        ("outOfPhase", 6.03, 7.98),
    ]


@pytest.mark.parametrize(
    ("lufs", "kind"), [(-46.8, "quiet"), (-6.8, "loud"), (-23.0, None), (-14.0, None)]
)
def test_integrated_loudness_outside_the_range_is_a_finding(lufs: float, kind: str | None) -> None:
    parser = LogParser(integrated=lufs)
    found = audio_findings(parser, SPEC, duration=4.0)
    assert [f.type for f in found] == ([kind] if kind else [])
    if kind:
        assert found[0].detail == {"integratedLufs": lufs}
        assert (found[0].start, found[0].end) == (0.0, 4.0)


def test_a_black_screen_is_not_also_reported_frozen_or_dark() -> None:
    black = {"lavfi.signalstats.YLOW": 16, "lavfi.signalstats.YAVG": 16,
             "lavfi.signalstats.YHIGH": 16, "lavfi.signalstats.ULOW": 128,
             "lavfi.signalstats.UHIGH": 128, "lavfi.signalstats.VLOW": 128,
             "lavfi.signalstats.VHIGH": 128}  # fmt: skip
    parser = _feed(
        [
            *_grid(6.0, black=(2.0, 3.0, black)),
            "[blackdetect @ 0x5] black_start:2 black_end:3 black_duration:1",
            "[freezedetect @ 0x5] lavfi.freezedetect.freeze_start: 2",
            "[freezedetect @ 0x5] lavfi.freezedetect.freeze_end: 3",
        ]
    )
    found = video_findings(parser, SPEC, 6.0, (320, 240))
    assert [(f.type, f.start, f.end) for f in found] == [("black", 2.0, 3.0)]


def test_a_one_colour_screen_is_found_with_its_colour() -> None:
    red = {"lavfi.signalstats.YLOW": 81, "lavfi.signalstats.YAVG": 81,
           "lavfi.signalstats.YHIGH": 82, "lavfi.signalstats.ULOW": 90,
           "lavfi.signalstats.UAVG": 90, "lavfi.signalstats.UHIGH": 90,
           "lavfi.signalstats.VLOW": 240, "lavfi.signalstats.VAVG": 240,
           "lavfi.signalstats.VHIGH": 240}  # fmt: skip
    parser = _feed(_grid(6.0, red=(1.0, 3.0, red)))
    found = video_findings(parser, SPEC, 6.0, (320, 240))
    assert [(f.type, f.start, f.end) for f in found] == [("solidColor", 1.0, 3.0)]
    assert found[0].detail["color"] == "#fe0000"


def test_blur_blockiness_dark_and_bright_need_min_seconds_of_samples() -> None:
    parser = _feed(
        _grid(
            10.0,
            blur=(1.0, 2.4, {"lavfi.blur": 25.0}),
            short=(3.0, 3.4, {"lavfi.blur": 25.0}),  # 0.4 s: too short
            blocks=(4.0, 5.2, {"lavfi.block": 90.0}),
            dark=(6.0, 7.2, {"lavfi.signalstats.YAVG": 20.0}),
            bright=(8.0, 9.6, {"lavfi.signalstats.YAVG": 240.0}),
        )
    )
    found = video_findings(parser, SPEC, 10.0, (320, 240))
    assert [(f.type, f.start, f.end) for f in found] == [
        ("blur", 1.0, 2.4),
        ("blockiness", 4.0, 5.2),
        ("dark", 6.0, 7.2),
        ("bright", 8.0, 9.6),
    ]
    blur = found[0]
    assert blur.detail == {"mean": 25.0, "worst": 25.0}
    assert blur.confidence == 1.0  # 25 is more than twice past 12


def test_a_10_bit_picture_is_judged_on_the_8_bit_scale() -> None:
    mid = {"lavfi.signalstats.YBITDEPTH": 10, "lavfi.signalstats.YAVG": 490,
           "lavfi.signalstats.YLOW": 160, "lavfi.signalstats.YHIGH": 840,
           "lavfi.signalstats.ULOW": 64, "lavfi.signalstats.UHIGH": 960,
           "lavfi.signalstats.VLOW": 64, "lavfi.signalstats.VHIGH": 960}  # fmt: skip
    parser = _feed(_grid(4.0, all=(0.0, 4.0, mid)))
    assert video_findings(parser, SPEC, 4.0, (320, 240)) == []


def test_letterbox_bars_are_black_edges_with_the_picture_area() -> None:
    bars = {"lavfi.cropdetect.y1": 30.0, "lavfi.cropdetect.y2": 209.0}
    parser = _feed(_grid(4.0, bars=(0.0, 4.0, bars)))
    found = video_findings(parser, SPEC, 4.0, (320, 240))
    assert [(f.type, f.start, f.end) for f in found] == [("blackEdges", 0.0, 4.0)]
    edges = found[0]
    assert edges.area == (0.0, 0.125, 1.0, 0.75)
    assert edges.detail == {"left": 0.0, "top": 0.125, "right": 0.0, "bottom": 0.125}
    assert edges.as_json()["area"] == {"x": 0.0, "y": 0.125, "w": 1.0, "h": 0.75}


def test_bars_thinner_than_edge_min_percent_are_ignored() -> None:
    thin = {"lavfi.cropdetect.y1": 2.0, "lavfi.cropdetect.y2": 237.0}  # under 1 %
    parser = _feed(_grid(4.0, thin=(0.0, 4.0, thin)))
    assert video_findings(parser, SPEC, 4.0, (320, 240)) == []


def test_interlaced_frames_make_a_range_and_stray_ones_do_not() -> None:
    times = [round(i * 0.04, 3) for i in range(100)]
    lines = []
    for index, t in enumerate(times):
        lines.append(f"[metadata@all @ 0x5] frame:{index} pts:{index} pts_time:{t:g}")
        woven = 1.0 <= t < 3.0 or index in (80, 90)
        lines.append(
            "[metadata@all @ 0x5] lavfi.idet.single.current_frame="
            + ("tff" if woven else "progressive")
        )
    found = video_findings(_feed(lines), SPEC, 4.0, (320, 240))
    assert [(f.type, f.start, f.end) for f in found] == [("interlaced", 1.0, 3.0)]
    assert found[0].detail == {"frames": 50}


def test_frames_mpdecimate_dropped_are_duplicates_unless_frozen() -> None:
    times = [round(i * 0.04, 3) for i in range(100)]
    repeated = {t for t in times if 1.0 <= t < 1.2}
    lines = _frames("all", times) + _frames("kept", [t for t in times if t not in repeated])
    found = video_findings(_feed(lines), SPEC, 4.0, (320, 240))
    assert [(f.type, f.start, f.end, f.detail) for f in found] == [
        ("duplicateFrames", 1.0, 1.2, {"frames": 5})
    ]
    frozen = _feed([*lines, "[freezedetect @ 0x5] lavfi.freezedetect.freeze_start: 0.9",
                    "[freezedetect @ 0x5] lavfi.freezedetect.freeze_end: 1.3"])  # fmt: skip
    assert [f.type for f in video_findings(frozen, SPEC, 4.0, (320, 240))] == ["freeze"]


def test_a_gap_in_a_constant_frame_rate_is_dropped_frames() -> None:
    times = [round(i * 0.04, 3) for i in range(125) if not 50 <= i < 60]
    found = dropped_frame_findings(times, 2.0)
    assert [(f.start, f.end, f.detail) for f in found] == [(2.0, 2.4, {"frames": 10})]
    # Longer than the timestamp gap: a jump (reported by the timestamp check).
    assert dropped_frame_findings(times, 0.3) == []


def test_a_variable_frame_rate_has_no_dropped_frames() -> None:
    times, t = [], 0.0
    for i in range(100):
        times.append(round(t, 3))
        t += 0.04 if i % 3 else 0.1
    assert dropped_frame_findings(times, 2.0) == []


def test_a_new_picture_size_or_audio_format_is_dated_and_reported() -> None:
    parser = _feed(
        [
            "[graph 0 input from stream 0:0 @ 0x5] w:320 h:240 pixfmt:yuv420p tb:1/90000",
            "[graph_0_in_0_1 @ 0x5] tb:1/48000 samplefmt:fltp samplerate:48000 chlayout:stereo",
            *_frames("all", [0.0, 0.04]),
            "[Parsed_ebur128_3 @ 0x5] t: 1.9  TARGET:-23 LUFS    M: -18.8",
            # ffmpeg re-creates the graph: every input says its format again.
            "[graph 0 input from stream 0:0 @ 0x6] w:240 h:180 pixfmt:yuv420p tb:1/90000",
            "[graph_0_in_0_1 @ 0x6] tb:1/44100 samplefmt:fltp samplerate:44100 chlayout:mono",
            *_frames("all", [2.0, 2.04]),
            "[Parsed_ebur128_3 @ 0x6] t: 2.1  TARGET:-23 LUFS    M: -18.8",
        ]
    )
    video = video_findings(parser, SPEC, 4.0, (320, 240))
    assert [(f.type, f.start, f.detail) for f in video] == [
        ("resolutionChange", 2.0, {"from": "320x240", "to": "240x180"})
    ]
    audio = audio_findings(parser, SPEC, 4.0)
    assert [(f.type, f.start, f.detail) for f in audio] == [
        ("sampleRateChange", 2.0, {"from": 48000, "to": 44100}),
        ("channelLayoutChange", 2.0, {"from": "stereo", "to": "mono"}),
    ]


def test_samples_of_a_re_created_graph_never_go_back_in_time() -> None:
    parser = _feed([*_stats(1.8, **BUSY), *_stats(0.0, **BUSY), *_stats(2.0, **BUSY)])
    assert [s.time for s in parser.samples] == [1.8, 2.0]


def test_blockiness_from_its_own_branch_joins_the_picture_of_its_time() -> None:
    plain = {k: v for k, v in BUSY.items() if k != "lavfi.block"}
    lines = []
    for i in range(10):
        t = round(i * 0.2, 3)
        lines += _stats(t, **plain)
        lines += [
            f"[metadata@block @ 0x5] frame:{i}    pts:{i}    pts_time:{t:g}",
            f"[metadata@block @ 0x5] lavfi.block={90 if t >= 0.6 else 10}",
        ]
    found = video_findings(_feed(lines), SPEC, 2.0, (320, 240))
    assert [(f.type, f.start, f.end) for f in found] == [("blockiness", 0.6, 2.0)]


def test_cut_lines_are_skipped_not_fatal() -> None:
    parser = _feed(["[blackdetect @ 0x5] black_start:2 black_end:", "[metadata@stats @ 0x5] x="])
    assert parser.black == []
    assert parser.samples == []


def test_sample_colour_of_a_white_picture() -> None:
    white = Sample(0.0, {"lavfi.signalstats.YAVG": 235.0, "lavfi.signalstats.UAVG": 128.0,
                         "lavfi.signalstats.VAVG": 128.0})  # fmt: skip
    assert white.rgb() == "#ffffff"


def test_timestamps_going_back_or_jumping_are_found_per_stream() -> None:
    csv = "\n".join(
        [
            "0,1.400000,0.040000",
            "1,1.400000,0.021333",
            "0,1.440000,0.040000",
            "1,1.421333,0.021333",
            "0,1.480000,0.040000",
            "0,9.000000,0.040000",  # jumps 7.5 s
            "1,1.300000,0.021333",  # back
            "2,0.1,",  # a data stream: ignored
            "0,N/A,0.04",
        ]
    )
    found = timestamp_findings(csv, {0: "video", 1: "audio", 2: "data"}, 1.4, 2.0)
    # Problems less than a second apart are one finding.
    assert [(f.start, f.end, f.detail) for f in found] == [
        (0.0, 7.6, {"problems": ["backwards", "jump"], "streams": [0, 1], "count": 2}),
    ]
    steady = "\n".join(f"0,{t / 25:.6f},0.04" for t in range(100))
    assert timestamp_findings(steady, {0: "video"}, 0.0, 2.0) == []
    back = steady + "\n0,3.0,0.04"
    found = timestamp_findings(back, {0: "video"}, 0.0, 2.0)
    assert [(f.start, f.end, f.detail["problems"]) for f in found] == [(3.0, 3.96, ["backwards"])]


def test_code_hits_on_neighbouring_samples_are_one_finding_with_their_box() -> None:
    hits = [
        CodeHit("qrCode", "hello", 11.0, (0.25, 0.2, 0.4, 0.5)),
        CodeHit("qrCode", "hello", 12.0, (0.3, 0.25, 0.4, 0.5)),
        CodeHit("qrCode", "other", 12.0, (0.0, 0.0, 0.1, 0.1)),
        CodeHit("barcode", "4006381333931", 3.0, (0.1, 0.1, 0.5, 0.2), "EAN_13"),
    ]
    found = order(code_findings(hits, 1.0))
    assert [(f.type, f.start, f.end, f.detail) for f in found] == [
        ("barcode", 3.0, 4.0, {"text": "4006381333931", "format": "EAN_13"}),
        ("qrCode", 11.0, 13.0, {"text": "hello"}),
        ("qrCode", 12.0, 13.0, {"text": "other"}),
    ]
    assert found[1].area == pytest.approx((0.25, 0.2, 0.45, 0.55))


# --- verdict, report, rejection ----------------------------------------------


def test_the_verdict() -> None:
    black = Finding("black", 2.0, 3.0, 0.95)
    code = Finding("qrCode", 1.0, 2.0, 0.95)
    assert verdict([], ["black"]) == "pass"
    assert verdict([code], []) == "pass"  # what is shown is not a defect
    assert verdict([code], ["qrCode"]) == "fail"
    assert verdict([black, code], []) == "warn"
    assert verdict([black], ["silence", "black"]) == "fail"


def test_the_report_has_settings_findings_and_counts() -> None:
    spec = QualityTask.model_validate({"failOn": ["silence"], "blurThreshold": 10})
    findings = order([Finding("silence", 9.0, 10.5, 0.95), Finding("black", 2.0, 3.0, 0.95),
                      Finding("black", 5.0, 6.0, 0.95)])  # fmt: skip
    doc = report(spec, findings, ["black", "silence"])
    assert doc["version"] == 1
    assert doc["verdict"] == "fail"
    assert doc["settings"]["failOn"] == ["silence"]
    assert doc["settings"]["blurThreshold"] == 10
    assert doc["checked"] == ["black", "silence"]
    assert [f["type"] for f in doc["findings"]] == ["black", "black", "silence"]
    assert doc["summary"] == {"black": 2, "silence": 1}
    assert doc["findings"][0] == {
        "type": "black",
        "start": 2.0,
        "end": 3.0,
        "confidence": 0.95,
        "area": None,
        "detail": {},
    }


def test_the_rejection_names_the_failing_findings_on_one_line() -> None:
    findings = [Finding("black", 2.0, 3.04, 0.9), Finding("silence", 9.003, 10.5, 0.9)]
    message = rejection_message(findings, ["black", "silence"])
    assert message == "quality check failed (failOn): black@2.0-3.0, silence@9.0-10.5"
    many = [Finding("black", float(i), i + 1.0, 0.9) for i in range(12)]
    assert rejection_message(many, ["black"]).endswith("black@7.0-8.0, and 4 more")


def test_checks_follow_the_spec_and_the_streams() -> None:
    assert checks_to_run(SPEC, has_video=True, has_audio=True) == [
        t for t in FINDING_TYPES if t != "noAudio"
    ]
    audio_only = checks_to_run(SPEC, has_video=False, has_audio=True)
    assert "black" not in audio_only
    assert "noAudio" not in audio_only
    assert "timestamps" in audio_only
    assert "silence" in audio_only
    silent_film = checks_to_run(SPEC, has_video=True, has_audio=False)
    assert "noAudio" in silent_film
    assert "silence" not in silent_film
    only = QualityTask.model_validate({"checks": ["black", "silence"]})
    assert checks_to_run(only, has_video=True, has_audio=True) == ["black", "silence"]
    # What failOn names is checked even when checks leaves it out.
    rule = QualityTask.model_validate({"checks": ["black"], "failOn": ["loud"]})
    assert checks_to_run(rule, has_video=True, has_audio=True) == ["black", "loud"]


def test_the_spec_takes_camel_case_and_bounds_its_numbers() -> None:
    task = TaskSpec.model_validate(
        {"name": "qc", "quality": {"failOn": ["black", "noAudio"], "blackMinSeconds": 2}}
    )
    assert task.kind == "quality"
    assert task.quality is not None
    assert task.quality.black_min_seconds == 2
    with pytest.raises(ValueError, match="failOn"):
        QualityTask.model_validate({"failOn": ["nope"]})
    with pytest.raises(ValueError, match="sampleSeconds"):
        QualityTask.model_validate({"sampleSeconds": 0})
    assert QualityTask.needs_ml  # OpenCV: the worker-ml image
