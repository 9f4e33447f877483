"""Media with known content for the ``moderation`` task, and a classifier
model that is ours to use.

- ``colour_classifier``: a tiny ONNX image classifier written here with the
  ``onnx`` package (global average pool -> a fixed matrix -> softmax over
  red, green, blue): a red frame is "red". It stands in for the user's model
  in the classifier hook's tests; no third-party weights.
- ``colour_clip``: one-colour video segments of known colours and times.
- ``text_clip``: burned-in lines shown at known times (drawtext).

Speech with known words comes from ``tests/support/understanding/speech.py``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

COLOURS = ("red", "green", "blue")
# Sharpness of the classifier: softmax(SCALE * mean colour); a pure colour
# scores about 1.0, grey 1/3 for each.
SCALE = 10.0


def colour_classifier(
    path: Path,
    *,
    size: tuple[int, int] = (32, 32),
    layout: str = "NCHW",
    labels: int = 3,
) -> Path:
    """Write an ONNX classifier of mean colour to ``path``: input ``image``
    (float, 1x3xHxW or 1xHxWx3 RGB 0-1), output ``scores`` (1 x ``labels``
    probabilities; labels past the third score nothing)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    width, height = size
    shape = [1, 3, height, width] if layout == "NCHW" else [1, height, width, 3]
    nodes = []
    source = "image"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]))
        source = "nchw"
    weights = np.zeros((3, labels), dtype=np.float32)
    weights[:3, :3] = np.eye(3, dtype=np.float32) * SCALE
    if labels > 3:
        weights[:, 3:] = -SCALE  # extra labels never win
    nodes += [
        helper.make_node("GlobalAveragePool", [source], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "weights"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["scores"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "mean-colour",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, labels])],
        initializer=[numpy_helper.from_array(weights, "weights")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # what the installed ONNX Runtime reads
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


@dataclass(frozen=True)
class Span:
    """Something the clip shows or says from ``start`` to ``end`` seconds."""

    start: float
    end: float
    content: str


def colour_clip(
    path: Path, colours: Sequence[tuple[str, float]], *, size: tuple[int, int] = (160, 120)
) -> tuple[Path, list[Span]]:
    """A silent H.264 clip of one-colour segments ``(colour, seconds)`` in
    order, and when each colour shows."""
    args = ["ffmpeg", "-hide_banner", "-v", "error", "-y"]
    spans = []
    start = 0.0
    for colour, seconds in colours:
        args += ["-f", "lavfi", "-i", f"color=c={colour}:s={size[0]}x{size[1]}:r=25:d={seconds}"]
        spans.append(Span(start, start + seconds, colour))
        start += seconds
    joined = "".join(f"[{i}:v]" for i in range(len(colours)))
    args += ["-filter_complex", f"{joined}concat=n={len(colours)}:v=1:a=0[v]", "-map", "[v]"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(args, check=True, timeout=120)
    return path, spans


def _font() -> str:
    from mediaflow_worker.config import font_file

    return font_file()


def text_clip(
    path: Path,
    lines: Sequence[Span],
    *,
    duration: float,
    size: tuple[int, int] = (640, 360),
) -> tuple[Path, list[Span]]:
    """A silent clip with each line's text burned in (large, white on dark
    grey) from its start to its end; the text goes through files, never
    inline in the filtergraph."""
    directory = path.parent
    filters = []
    for i, line in enumerate(lines):
        text_file = directory / f"{path.stem}.line{i}.txt"
        text_file.write_text(line.content, encoding="utf-8")
        filters.append(
            f"drawtext=fontfile={_font()}:textfile={text_file}:fontsize=40:fontcolor=white:"
            f"x=(w-text_w)/2:y=(h-text_h)/2:enable='between(t,{line.start},{line.end - 0.001})'"
        )
    args = ["ffmpeg", "-hide_banner", "-v", "error", "-y", "-f", "lavfi"]
    args += ["-i", f"color=c=0x202020:s={size[0]}x{size[1]}:r=25:d={duration}"]
    args += ["-vf", ",".join(filters) or "null"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(args, check=True, timeout=120)
    return path, list(lines)
