"""The worker-ml image's proof that it can run the understanding tasks.

``python -m mediaflow_worker.understanding.selfcheck`` imports every package
of the ``mediaflow[ml]`` extra, locates every packaged model (``packages``),
opens each ONNX model in an ONNX Runtime session and loads the speech
recogniser's models: what a task would do first, with no network and without
writing anywhere. ``worker/Dockerfile.ml`` runs it at build time (as the
worker image proves that FFmpeg runs), so an image whose wheels lack a model
or a shared library never gets built. It prints one line per model.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass

from mediaflow_worker.understanding import onnx, packages


@dataclass(frozen=True)
class ModelFacts:
    """What ``--models`` tables show about one packaged model."""

    name: str
    distribution: str
    version: str
    file: str
    size_mb: float
    licence: str


def model_facts() -> list[ModelFacts]:
    """Package, version, file and size of every packaged model; raises
    ``ModelUnavailableError`` for the first one missing. A model that is a
    directory (the acoustic model) counts the files in it."""
    facts = []
    for model in packages.MODELS:
        path = model.path()
        size = (
            sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            if path.is_dir()
            else path.stat().st_size
        )
        facts.append(
            ModelFacts(
                name=model.name,
                distribution=model.distribution,
                version=model.version(),
                file=model.path_in_distribution,
                size_mb=round(size / 1e6, 1),
                licence=model.licence,
            )
        )
    return facts


def check() -> list[str]:
    """Import the ML packages and load every model; one line per model.
    Raises on the first failure (``ModelUnavailableError``, an ImportError of
    a missing shared library, an ONNX Runtime error of a damaged model)."""
    packages.check_modules(packages.MODULES, task="selfcheck")
    for module in packages.MODULES:
        importlib.import_module(module)
    lines = []
    for model, facts in zip(packages.MODELS, model_facts(), strict=True):
        path = model.path()
        if path.suffix == ".onnx":
            session = onnx.session(path)
            detail = f"ONNX on {session.get_providers()[0]}"
        else:
            detail = "present"
        where = f"{facts.distribution} {facts.version} {facts.file}"
        lines.append(f"{where} {facts.size_mb} MB: {detail}")
    lines.append(_speech_decoder())
    return lines


def _speech_decoder() -> str:
    """Build a PocketSphinx decoder from the packaged US-English models (the
    one model set that is not ONNX)."""
    from pocketsphinx import Config, Decoder

    config = Config(
        hmm=str(packages.SPEECH_ACOUSTIC.path()),
        lm=str(packages.SPEECH_LANGUAGE.path()),
        dict=str(packages.SPEECH_DICTIONARY.path()),
        loglevel="FATAL",
    )
    Decoder(config)
    return "pocketsphinx decoder: loaded"


def main() -> int:
    """Print the check's lines; exit 1 with the reason on the first failure."""
    try:
        lines = check()
    except Exception as exc:  # the build log shows what is missing
        print(f"worker-ml self-check failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
