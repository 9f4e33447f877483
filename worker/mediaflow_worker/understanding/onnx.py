"""ONNX Runtime sessions for the understanding tasks.

CPU is the default and the tested path. ``MEDIAFLOW_ML_PROVIDERS`` (a
comma-separated list of ONNX Runtime execution providers, e.g.
``CUDAExecutionProvider,CPUExecutionProvider``) asks for others where the
installed onnxruntime has them; the ones it lacks are left out with a warning,
so a GPU setting on a CPU node still runs. ``MEDIAFLOW_ML_THREADS`` bounds the
threads of one session (default: ONNX Runtime's choice, one per core).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PROVIDERS_ENV = "MEDIAFLOW_ML_PROVIDERS"
THREADS_ENV = "MEDIAFLOW_ML_THREADS"
DEFAULT_PROVIDERS = ("CPUExecutionProvider",)


def wanted_providers(setting: str | None, available: list[str]) -> list[str]:
    """The providers to use: those of ``setting`` that ``available`` has, in
    order, CPU last as a fallback (pure)."""
    asked = [p.strip() for p in (setting or "").split(",") if p.strip()] or list(DEFAULT_PROVIDERS)
    chosen = [p for p in asked if p in available]
    for missing in (p for p in asked if p not in available):
        log.warning("ONNX Runtime has no %s here (it has %s): not used", missing, available)
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


def providers() -> list[str]:
    """The execution providers of this process (``MEDIAFLOW_ML_PROVIDERS``)."""
    import onnxruntime

    return wanted_providers(os.environ.get(PROVIDERS_ENV), onnxruntime.get_available_providers())


def session(model: Path) -> Any:
    """An ``onnxruntime.InferenceSession`` of ``model`` on ``providers()``."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    threads = os.environ.get(THREADS_ENV)
    if threads:
        options.intra_op_num_threads = int(threads)
    options.log_severity_level = 3  # warnings of the graph optimiser are noise here
    return onnxruntime.InferenceSession(str(model), sess_options=options, providers=providers())
