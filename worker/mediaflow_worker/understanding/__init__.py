"""Content understanding: the machinery the ``quality``, ``cover``, ``ocr``,
``speech`` and ``moderation`` tasks share.

These tasks need the ``mediaflow[ml]`` extra (NumPy, ONNX Runtime, OpenCV,
RapidOCR, PocketSphinx, the silero-vad model), which only the worker-ml image
carries. Modules here import those packages lazily or are only imported by the
task modules that need them, so the lean worker still loads; ``packages``
tells the lean worker's user which image a task needs.

- ``packages``: where each model lies inside its installed package; the check
  that they are present (never a download).
- ``frames``: sampled video frames as NumPy arrays, streamed from ffmpeg.
- ``pcm``: the audio as 16 kHz mono samples.
- ``cues``: timed text (merged detections, WebVTT and SRT).
- ``keywords``: matching user keyword lists in recognised text.
- ``onnx``: ONNX Runtime sessions (CPU by default; a GPU provider on request).
"""

import os

# ONNX Runtime writes a telemetry device id under $HOME when it is imported
# unless told not to; a worker sends nothing anywhere and writes only its scratch.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
