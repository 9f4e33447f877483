"""Worker benchmark: what the worker costs on top of FFmpeg, and whether one
decode feeding several outputs beats separate runs.

Measures, on the same input file (median of N runs each):

1. ``overhead``: ``mediaflow-worker run`` with one transcode task against the
   plain ``ffmpeg`` command with identical settings; ratio = worker / ffmpeg.
2. ``ladder``: an HLS ladder of three renditions from one decode (``split``,
   what the worker does) against three separate ffmpeg runs, one per rendition.
3. ``snapshots``: five stills by five input-seeking runs against one decode
   with five outputs (the worker uses one decode for inputs up to 60 s and
   seeking beyond, where decoding everything costs more than five seeks).

Prints a table and writes JSON. Usage::

    python bench/worker_bench.py [--input FILE] [--runs 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mediaflow_api.tasks import Rendition
from mediaflow_worker.ffmpeg import adaptive_streaming, common, snapshot
from mediaflow_worker.probe import probe

FFMPEG_QUIET = ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y"]


def make_input(directory: Path, seconds: int) -> Path:
    """A 1280x720 25 fps clip with stereo audio (testsrc2 + sine)."""
    path = directory / "bench-input.mp4"
    subprocess.run(
        [
            *FFMPEG_QUIET,
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=s=1280x720:r=25:d={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=f=440:d={seconds}:sample_rate=48000",
            "-ac",
            "2",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "20",
            "-c:a",
            "aac",
            "-shortest",
            str(path),
        ],
        check=True,
    )
    return path


def timed(command: Callable[[], None], runs: int) -> list[float]:
    """Wall seconds of ``runs`` executions (after one warm-up run)."""
    command()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        command()
        samples.append(time.perf_counter() - started)
    return samples


def run(args: list[str]) -> Callable[[], None]:
    def go() -> None:
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)

    return go


def bench_overhead(src: Path, work: Path, runs: int) -> dict[str, object]:
    workflow = work / "bench-workflow.yaml"
    workflow.write_text(
        "apiVersion: mediaflow.dev/v1alpha1\nkind: Workflow\nmetadata: {name: bench}\n"
        "spec:\n  tasks:\n    - name: web\n      transcode:\n        preset: h264-480p\n"
        "        video: {preset: veryfast}\n"
    )
    info = probe(src, 8192 * 8192)
    assert info.video is not None
    w, h = common.fit_size(info.video.display_width, info.video.display_height, None, 480)
    worker = [
        sys.executable,
        "-m",
        "mediaflow_worker",
        "run",
        "-f",
        str(workflow),
        str(src),
        "-o",
        str(work / "worker-out"),
    ]
    # The same settings as the h264-480p preset with veryfast, written by hand.
    plain = [
        *FFMPEG_QUIET,
        "-i",
        str(src),
        "-filter_complex",
        f"[0:V:0]scale={w}:{h},setsar=1,format=yuv420p[v]",
        "-map",
        "[v]",
        "-map",
        "0:a:0",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "23",
        "-maxrate",
        "1500000",
        "-bufsize",
        "3000000",
        "-g",
        "250",
        "-c:a",
        "aac",
        "-b:a",
        "128000",
        "-movflags",
        "+faststart",
        str(work / "plain.mp4"),
    ]
    worker_s = timed(run(worker), runs)
    plain_s = timed(run(plain), runs)
    return {
        "worker_median_s": statistics.median(worker_s),
        "ffmpeg_median_s": statistics.median(plain_s),
        "ratio": statistics.median(worker_s) / statistics.median(plain_s),
        "worker_samples": worker_s,
        "ffmpeg_samples": plain_s,
    }


def bench_ladder(src: Path, work: Path, runs: int) -> dict[str, object]:
    info = probe(src, 8192 * 8192)
    assert info.video is not None
    rungs = [
        Rendition(height=h, videoBitrate=b)
        for h, b in ((720, "2800k"), (480, "1400k"), (360, "800k"))
    ]
    planned = adaptive_streaming.plan_ladder(
        rungs, (info.video.display_width, info.video.display_height)
    )

    def ladder(parts: list[adaptive_streaming.PlannedRendition], out: Path) -> list[str]:
        out.mkdir(parents=True, exist_ok=True)
        for i in range(len(parts)):
            (out / f"stream_{i}").mkdir(exist_ok=True)
        return adaptive_streaming.ladder_args(
            src,
            info.demuxer,
            8192 * 8192,
            parts,
            fmt="hls",
            codec="h264",
            preset="veryfast",
            segment_seconds=4,
            has_audio=info.audio is not None,
            out_dir=out,
        )

    single = ladder(planned, work / "single")
    separate = [ladder([p], work / f"sep{i}") for i, p in enumerate(planned)]

    def run_separate() -> None:
        for args in separate:
            subprocess.run(args, check=True, stdout=subprocess.DEVNULL)

    single_s = timed(run(single), runs)
    separate_s = timed(run_separate, runs)
    return {
        "renditions": [f"{p.width}x{p.height}" for p in planned],
        "single_decode_median_s": statistics.median(single_s),
        "separate_runs_median_s": statistics.median(separate_s),
        "speedup": statistics.median(separate_s) / statistics.median(single_s),
        "single_samples": single_s,
        "separate_samples": separate_s,
    }


def bench_snapshots(src: Path, work: Path, runs: int) -> dict[str, object]:
    info = probe(src, 8192 * 8192)
    assert info.video is not None
    assert info.duration
    times = snapshot.snapshot_times(info.duration, info.video.fps, count=5)
    size = common.fit_size(info.video.display_width, info.video.display_height, 320, None)
    seeks = [
        snapshot.snapshot_args(
            src, info.demuxer, 8192 * 8192, t, size, "jpeg", work / f"seek{i}.jpg"
        )
        for i, t in enumerate(times)
    ]
    n = len(times)
    graph = (
        f"[0:V:0]split={n}"
        + "".join(f"[s{i}]" for i in range(n))
        + ";"
        + ";".join(
            f"[s{i}]trim=start={t:.3f},setpts=PTS-STARTPTS,scale={size[0]}:{size[1]}[o{i}]"
            for i, t in enumerate(times)
        )
    )
    one_pass = [*FFMPEG_QUIET, "-i", str(src), "-filter_complex", graph]
    for i in range(n):
        one_pass += ["-map", f"[o{i}]", "-frames:v", "1", "-q:v", "3", str(work / f"pass{i}.jpg")]

    def run_seeks() -> None:
        for args in seeks:
            subprocess.run(args, check=True, stdout=subprocess.DEVNULL)

    seek_s = timed(run_seeks, runs)
    pass_s = timed(run(one_pass), runs)
    return {
        "snapshots": n,
        "seek_per_image_median_s": statistics.median(seek_s),
        "single_decode_median_s": statistics.median(pass_s),
        "speedup_of_seeking": statistics.median(pass_s) / statistics.median(seek_s),
        "seek_samples": seek_s,
        "single_samples": pass_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=Path, help="input file (default: a generated clip)")
    parser.add_argument("--seconds", type=int, default=10, help="length of the generated clip")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measurement")
    parser.add_argument("--json", type=Path, default=Path(".mediaflow/bench/worker.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mediaflow-bench-") as tmp:
        work = Path(tmp)
        src = args.input or make_input(work, args.seconds)
        results = {
            "input": str(args.input or f"generated 1280x720 25fps {args.seconds}s + AAC"),
            "runs": args.runs,
            "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
            "overhead": bench_overhead(src, work, args.runs),
            "ladder": bench_ladder(src, work, args.runs),
            "snapshots": bench_snapshots(src, work, args.runs),
        }
    o, lad, snap = results["overhead"], results["ladder"], results["snapshots"]
    rows = [
        ("worker run (1 transcode)", o["worker_median_s"], ""),
        ("plain ffmpeg, same settings", o["ffmpeg_median_s"], f"ratio {o['ratio']:.2f}"),
        (
            f"HLS ladder {len(lad['renditions'])} renditions, one decode",
            lad["single_decode_median_s"],
            "",
        ),
        (
            "HLS ladder, one run per rendition",
            lad["separate_runs_median_s"],
            f"one decode {lad['speedup']:.2f}x faster",
        ),
        (
            f"{snap['snapshots']} snapshots, one seeking run per image",
            snap["seek_per_image_median_s"],
            "",
        ),
        (
            f"{snap['snapshots']} snapshots, one decode (worker, input <= 60 s)",
            snap["single_decode_median_s"],
            f"one decode {1 / snap['speedup_of_seeking']:.2f}x faster",
        ),
    ]
    print(f"input: {results['input']}; median of {args.runs} runs")
    print(f"{'measurement':<56} {'median s':>9}  note")
    for name, seconds, note in rows:
        print(f"{name:<56} {seconds:>9.3f}  {note}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
