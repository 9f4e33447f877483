# mediaflow worker-ml image: the worker image plus the `mediaflow[ml]` extra
# (NumPy, ONNX Runtime, OpenCV, RapidOCR, PocketSphinx) and the silero-vad
# voice-activity model, for the understanding tasks (quality, cover, ocr,
# speech, moderation). Every model ships inside these wheels: nothing is
# downloaded at run time. Same user, entrypoint and read-only-root contract as
# the worker image (it writes only to /scratch; HOME=/scratch).
#
#   docker build -f worker/Dockerfile -t ghcr.io/mediaflow/worker:X .
#   docker build -f worker/Dockerfile.ml --build-arg WORKER_IMAGE=ghcr.io/mediaflow/worker:X \
#       --build-arg SILERO_VAD_VERSION=<SILERO_VAD_VERSION of scripts/versions.env> \
#       -t ghcr.io/mediaflow/worker-ml:X .
#
# (from the repo root; scripts/images.sh passes both arguments, the version
# from scripts/versions.env.) The build context holds nothing: the worker
# image already carries mediaflow, whose metadata lists the extra's packages.
ARG WORKER_IMAGE=ghcr.io/mediaflow/worker:latest

FROM ${WORKER_IMAGE} AS build
ARG SILERO_VAD_VERSION
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The `ml` extra's requirements exactly as the installed mediaflow declares them
# (pyproject.toml is the one place they are written), less mediaflow itself;
# wheels only (no compiler in the image, none needed); into a prefix the
# final stage copies (under /scratch: the build runs as the worker's user, the
# only directory it may write). silero-vad without its dependencies: its metadata wants
# torch, its ONNX model does not. DL3013: the ranges are pyproject.toml's and
# silero-vad's pin is scripts/versions.env's.
# hadolint ignore=DL3013
RUN test -n "${SILERO_VAD_VERSION}" || { echo "SILERO_VAD_VERSION is not set" >&2; exit 1; } \
    && python3 -c 'import importlib.metadata as m; print("\n".join(r.split(";")[0] for r in m.requires("mediaflow") or [] if "extra == \"ml\"" in r and not r.startswith("mediaflow")))' \
        >/scratch/ml-requirements.txt \
    && cat /scratch/ml-requirements.txt \
    && grep -q '^onnxruntime' /scratch/ml-requirements.txt \
    && pip install --only-binary=:all: --prefix=/scratch/install -r /scratch/ml-requirements.txt \
    && pip install --only-binary=:all: --prefix=/scratch/install --no-deps "silero-vad==${SILERO_VAD_VERSION}" \
    # The voice-activity model is the one file of silero-vad that is used: its
    # TorchScript copies and the other ONNX variants are dropped.
    && find /scratch/install -path '*/silero_vad/data/*' -type f ! -name silero_vad.onnx ! -name '*.py' -delete

FROM ${WORKER_IMAGE}
# Owned by root like the rest of /usr/local (the build stage wrote as 10001).
COPY --from=build --chown=0:0 /scratch/install /usr/local
# The proof, as the worker's own user (it can write nowhere but /scratch and
# /tmp): every package imports, every model is present and loads (ONNX Runtime
# sessions, the PocketSphinx decoder), and nothing was written outside
# /scratch, which is left empty.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN python3 -m mediaflow_worker.understanding.selfcheck \
    && if find /tmp /var/tmp -mindepth 1 | grep .; then echo "written outside /scratch" >&2; exit 1; fi \
    && rm -rf /scratch/* /scratch/.[!.]*
