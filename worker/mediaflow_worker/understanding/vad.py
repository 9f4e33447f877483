"""Voice activity: where someone speaks, from Silero VAD's ONNX model (the
file inside the ``silero-vad`` wheel, run with ONNX Runtime; its torch code is
not used).

The model takes 512 new samples at 16 kHz (32 ms) with the last 64 samples of
the window before as context, plus its recurrent state (``state``, shape
``[2, 1, 128]``) and the sample rate (``sr``); it returns the probability that
the window holds speech and the next state. ``speech_ranges`` turns those
probabilities into time ranges (pure, unit-tested); ``voice_activity`` runs the
model over a whole signal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mediaflow_worker.understanding import packages
from mediaflow_worker.understanding.onnx import session

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

RATE = 16_000
WINDOW = 512  # samples per model call at 16 kHz
CONTEXT = 64  # samples of the window before, prepended
WINDOW_SECONDS = WINDOW / RATE
# Speech ends only when the probability falls this far below the threshold
# (hysteresis: a word's quiet consonant does not split a sentence).
HYSTERESIS = 0.15
# Each range is widened by this much on both sides: the model's onsets lag the
# first phoneme and decoders need a little silence around an utterance.
PAD_SECONDS = 0.1


def speech_probabilities(samples: npt.NDArray[Any], rate: int = RATE) -> list[float]:
    """The model's speech probability of each 32 ms window of ``samples``
    (int16 or float in -1..1, mono, 16 kHz); a last partial window is padded
    with silence."""
    import numpy as np

    if rate != RATE:
        raise ValueError(f"voice activity needs {RATE} Hz audio, not {rate} Hz")
    audio = np.asarray(samples)
    if audio.dtype == np.int16:
        audio = audio.astype(np.float32) / 32768.0
    audio = audio.astype(np.float32, copy=False)
    model = session(packages.VOICE_ACTIVITY.path())
    state = np.zeros((2, 1, 128), dtype=np.float32)
    sr = np.array(RATE, dtype=np.int64)
    context = np.zeros(CONTEXT, dtype=np.float32)
    probabilities: list[float] = []
    for offset in range(0, len(audio), WINDOW):
        chunk = audio[offset : offset + WINDOW]
        if len(chunk) < WINDOW:
            chunk = np.pad(chunk, (0, WINDOW - len(chunk)))
        window = np.concatenate([context, chunk])[np.newaxis, :]
        output, state = model.run(None, {"input": window, "state": state, "sr": sr})
        probabilities.append(float(output[0][0]))
        context = chunk[-CONTEXT:]
    return probabilities


def speech_ranges(
    probabilities: Sequence[float],
    *,
    window_seconds: float = WINDOW_SECONDS,
    threshold: float = 0.5,
    min_speech_seconds: float = 0.25,
    min_silence_seconds: float = 0.3,
    pad_seconds: float = PAD_SECONDS,
    duration: float | None = None,
) -> list[tuple[float, float]]:
    """Per-window speech probabilities -> speech ranges in seconds (pure).

    Speech starts at a window at or above ``threshold`` and ends after
    ``min_silence_seconds`` of windows below ``threshold - 0.15``; shorter
    pauses stay inside the range. Ranges shorter than ``min_speech_seconds``
    are dropped; the rest are widened by ``pad_seconds`` on both sides (within
    0 and ``duration``), and ranges that then touch are joined.
    """
    low = max(0.01, threshold - HYSTERESIS)
    end_of_audio = len(probabilities) * window_seconds if duration is None else duration
    raw: list[tuple[float, float]] = []
    start: float | None = None
    silence_since: float | None = None
    for index, probability in enumerate(probabilities):
        time = index * window_seconds
        if start is None:
            if probability >= threshold:
                start, silence_since = time, None
            continue
        if probability >= low:
            silence_since = None
        elif silence_since is None:
            silence_since = time
        elif time + window_seconds - silence_since >= min_silence_seconds:
            raw.append((start, silence_since))
            start, silence_since = None, None
    if start is not None:
        raw.append((start, silence_since if silence_since is not None else end_of_audio))
    ranges: list[tuple[float, float]] = []
    for begin, end in raw:
        if end - begin < min_speech_seconds:
            continue
        begin, end = max(0.0, begin - pad_seconds), min(end_of_audio, end + pad_seconds)
        if ranges and begin <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], end)
        else:
            ranges.append((begin, end))
    return [(round(begin, 3), round(end, 3)) for begin, end in ranges]


def split_long(
    ranges: Sequence[tuple[float, float]],
    probabilities: Sequence[float],
    *,
    max_seconds: float,
    window_seconds: float = WINDOW_SECONDS,
) -> list[tuple[float, float]]:
    """Ranges longer than ``max_seconds`` cut into pieces of at most that
    length, each cut at the least speech-like window of the piece's second
    half (a breath rather than a word, where there is one) (pure)."""
    pieces: list[tuple[float, float]] = []
    for begin, end in ranges:
        while end - begin > max_seconds:
            first = int((begin + max_seconds / 2) / window_seconds)
            last = max(first + 1, int((begin + max_seconds) / window_seconds))
            candidates = range(first, min(last, len(probabilities)))
            if candidates:
                cut_index = min(candidates, key=lambda i: probabilities[i])
                cut = round(cut_index * window_seconds + window_seconds / 2, 3)
            else:
                cut = round(begin + max_seconds, 3)
            if not begin < cut < end:
                cut = round(begin + max_seconds, 3)
            pieces.append((begin, cut))
            begin = cut
        pieces.append((begin, end))
    return pieces


def voice_activity(
    samples: npt.NDArray[np.int16] | npt.NDArray[np.float32],
    rate: int = RATE,
    *,
    threshold: float = 0.5,
    min_speech_seconds: float = 0.25,
    min_silence_seconds: float = 0.3,
) -> list[tuple[float, float]]:
    """Where ``samples`` (mono, 16 kHz) hold speech: ``(start, end)`` in
    seconds, rounded to ms."""
    probabilities = speech_probabilities(samples, rate)
    return speech_ranges(
        probabilities,
        threshold=threshold,
        min_speech_seconds=min_speech_seconds,
        min_silence_seconds=min_silence_seconds,
        duration=len(samples) / rate,
    )
