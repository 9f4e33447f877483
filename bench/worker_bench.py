"""Worker benchmark: what the worker costs on top of FFmpeg, whether one
decode feeding several outputs beats separate runs, and how fast the main
presets encode.

Every figure is the median of ``--runs`` timed runs (after one untimed
warm-up), compared with its baseline measured in the same run; the two
sides of a comparison alternate run by run, so that background load drifts
over both alike. Wall seconds are the figure; the CPU seconds of the
process tree (user + system, from ``RUSAGE_CHILDREN``) are kept beside
them, as they move much less with other work on the machine.

1. ``overhead``: ``mediaflow-worker run`` with one transcode task against
   plain ``ffmpeg`` with **the same arguments**: the command is built by the
   worker's own code (``tasks.transcode.prepare_command``) for the same
   file, so the two differ only by what the worker does around ffmpeg
   (Python start-up, sniffing, probing, the encoder check, describing the
   output, the manifest). Measured on a short and a longer clip: the
   overhead is mostly a fixed cost per run. ``settings`` compares that
   command with the hand-written one a user might type (no input
   restrictions, no VFR handling): the cost of the worker's settings, not of
   the worker.
2. ``overhead_minio`` (only with ``--minio``): ``mediaflow-worker job``
   against MinIO, against download + the same ffmpeg command + upload of
   the output with minio-py in one process.
3. ``ladder``: an HLS ladder of three renditions from one decode (``split``,
   what the worker does) against three separate ffmpeg runs.
4. ``snapshots``: five stills by five input-seeking runs against one decode
   with five outputs.
5. ``presets``: the real-time factor (media seconds per wall second) of the
   command the worker runs for each of the main built-in presets.
6. ``startup``: the fixed costs one by one (Python with the worker's
   imports, one ffprobe, ``ffmpeg -encoders``), to say where the overhead is.

Prints a table and merges the results into ``--json`` (default
``bench/results.json``) under the key ``"worker"``. Usage::

    python bench/worker_bench.py [--input FILE] [--runs 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mediaflow_api.job import Limits
from mediaflow_api.tasks import Rendition, TaskSpec
from mediaflow_worker.ffmpeg import adaptive_streaming, common, snapshot
from mediaflow_worker.ffmpeg.codecs import CONTAINERS
from mediaflow_worker.probe import last_video_frame, probe
from mediaflow_worker.runner import vet_input
from mediaflow_worker.tasks import TaskContext
from mediaflow_worker.tasks import transcode as transcode_task
from mediaflow_worker.tasks.registry import prepare

FFMPEG_QUIET = ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y"]
MAIN_PRESETS = ("h264-480p", "h264-720p", "h265-720p", "vp9-720p", "av1-720p", "audio-aac-128k")
WORKER = [sys.executable, "-m", "mediaflow_worker"]

Figure = dict[str, Any]


def make_input(directory: Path, seconds: int, name: str = "bench-input.mp4") -> Path:
    """A 1280x720 25 fps clip with stereo audio (testsrc2 + sine)."""
    path = directory / name
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


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _once(command: Callable[[], None]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the children) of one run of ``command``."""
    cpu, started = _children_cpu(), time.perf_counter()
    command()
    return time.perf_counter() - started, _children_cpu() - cpu


def timed(command: Callable[[], None], runs: int, warmup: bool = True) -> Figure:
    """Median wall and CPU seconds of ``runs`` executions (after one warm-up)."""
    if warmup:
        command()
    samples = [_once(command) for _ in range(runs)]
    return _figure([w for w, _ in samples], [c for _, c in samples])


def timed_pair(
    measured: Callable[[], None], baseline: Callable[[], None], runs: int
) -> tuple[Figure, Figure]:
    """Both commands ``runs`` times each, alternating (after one warm-up each)."""
    measured()
    baseline()
    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    for i in range(runs):
        # Alternate which goes first, so neither always follows the other.
        order = ((measured, ours), (baseline, theirs))
        for command, samples in order if i % 2 == 0 else reversed(order):
            samples.append(_once(command))
    return (
        _figure([w for w, _ in ours], [c for _, c in ours]),
        _figure([w for w, _ in theirs], [c for _, c in theirs]),
    )


def _figure(wall: list[float], cpu: list[float]) -> Figure:
    return {
        "median_s": statistics.median(wall),
        "cpu_median_s": statistics.median(cpu),
        "runs": len(wall),
        "samples_s": [round(s, 4) for s in wall],
        "cpu_samples_s": [round(s, 4) for s in cpu],
    }


def compare(measured: Figure, baseline: Figure, **extra: Any) -> Figure:
    """One comparison: the measured figure, its baseline and their ratios."""
    return {
        **extra,
        "median_s": measured["median_s"],
        "runs": measured["runs"],
        "baseline_median_s": baseline["median_s"],
        "ratio": measured["median_s"] / baseline["median_s"],
        "cpu_ratio": measured["cpu_median_s"] / baseline["cpu_median_s"],
        "difference_s": measured["median_s"] - baseline["median_s"],
        "measured": measured,
        "baseline": baseline,
    }


def run(args: list[str], env: dict[str, str] | None = None) -> Callable[[], None]:
    def go() -> None:
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, env=env)

    return go


def workflow_file(work: Path, preset: str, video_preset: str | None) -> Path:
    """A one-task Workflow file for ``mediaflow-worker run``."""
    path = work / f"bench-{preset}-{video_preset or 'default'}.yaml"
    video = f"        video: {{preset: {video_preset}}}\n" if video_preset else ""
    path.write_text(
        "apiVersion: mediaflow.dev/v1alpha1\nkind: Workflow\nmetadata: {name: bench}\n"
        f"spec:\n  tasks:\n    - name: web\n      transcode:\n        preset: {preset}\n{video}"
    )
    return path


def task_spec(preset: str, video_preset: str | None) -> TaskSpec:
    raw: dict[str, Any] = {"name": "web", "transcode": {"preset": preset}}
    if video_preset:
        raw["transcode"]["video"] = {"preset": video_preset}
    return TaskSpec.model_validate(raw)


def worker_command(src: Path, spec: TaskSpec, out: Path, work: Path) -> list[str]:
    """The ffmpeg command the worker runs for ``spec`` on ``src``, built by
    the worker's own code (the same probe, held-last-frame plan and flags)."""
    limits = Limits()
    probed = vet_input(src, limits)
    prepared = prepare(spec)
    out.parent.mkdir(parents=True, exist_ok=True)
    ctx = TaskContext(
        input_path=src,
        probe=probed,
        limits=limits,
        scratch=work,
        out_dir=out.parent,
        deadline=time.monotonic() + 3600,
        fetch_asset=lambda bucket, key: work,
        font=common.DEFAULT_FONT,
        task_name=spec.name,
    )
    tail = last_video_frame(probed, src) if probed.video is not None else None
    return transcode_task.prepare_command(prepared.resolved, ctx, out, tail)


def hand_written_480p(src: Path, out: Path) -> list[str]:
    """The h264-480p preset with veryfast as a user would type it."""
    info = probe(src, 8192 * 8192)
    assert info.video is not None
    w, h = common.fit_size(info.video.display_width, info.video.display_height, None, 480)
    return [
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
        str(out),
    ]


def bench_overhead(src: Path, work: Path, runs: int) -> Figure:
    """``mediaflow-worker run`` against its own ffmpeg command, run plainly."""
    spec = task_spec("h264-480p", "veryfast")
    worker = [
        *WORKER,
        "run",
        "-f",
        str(workflow_file(work, "h264-480p", "veryfast")),
        str(src),
        "-o",
        str(work / f"worker-out-{src.stem}"),
    ]
    plain = worker_command(src, spec, work / f"plain-{src.stem}" / "web.mp4", work)
    ours, theirs = timed_pair(run(worker), run(plain), runs)
    return compare(ours, theirs, input=src.name, baseline_command=" ".join(plain))


def bench_settings(src: Path, work: Path, runs: int) -> Figure:
    """The worker's ffmpeg command against a hand-written one (same preset)."""
    spec = task_spec("h264-480p", "veryfast")
    ours_cmd = worker_command(src, spec, work / "settings-worker" / "web.mp4", work)
    theirs_cmd = hand_written_480p(src, work / "settings-hand.mp4")
    ours, theirs = timed_pair(run(ours_cmd), run(theirs_cmd), runs)
    return compare(ours, theirs, baseline_command=" ".join(theirs_cmd))


def bench_overhead_minio(src: Path, work: Path, runs: int, endpoint: str) -> Figure:
    """``mediaflow-worker job`` against MinIO, against a script doing the same
    transfers around the same ffmpeg command (needs a running MinIO;
    credentials from MEDIAFLOW_S3_ACCESS_KEY / MEDIAFLOW_S3_SECRET_KEY)."""
    from minio import Minio

    from mediaflow_worker.config import storage_from_env

    env = {**os.environ, "MEDIAFLOW_S3_ENDPOINT": endpoint}
    settings = storage_from_env(env)
    client = Minio(
        settings.endpoint,
        access_key=settings.access_key,
        secret_key=settings.secret_key,
        secure=settings.secure,
        region=settings.region,
    )
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    client.make_bucket(bucket)
    etag = client.fput_object(bucket, "in/clip.mp4", str(src)).etag
    spec = task_spec("h264-480p", "veryfast")
    job = {
        "workflow": {"namespace": "bench", "name": "bench"},
        "input": {"bucket": bucket, "key": "in/clip.mp4", "etag": etag},
        "output": {"bucket": bucket, "dir": "out/"},
        "tasks": [spec.model_dump(by_alias=True, exclude_none=True)],
        "force": True,
    }
    job_env = {
        **env,
        "MEDIAFLOW_JOB": json.dumps(job),
        "MEDIAFLOW_TERMINATION_MESSAGE_PATH": str(work / "termination"),
        "MEDIAFLOW_SCRATCH_DIR": str(work),
    }
    local = work / "minio-plain" / "input.mp4"
    out = work / "minio-plain" / "web.mp4"
    command = worker_command(src, spec, out, work)
    command = [str(local) if a == str(src) else a for a in command]
    command = [f"file:{local}" if a == f"file:{src}" else a for a in command]

    def plain() -> None:
        client.fget_object(bucket, "in/clip.mp4", str(local))
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        client.fput_object(bucket, "plain/web.mp4", str(out))

    ours, theirs = timed_pair(run([*WORKER, "job"], job_env), plain, runs)
    return compare(ours, theirs, endpoint=endpoint, bucket=bucket)


def bench_ladder(src: Path, work: Path, runs: int) -> Figure:
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

    ours, theirs = timed_pair(run(single), run_separate, runs)
    result = compare(ours, theirs, renditions=[f"{p.width}x{p.height}" for p in planned])
    result["speedup"] = 1 / result["ratio"]
    return result


def bench_snapshots(src: Path, work: Path, runs: int) -> Figure:
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

    ours, theirs = timed_pair(run(one_pass), run_seeks, runs)
    result = compare(ours, theirs, snapshots=n)
    result["speedup"] = 1 / result["ratio"]
    return result


def bench_presets(src: Path, work: Path, runs: int, presets: list[str]) -> dict[str, Figure]:
    """Real-time factor of the worker's command for each preset (its own
    default encoder speed: these are the encodes users get)."""
    info = probe(src, 8192 * 8192)
    assert info.duration
    results = {}
    for name in presets:
        spec = task_spec(name, None)
        container = prepare(spec).resolved.container
        out = work / "presets" / name / f"web.{CONTAINERS[container][1]}"
        figure = timed(run(worker_command(src, spec, out, work)), runs, warmup=False)
        figure["media_s"] = info.duration
        figure["realtime_factor"] = info.duration / figure["median_s"]
        results[name] = figure
    return results


def bench_startup(src: Path, runs: int) -> dict[str, Figure]:
    """The fixed costs one at a time: where the overhead of a run goes."""
    imports = "import mediaflow_worker.cli, mediaflow_worker.local_mode"
    return {
        "python_bare": timed(run([sys.executable, "-c", "pass"]), runs),
        "python_worker_imports": timed(run([sys.executable, "-c", imports]), runs),
        "ffprobe_input": timed(
            run(
                ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(src)]
            ),
            runs,
        ),
        "ffmpeg_encoders": timed(run(["ffmpeg", "-hide_banner", "-encoders"]), runs),
    }


def machine() -> dict[str, Any]:
    """CPU, Python and FFmpeg of this machine."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=False)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "load_average": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "ffmpeg": ffmpeg.stdout.splitlines()[0] if ffmpeg.stdout else "unknown",
    }


def merge_json(path: Path, key: str, value: dict[str, Any]) -> None:
    """Write ``value`` under ``key`` in the JSON object at ``path``, keeping
    the other keys (other parts of ``make bench`` write them)."""
    doc: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = json.loads(path.read_text())
        except json.JSONDecodeError:
            loaded = None
        if isinstance(loaded, dict):
            doc = loaded
    doc[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")


def table(results: dict[str, Any]) -> list[tuple[str, float, str]]:
    rows: list[tuple[str, float, str]] = []
    for label, o in (("short", results["overhead"]), ("long", results.get("overhead_long"))):
        if not o:
            continue
        rows.append((f"worker run, 1 transcode ({o['input']}, {label})", o["median_s"], ""))
        rows.append(
            (
                "  plain ffmpeg, the worker's own arguments",
                o["baseline_median_s"],
                f"ratio {o['ratio']:.3f} (+{o['difference_s']:.3f} s; CPU {o['cpu_ratio']:.3f})",
            )
        )
    s = results["settings"]
    rows.append(("ffmpeg with the worker's arguments", s["median_s"], ""))
    rows.append(
        (
            "  ffmpeg, the same preset typed by hand",
            s["baseline_median_s"],
            f"ratio {s['ratio']:.3f}",
        )
    )
    m = results.get("overhead_minio")
    if m:
        rows.append(("worker job against MinIO", m["median_s"], ""))
        rows.append(
            ("  download + ffmpeg + upload", m["baseline_median_s"], f"ratio {m['ratio']:.3f}")
        )
    lad, snap = results["ladder"], results["snapshots"]
    rows.append(
        (f"HLS ladder {len(lad['renditions'])} renditions, one decode", lad["median_s"], "")
    )
    rows.append(
        (
            "  one run per rendition",
            lad["baseline_median_s"],
            f"one decode {lad['speedup']:.2f}x faster",
        )
    )
    rows.append((f"{snap['snapshots']} snapshots, one decode", snap["median_s"], ""))
    rows.append(
        (
            "  one seeking run per image",
            snap["baseline_median_s"],
            f"one decode {snap['speedup']:.2f}x faster",
        )
    )
    for name, p in results["presets"].items():
        rows.append(
            (
                f"preset {name} ({p['media_s']:.0f} s clip)",
                p["median_s"],
                f"{p['realtime_factor']:.2f}x real time",
            )
        )
    for name, f in results["startup"].items():
        rows.append((f"start-up: {name}", f["median_s"], ""))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=Path, help="input file (default: a generated clip)")
    parser.add_argument("--seconds", type=int, default=10, help="length of the generated clip")
    parser.add_argument(
        "--long-seconds",
        type=int,
        default=60,
        help="length of the longer clip the overhead is also measured on (0: skip)",
    )
    parser.add_argument(
        "--preset-seconds", type=int, default=4, help="length of the clip for the presets"
    )
    parser.add_argument(
        "--presets",
        default=",".join(MAIN_PRESETS),
        help="comma-separated built-in presets to time (empty: none)",
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measurement")
    parser.add_argument(
        "--minio", metavar="ENDPOINT", help="also measure 'job' against this MinIO endpoint"
    )
    parser.add_argument("--json", type=Path, default=Path("bench/results.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mediaflow-bench-") as tmp:
        work = Path(tmp)
        src = args.input or make_input(work, args.seconds)
        results: dict[str, Any] = {
            "finished_at": "",
            "input": str(args.input or f"generated 1280x720 25fps {args.seconds}s + AAC"),
            "runs": args.runs,
            "machine": machine(),
            "overhead": bench_overhead(src, work, args.runs),
        }
        if args.long_seconds and not args.input:
            long_src = make_input(work, args.long_seconds, "bench-long.mp4")
            results["overhead_long"] = bench_overhead(long_src, work, args.runs)
        results["settings"] = bench_settings(src, work, args.runs)
        if args.minio:
            results["overhead_minio"] = bench_overhead_minio(src, work, args.runs, args.minio)
        results["ladder"] = bench_ladder(src, work, args.runs)
        results["snapshots"] = bench_snapshots(src, work, args.runs)
        presets = [p for p in args.presets.split(",") if p]
        short = make_input(work, args.preset_seconds, "bench-presets.mp4")
        results["presets"] = bench_presets(short, work, args.runs, presets)
        results["startup"] = bench_startup(src, args.runs)
        results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    mach = results["machine"]
    print(
        f"input: {results['input']}; median of {args.runs} runs; {mach['cpus']} x "
        f"{mach['cpu_model']}; {mach['ffmpeg']}; load {mach['load_average'][0]:.2f}"
    )
    print(f"{'measurement':<60} {'median s':>9}  note")
    for name, seconds, note in table(results):
        print(f"{name:<60} {seconds:>9.3f}  {note}")
    merge_json(args.json, "worker", results)
    print(f"wrote {args.json} (key 'worker')")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
