"""helm, the pinned build, run against the local stack: one way for every test."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .binaries import binary

CHART = Path(__file__).resolve().parents[2] / "charts" / "mediaflow"


def run_helm(
    *args: str,
    kubeconfig: Path | None = None,
    namespace: str | None = None,
    timeout: float = 60,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``helm ARGS`` (with ``--kubeconfig``/``-n`` when given); with ``check``,
    a non-zero exit raises with helm's own output."""
    argv = [binary("helm")]
    if kubeconfig is not None:
        argv += ["--kubeconfig", str(kubeconfig)]
    if namespace is not None:
        argv += ["-n", namespace]
    done = subprocess.run(
        [*argv, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done
