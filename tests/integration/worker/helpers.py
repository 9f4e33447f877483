"""Helpers for the worker's integration tests: clip generation, running the
worker, and ffprobe checks of what it wrote."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

WORKER = [sys.executable, "-m", "mediaflow_worker"]


@dataclass(frozen=True)
class Clip:
    """A generated test clip and what it should look like to a player."""

    path: Path
    display: tuple[int, int] | None  # None: no video
    duration: float
    has_audio: bool
    fps: float


def make_clip(
    directory: Path,
    name: str,
    *,
    size: tuple[int, int] = (320, 240),
    fps: str = "25",
    duration: float = 2.0,
    video: bool = True,
    audio: bool = True,
    container: str = "mp4",
    rotate: int | None = None,
) -> Clip:
    """Generate a small clip with lavfi (testsrc2 + sine)."""
    path = directory / f"{name}.{container}"
    args = ["ffmpeg", "-hide_banner", "-v", "error", "-y"]
    if video:
        args += ["-f", "lavfi", "-i", f"testsrc2=s={size[0]}x{size[1]}:r={fps}:d={duration}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=f=440:d={duration}:sample_rate=48000"]
    odd = size[0] % 2 or size[1] % 2
    if video:
        if container == "webm":
            args += ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"]
        else:
            # 4:4:4 lets odd sizes through untouched (4:2:0 would be refused).
            args += ["-c:v", "libx264", "-preset", "ultrafast"]
            args += ["-pix_fmt", "yuv444p" if odd else "yuv420p"]
    if audio:
        args += ["-c:a", "libopus" if container == "webm" else "aac"]
    plain = path.with_name(f"{name}.plain.{container}") if rotate is not None else path
    args += [str(plain)]
    subprocess.run(args, check=True, timeout=120)
    if rotate is not None:
        # ffmpeg 5.1 writes the display matrix from the rotate tag only when
        # stream-copying (phones write the same matrix).
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-y",
                "-i",
                str(plain),
                "-map",
                "0",
                "-c",
                "copy",
                "-metadata:s:v:0",
                f"rotate={rotate}",
                str(path),
            ],
            check=True,
            timeout=60,
        )
        plain.unlink()
    display = None
    if video:
        display = (size[1], size[0]) if rotate in (90, 270) else size
    num, _, den = fps.partition("/")
    return Clip(path, display, duration, audio, float(num) / float(den or 1))


def make_png(path: Path, color: str, size: tuple[int, int]) -> Path:
    """A one-colour RGBA PNG (``color`` as lavfi takes it, e.g. ``red@0.6``)."""
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"color=c={color}:s={size[0]}x{size[1]},format=rgba",
            "-frames:v",
            "1",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path


def ffprobe(path: Path, *extra: str) -> dict[str, Any]:
    """ffprobe's JSON for a file the worker wrote."""
    done = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_format",
            "-show_streams",
            *extra,
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    info: dict[str, Any] = json.loads(done.stdout)
    return info


def video_stream(info: dict[str, Any]) -> dict[str, Any] | None:
    """The first video stream (cover art excluded)."""
    streams: list[dict[str, Any]] = info["streams"]
    for s in streams:
        if s["codec_type"] == "video" and not s.get("disposition", {}).get("attached_pic"):
            return s
    return None


def count_frames(path: Path) -> int:
    """Number of video frames (decoded)."""
    info = ffprobe(path, "-count_frames", "-select_streams", "v:0")
    return int(info["streams"][0]["nb_read_frames"])


def write_workflow(directory: Path, tasks: list[dict[str, Any]], name: str = "test") -> Path:
    """A Workflow manifest holding ``tasks``."""
    doc = {
        "apiVersion": "mediaflow.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "trigger": {"bucket": "uploads", "prefix": "incoming/"},
            "output": {"bucket": "media", "prefix": "processed/"},
            "tasks": tasks,
        },
    }
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# Runs a command in new user and network namespaces: only a loopback
# interface that is down, no DNS. What "models ship in packages" is tested
# with: a download attempt fails there.
NO_NETWORK = ("unshare", "--map-root-user", "--net")


def run_local(
    workflow: Path,
    input_file: Path,
    out: Path,
    *extra: str,
    timeout: float = 300,
    network: bool = True,
) -> subprocess.CompletedProcess[str]:
    """``mediaflow-worker run -f workflow INPUT -o OUT``; ``network=False``
    runs it without network access (``NO_NETWORK``)."""
    prefix = [] if network else list(NO_NETWORK)
    return subprocess.run(
        [*prefix, *WORKER, "run", "-f", str(workflow), str(input_file), "-o", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "MEDIAFLOW_SCRATCH_DIR": str(out.parent)},
        check=False,
    )


# Runs a command and writes the peak resident memory of its process tree (the
# largest of the waited-for descendants: the worker, ffprobe, ffmpeg) in KiB.
_MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(done.returncode)
"""


def run_local_measured(
    workflow: Path, input_file: Path, out: Path, *extra: str, timeout: float = 300
) -> tuple[subprocess.CompletedProcess[str], int]:
    """``run_local`` plus the peak RSS (KiB) of any process it started."""
    report = out.parent / f"{out.name}.maxrss"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _MEASURE,
            str(report),
            *WORKER,
            "run",
            "-f",
            str(workflow),
            str(input_file),
            "-o",
            str(out),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "MEDIAFLOW_SCRATCH_DIR": str(out.parent)},
        check=False,
    )
    return done, int(report.read_text())


def hls_segments(playlist: Path) -> int:
    """Number of media segments in an HLS media playlist."""
    return sum(1 for line in playlist.read_text().splitlines() if line.startswith("#EXTINF"))


# --- the documented ``mediaflow-worker run`` commands --------------------------

REPO = Path(__file__).resolve().parents[3]
# A command as the docs show it: inline (`mediaflow-worker run -f …`) or on a
# console line ($ mediaflow-worker run -f …).
_DOCUMENTED_RUN = re.compile(r"(?:^\$ |`)(mediaflow-worker run -f [^`\n]+)", re.MULTILINE)


def documented_run_commands(doc: Path) -> list[str]:
    """Every ``mediaflow-worker run -f …`` command shown in ``doc``, verbatim."""
    return [m.strip() for m in _DOCUMENTED_RUN.findall(doc.read_text(encoding="utf-8"))]


def documented_input(argv: list[str]) -> str:
    """The input-file argument of a documented ``mediaflow-worker run`` command,
    as the CLI's own parser reads it (so a flag order change cannot fool it)."""
    from mediaflow_worker.cli import build_parser

    assert argv[:2] == ["mediaflow-worker", "run"], argv
    parsed = build_parser().parse_args(argv[1:])
    token: str = parsed.input
    assert argv.count(token) == 1, f"the input {token!r} appears more than once in {argv}"
    return token


def checkout_view(tmp: Path) -> Path:
    """A directory that looks like the repository root (one symlink per
    top-level entry), so documented relative paths (``examples/…``) resolve
    as in the checkout while ``-o out/`` lands in ``tmp``, not in the repo."""
    root = tmp / "checkout"
    root.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in {"out", ".git"}:
            (root / entry.name).symlink_to(entry)
    return root


def run_documented(
    argv: list[str], cwd: Path, *, timeout: float = 170
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as a user's shell would: ``mediaflow-worker`` found on PATH
    (this virtual environment's ``bin`` first), from ``cwd``."""
    bindir = Path(sys.executable).parent
    path = f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"
    exe = shutil.which(argv[0], path=path)
    missing = f"{argv[0]} is not installed in {bindir} (pip install -e '.[worker]')"
    assert exe is not None, missing
    assert Path(exe).parent == bindir, missing
    return subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PATH": path, "MEDIAFLOW_SCRATCH_DIR": str(cwd.parent)},
        check=False,
    )
