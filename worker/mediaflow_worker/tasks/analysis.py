"""The ``analysis`` task: ffprobe metadata plus optional detectors, as JSON."""

from __future__ import annotations

import json
import re
from typing import Any

from mediaflow_api.tasks import AnalysisTask
from mediaflow_worker.ffmpeg.analysis import analysis_args
from mediaflow_worker.process import run_ffmpeg
from mediaflow_worker.tasks import OutputFile, TaskContext

_NUM = r"(-?[0-9.]+|-?inf|nan)"
_SCENE = re.compile(rf"\[scdet @ [^\]]+\] lavfi\.scd\.score: {_NUM}, lavfi\.scd\.time: {_NUM}")
_BLACK = re.compile(rf"\[blackdetect @ [^\]]+\] black_start:{_NUM} black_end:{_NUM}")
_SIL_START = re.compile(rf"\[silencedetect @ [^\]]+\] silence_start: {_NUM}")
_SIL_END = re.compile(rf"\[silencedetect @ [^\]]+\] silence_end: {_NUM}")
_LOUD = {
    "integrated": re.compile(rf"^\s+I:\s+{_NUM} LUFS"),
    "range": re.compile(rf"^\s+LRA:\s+{_NUM} LU$"),
    "truePeak": re.compile(rf"^\s+Peak:\s+{_NUM} dBFS"),
}


_DETECTOR_LINE = re.compile(
    r"\[(scdet|blackdetect|silencedetect|Parsed_ebur128_\d+) @|^\s+(I|LRA|Peak|Threshold|"
    r"LRA low|LRA high):|^\s+(Integrated loudness|Loudness range|True peak):"
)


def is_detector_line(line: str) -> bool:
    """Whether a log line carries a detector result (kept in full, unlike the
    rest of the log)."""
    return _DETECTOR_LINE.search(line) is not None


def _f(text: str) -> float | None:
    value = float(text)
    return None if value != value or value in (float("inf"), float("-inf")) else round(value, 3)


def parse_detectors(lines: list[str], duration: float) -> dict[str, Any]:
    """Detector results from ffmpeg's log lines (pure; unit tested)."""
    scenes = []
    black = []
    silence = []
    open_silence: float | None = None
    loudness: dict[str, float | None] = {}
    in_summary = False
    for line in lines:
        if m := _SCENE.search(line):
            scenes.append({"time": _f(m.group(2)), "score": _f(m.group(1))})
        elif m := _BLACK.search(line):
            start, end = float(m.group(1)), float(m.group(2))
            black.append(
                {"start": _f(m.group(1)), "end": _f(m.group(2)), "duration": round(end - start, 3)}
            )
        elif m := _SIL_START.search(line):
            open_silence = float(m.group(1))
        elif (m := _SIL_END.search(line)) and open_silence is not None:
            end = float(m.group(1))
            silence.append(
                {
                    "start": round(max(open_silence, 0.0), 3),
                    "end": round(end, 3),
                    "duration": round(end - max(open_silence, 0.0), 3),
                }
            )
            open_silence = None
        elif "Summary:" in line and "ebur128" in line:
            in_summary, loudness = True, {}
        elif in_summary:
            for key, pattern in _LOUD.items():
                if m := pattern.search(line):
                    loudness[key] = _f(m.group(1))
    if open_silence is not None and duration > open_silence:
        # Silence running to the end has no silence_end line.
        start = max(open_silence, 0.0)
        silence.append(
            {
                "start": round(start, 3),
                "end": round(duration, 3),
                "duration": round(duration - start, 3),
            }
        )
    return {"scenes": scenes, "black": black, "silence": silence, "loudness": loudness}


def required_encoders(spec: AnalysisTask) -> set[str]:
    """None: the detectors decode only."""
    return set()


def run(spec: AnalysisTask, ctx: TaskContext) -> list[OutputFile]:
    """``analysis.json``: probe data always, detector results when asked."""
    probe = ctx.probe
    result: dict[str, Any] = {"summary": probe.summary(), "probe": probe.raw}
    args = analysis_args(
        ctx.input_path,
        probe.demuxer,
        ctx.limits.max_pixels,
        has_video=probe.video is not None,
        has_audio=probe.audio is not None,
        scenes=spec.scene_threshold if spec.scene_changes else None,
        black=spec.black_min_seconds if spec.black else None,
        silence=(spec.silence_threshold_db, spec.silence_min_seconds) if spec.silence else None,
        loudness=spec.loudness,
    )
    if args is not None:
        lines = run_ffmpeg(
            args,
            label=ctx.task_name,
            expected_seconds=ctx.duration,
            deadline=ctx.deadline,
            keep=is_detector_line,
        )
        found = parse_detectors(lines, ctx.duration)
        if spec.scene_changes and probe.video is not None:
            result["scenes"] = found["scenes"]
        if spec.black and probe.video is not None:
            result["black"] = found["black"]
        if spec.silence and probe.audio is not None:
            result["silence"] = found["silence"]
        if spec.loudness and probe.audio is not None:
            result["loudness"] = found["loudness"]
    out = ctx.out_dir / "analysis.json"
    out.write_text(json.dumps(result, indent=2, sort_keys=True), encoding="utf-8")
    counts = {k: len(v) for k, v in result.items() if isinstance(v, list)}
    return [OutputFile(out, counts)]
