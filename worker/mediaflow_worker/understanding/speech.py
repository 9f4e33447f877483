"""The ``speech`` task: speech to text with PocketSphinx (US English models
inside its wheel), decoded per voice segment found by Silero VAD.

Decoding only the voice segments keeps word times right (each segment is
decoded from its own start) and keeps silence and music from being turned
into words. A word's confidence is the decoder's posterior probability
(PocketSphinx computes it in its log base and the Python binding returns it
as 0..1); a segment's is the mean over its words.

Files: ``speech.json`` (see docs/understanding.md, "speech"),
``transcript.txt`` (a segment a line), ``speech.vtt`` / ``speech.srt``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mediaflow_api.tasks import SpeechTask
from mediaflow_worker.errors import ProcessTimeoutError
from mediaflow_worker.tasks import OutputFile, TaskContext
from mediaflow_worker.understanding import packages
from mediaflow_worker.understanding.cues import Cue, srt, webvtt
from mediaflow_worker.understanding.keywords import KeywordMatcher, normalise

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

VERSION = 1
RATE = 16_000
# PocketSphinx's default feature frame rate (frames per second).
FRAME_RATE = 100
# A voice segment longer than this is decoded in pieces (cut at the least
# speech-like moment): one utterance's search grows with its length.
MAX_UTTERANCE_SECONDS = 30.0
# Decoder tokens that are not words: silence, noise and sentence marks.
_FILLER = re.compile(r"^(<.*>|\[.*\]|\+\+.*\+\+|\(null\))$", re.IGNORECASE)
# Alternative pronunciations in the dictionary: "the(2)" is the word "the".
_VARIANT = re.compile(r"\(\d+\)$")
# Keyword hits listed in the manifest entry (all are in speech.json).
INFO_HITS = 5


@dataclass(frozen=True)
class Word:
    """A recognised word, ``start``/``end`` in seconds of the input."""

    start: float
    end: float
    word: str
    confidence: float


@dataclass(frozen=True)
class SpeechSegment:
    """The words of one voice segment."""

    start: float
    end: float
    text: str
    confidence: float
    words: tuple[Word, ...]


def spoken_word(token: str) -> str | None:
    """The word a decoder token stands for, or None for a filler (pure)."""
    if _FILLER.match(token):
        return None
    return _VARIANT.sub("", token) or None


def decoder() -> Any:
    """A PocketSphinx decoder on the US English models inside its wheel
    (explicit paths: nothing is looked up elsewhere or downloaded), quiet."""
    from pocketsphinx import Decoder

    return Decoder(
        hmm=str(packages.SPEECH_ACOUSTIC.path()),
        lm=str(packages.SPEECH_LANGUAGE.path()),
        dict=str(packages.SPEECH_DICTIONARY.path()),
        samprate=float(RATE),
        loglevel="FATAL",
    )


def decode_range(
    engine: Any, samples: npt.NDArray[np.int16], start: float, end: float
) -> SpeechSegment | None:
    """The words in ``samples[start:end]`` (seconds), times relative to the
    whole signal; None when the decoder finds no word there."""
    first, last = int(start * RATE), int(end * RATE)
    engine.start_utt()
    engine.process_raw(samples[first:last].tobytes(), full_utt=True)
    engine.end_utt()
    words: list[Word] = []
    for seg in engine.seg():
        word = spoken_word(seg.word)
        if word is None:
            continue
        words.append(
            Word(
                start=round(start + seg.start_frame / FRAME_RATE, 3),
                end=round(min(end, start + (seg.end_frame + 1) / FRAME_RATE), 3),
                word=word,
                confidence=round(min(1.0, max(0.0, float(seg.prob))), 3),
            )
        )
    if not words:
        return None
    return SpeechSegment(
        start=words[0].start,
        end=words[-1].end,
        text=" ".join(w.word for w in words),
        confidence=round(sum(w.confidence for w in words) / len(words), 3),
        words=tuple(words),
    )


@dataclass(frozen=True)
class Recognition:
    """What ``recognise`` found: the segments, the voice ranges, the
    duration decoded."""

    segments: list[SpeechSegment]
    voice: list[tuple[float, float]]
    duration: float


def recognise(
    samples: npt.NDArray[np.int16], *, vad_threshold: float = 0.5, deadline: float | None = None
) -> Recognition:
    """Voice activity, then each voice range decoded (16 kHz mono
    ``samples``); ``ProcessTimeoutError`` past ``deadline``
    (``time.monotonic()``)."""
    from mediaflow_worker.understanding import vad

    probabilities = vad.speech_probabilities(samples)
    duration = len(samples) / RATE
    voice = vad.speech_ranges(probabilities, threshold=vad_threshold, duration=duration)
    pieces = vad.split_long(voice, probabilities, max_seconds=MAX_UTTERANCE_SECONDS)
    segments: list[SpeechSegment] = []
    engine = decoder() if pieces else None
    for start, end in pieces:
        if deadline is not None and time.monotonic() > deadline:
            raise ProcessTimeoutError(
                f"speech recognition ran out of time at {start:.1f} s of {duration:.1f} s"
            )
        found = decode_range(engine, samples, start, end)
        if found is not None:
            segments.append(found)
    return Recognition(segments, voice, duration)


def transcribe(
    ctx: TaskContext, *, language: str = "en-US", vad_threshold: float = 0.5
) -> list[SpeechSegment]:
    """The speech of ``ctx``'s input as segments of words (only ``"en-US"``
    is recognised; ``ValueError`` for another language).
    ``TaskNotApplicable`` without audio."""
    return _recognise_input(ctx, language=language, vad_threshold=vad_threshold).segments


def _recognise_input(ctx: TaskContext, *, language: str, vad_threshold: float) -> Recognition:
    from mediaflow_worker.understanding.pcm import decode_pcm

    if language != "en-US":
        raise ValueError(f"speech recognition knows US English ('en-US') only, not {language!r}")
    samples = decode_pcm(ctx)
    return recognise(samples, vad_threshold=vad_threshold, deadline=ctx.deadline)


def cues_of(segments: Sequence[SpeechSegment], *, max_chars: int, max_seconds: float) -> list[Cue]:
    """Subtitle cues: each segment's words in order, a new cue when the next
    word would make the line longer than ``max_chars`` or the cue longer than
    ``max_seconds`` (pure)."""
    cues: list[Cue] = []
    for segment in segments:
        current: list[Word] = []
        for word in segment.words:
            if current:
                text = " ".join(w.word for w in [*current, word])
                if len(text) > max_chars or word.end - current[0].start > max_seconds:
                    cues.append(_cue(current))
                    current = []
            current.append(word)
        if current:
            cues.append(_cue(current))
    return cues


def _cue(words: list[Word]) -> Cue:
    return Cue(words[0].start, words[-1].end, " ".join(w.word for w in words))


def keyword_hits(
    segments: Sequence[SpeechSegment], lists: Sequence[tuple[str, Sequence[str]]]
) -> list[dict[str, Any]]:
    """Each keyword of each ``(list name, words)`` found in a segment, with
    the time of the words that match it (the segment's when they cannot be
    placed) (pure)."""
    hits: list[dict[str, Any]] = []
    for name, words in lists:
        matcher = KeywordMatcher.of(words)
        for segment in segments:
            for keyword in matcher.find(segment.text):
                start, end = _place(keyword, segment)
                hits.append(
                    {"list": name, "keyword": keyword, "start": start, "end": end,
                     "text": segment.text}
                )  # fmt: skip
    hits.sort(key=lambda hit: (hit["start"], hit["list"], hit["keyword"]))
    return hits


def _place(keyword: str, segment: SpeechSegment) -> tuple[float, float]:
    tokens = keyword.split()
    spoken = [normalise(w.word) for w in segment.words]
    for index in range(len(spoken) - len(tokens) + 1):
        if spoken[index : index + len(tokens)] == tokens:
            return segment.words[index].start, segment.words[index + len(tokens) - 1].end
    return segment.start, segment.end


def required_encoders(spec: SpeechTask) -> set[str]:
    """None: the task only decodes."""
    return set()


def _word_json(word: Word) -> dict[str, Any]:
    return {"start": word.start, "end": word.end, "word": word.word, "confidence": word.confidence}


def run(spec: SpeechTask, ctx: TaskContext) -> list[OutputFile]:
    """``speech.json``, and when something was recognised ``transcript.txt``
    and the subtitle files."""
    recognition = _recognise_input(ctx, language=spec.language, vad_threshold=spec.vad_threshold)
    segments = recognition.segments
    hits = keyword_hits(segments, [(kl.name, kl.words) for kl in spec.keywords])
    settings = spec.model_dump(by_alias=True, mode="json")
    result = {
        "version": VERSION,
        "settings": settings,
        "language": spec.language,
        "duration": round(recognition.duration, 3),
        "segments": [
            {
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "confidence": s.confidence,
                "words": [_word_json(w) for w in s.words],
            }
            for s in segments
        ],
        "voiceActivity": [{"start": a, "end": b} for a, b in recognition.voice],
        "keywordHits": hits,
    }
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    out = ctx.out_dir / "speech.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    words = sum(len(s.words) for s in segments)
    voice_seconds = round(sum(b - a for a, b in recognition.voice), 3)
    info: dict[str, Any] = {
        "language": spec.language,
        "segments": len(segments),
        "words": words,
        "voiceSeconds": voice_seconds,
        "keywordHits": len(hits),
    }
    if hits:
        info["hits"] = [
            {"list": h["list"], "keyword": h["keyword"], "start": h["start"]}
            for h in hits[:INFO_HITS]
        ]
    files = [OutputFile(out, info)]
    if not segments:
        # Nothing said: an empty transcript or subtitle file is no use to anyone
        # (and an empty object is what a failed upload looks like).
        return files
    transcript = ctx.out_dir / "transcript.txt"
    transcript.write_text("".join(s.text + "\n" for s in segments), encoding="utf-8")
    files.append(OutputFile(transcript, {"segments": len(segments), "words": words}))
    cues = cues_of(segments, max_chars=spec.max_cue_characters, max_seconds=spec.max_cue_seconds)
    writers = {"vtt": webvtt, "srt": srt}
    for fmt in dict.fromkeys(spec.subtitle_formats):
        path = ctx.out_dir / f"speech.{fmt}"
        path.write_text(writers[fmt](cues), encoding="utf-8")
        files.append(OutputFile(path, {"cues": len(cues)}))
    return files
