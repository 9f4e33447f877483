"""The packages and models of the understanding tasks: where each model lies
inside its installed wheel, and the check that they are there.

Models are never downloaded: every path here is a file inside an installed
distribution, found through its metadata (``importlib.metadata``) so that
nothing heavy is imported to find it, and nothing is fetched when it is
missing; the task fails with ``ModelUnavailableError`` naming the package.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mediaflow_worker.errors import ModelUnavailableError

if TYPE_CHECKING:
    from mediaflow_worker.tasks.registry import PreparedTask

# What a user reads when a task's packages are missing: the lean image, or a
# local install without the extra.
INSTALL_HINT = (
    "run it with the worker-ml image (ghcr.io/mediaflow/worker-ml), or locally "
    "`pip install 'mediaflow[ml]'` and `pip install --no-deps silero-vad`"
)


@dataclass(frozen=True)
class PackagedModel:
    """One model file inside an installed distribution."""

    name: str  # what it is for, e.g. "text detection"
    distribution: str  # the PyPI name, e.g. "rapidocr"
    path_in_distribution: str  # relative to site-packages
    licence: str  # as checked by hand (docs/understanding.md)

    def path(self) -> Path:
        """The model file; ``ModelUnavailableError`` when the package or the
        file is missing (a broken or partial install)."""
        try:
            dist = importlib.metadata.distribution(self.distribution)
        except importlib.metadata.PackageNotFoundError as exc:
            raise ModelUnavailableError(
                f"the {self.name} model needs the Python package {self.distribution!r}, "
                f"which is not installed: {INSTALL_HINT}"
            ) from exc
        path = Path(str(dist.locate_file(self.path_in_distribution)))
        if not path.exists():
            raise ModelUnavailableError(
                f"the {self.name} model is missing from {self.distribution} "
                f"{dist.version} (expected {path}): {INSTALL_HINT}"
            )
        return path

    def version(self) -> str:
        """The installed version of the distribution."""
        return importlib.metadata.version(self.distribution)


TEXT_DETECTION = PackagedModel(
    "text detection (PP-OCRv6 det small)",
    "rapidocr",
    "rapidocr/models/PP-OCRv6_det_small.onnx",
    "Apache-2.0",
)
TEXT_RECOGNITION = PackagedModel(
    "text recognition (PP-OCRv6 rec small)",
    "rapidocr",
    "rapidocr/models/PP-OCRv6_rec_small.onnx",
    "Apache-2.0",
)
TEXT_ORIENTATION = PackagedModel(
    "text orientation (PP-OCR mobile v2 cls)",
    "rapidocr",
    "rapidocr/models/ch_ppocr_mobile_v2.0_cls_mobile.onnx",
    "Apache-2.0",
)
SPEECH_ACOUSTIC = PackagedModel(
    "speech recognition (CMU Sphinx US English acoustic model)",
    "pocketsphinx",
    "pocketsphinx/model/en-us/en-us",
    "BSD-2-Clause",
)
SPEECH_LANGUAGE = PackagedModel(
    "speech recognition (CMU Sphinx US English language model)",
    "pocketsphinx",
    "pocketsphinx/model/en-us/en-us.lm.bin",
    "BSD-2-Clause",
)
SPEECH_DICTIONARY = PackagedModel(
    "speech recognition (CMU pronouncing dictionary)",
    "pocketsphinx",
    "pocketsphinx/model/en-us/cmudict-en-us.dict",
    "BSD-2-Clause",
)
VOICE_ACTIVITY = PackagedModel(
    "voice activity (Silero VAD)",
    "silero-vad",
    "silero_vad/data/silero_vad.onnx",
    "MIT",
)

MODELS: tuple[PackagedModel, ...] = (
    TEXT_DETECTION,
    TEXT_RECOGNITION,
    TEXT_ORIENTATION,
    SPEECH_ACOUSTIC,
    SPEECH_LANGUAGE,
    SPEECH_DICTIONARY,
    VOICE_ACTIVITY,
)

# Python modules (import names) the understanding tasks use, by PyPI name.
MODULES: dict[str, str] = {
    "numpy": "numpy",
    "onnxruntime": "onnxruntime",
    "cv2": "opencv-python-headless",
    "rapidocr": "rapidocr",
    "pocketsphinx": "pocketsphinx",
}


def check_modules(modules: Iterable[str], *, task: str) -> None:
    """``ModelUnavailableError`` naming ``task`` and the first of ``modules``
    (import names) that is not installed; nothing is imported."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            package = MODULES.get(module, module)
            raise ModelUnavailableError(
                f"task {task!r} needs the Python package {package!r}, which this worker "
                f"does not have: {INSTALL_HINT}"
            )


def check_ml_tasks(tasks: Iterable[PreparedTask]) -> None:
    """``ModelUnavailableError`` for the first task whose type needs the
    ``mediaflow[ml]`` packages (``SpecModel.needs_ml``) when this worker lacks
    one of them (the lean image): before any task runs."""
    for prepared in tasks:
        if prepared.needs_ml:
            check_modules(MODULES, task=prepared.task.name)
            VOICE_ACTIVITY.path()
