"""The speech task's pure logic: voice ranges from per-window probabilities,
long ranges cut at a pause, decoder tokens, subtitle cues, keyword hits, the
word error rate of the measurements, and the task's settings."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from mediaflow_api.tasks import SpeechTask, TaskSpec
from mediaflow_worker.understanding.cues import srt, webvtt
from mediaflow_worker.understanding.speech import (
    SpeechSegment,
    Word,
    cues_of,
    keyword_hits,
    spoken_word,
)
from mediaflow_worker.understanding.vad import speech_ranges, split_long
from tests.support.understanding.speech import word_error_rate

pytestmark = pytest.mark.unit

W = 0.1  # window seconds in these tests (round numbers)


def probs(pattern: str) -> list[float]:
    """'.' = 0.0, 'o' = 0.4 (between the thresholds), 'X' = 0.9, a window each."""
    return [{".": 0.0, "o": 0.4, "X": 0.9}[ch] for ch in pattern]


def ranges(pattern: str, **kwargs: float) -> list[tuple[float, float]]:
    kwargs.setdefault("pad_seconds", 0.0)
    return speech_ranges(probs(pattern), window_seconds=W, **kwargs)


def test_one_range_of_speech() -> None:
    assert ranges("..XXXXX...") == [(0.2, 0.7)]


def test_a_short_pause_stays_inside_the_range() -> None:
    # Two windows (0.2 s) below the low threshold < 0.3 s of silence.
    assert ranges("XXXX..XXXX....") == [(0.0, 1.0)]


def test_a_long_pause_splits() -> None:
    assert ranges("XXXX....XXXX....") == [(0.0, 0.4), (0.8, 1.2)]


def test_hysteresis_keeps_speech_between_the_thresholds() -> None:
    # 0.4 is under 0.5 (does not start speech) but over 0.35 (does not end it).
    assert ranges("XXooooooXX....") == [(0.0, 1.0)]
    assert ranges("..oooo....") == []


def test_short_bursts_are_dropped() -> None:
    assert ranges("..XX......XXXXX...") == [(1.0, 1.5)]
    assert ranges("..XX......", min_speech_seconds=0.1) == [(0.2, 0.4)]


def test_speech_to_the_end_ends_at_the_duration() -> None:
    assert ranges("...XXX", duration=0.58) == [(0.3, 0.58)]


def test_padding_widens_and_joins_within_the_signal() -> None:
    assert ranges("XXXX....XXXX..", pad_seconds=0.25) == [(0.0, 1.4)]
    assert ranges("..XXX.....", pad_seconds=0.1) == [(0.1, 0.6)]


def test_threshold_is_the_users() -> None:
    assert ranges("..oooo....", threshold=0.3) == [(0.2, 0.6)]


def test_long_ranges_are_cut_at_the_quietest_window_of_the_second_half() -> None:
    probabilities = [0.9] * 100
    probabilities[7] = 0.2  # first half of the first piece: not chosen
    probabilities[13] = 0.1
    pieces = split_long([(0.0, 10.0)], probabilities, max_seconds=2.0, window_seconds=W)
    assert pieces[0] == (0.0, 1.35)
    assert all(end - start <= 2.0 + 1e-9 for start, end in pieces)
    assert pieces[-1][1] == 10.0
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))


def test_short_ranges_are_not_cut() -> None:
    assert split_long([(1.0, 2.0)], [0.9] * 30, max_seconds=5, window_seconds=W) == [(1.0, 2.0)]


@pytest.mark.parametrize(
    ("token", "word"),
    [("hello", "hello"), ("the(2)", "the"), ("<sil>", None), ("<s>", None), ("</s>", None),
     ("[NOISE]", None), ("++breath++", None), ("(NULL)", None), ("o'clock", "o'clock")],
)  # fmt: skip
def test_decoder_tokens(token: str, word: str | None) -> None:
    assert spoken_word(token) == word


def segment(*words: tuple[float, float, str]) -> SpeechSegment:
    parts = tuple(Word(start, end, text, 0.9) for start, end, text in words)
    return SpeechSegment(parts[0].start, parts[-1].end, " ".join(w.word for w in parts), 0.9, parts)


SEG = segment(
    (1.0, 1.3, "please"), (1.3, 1.5, "go"), (1.5, 2.0, "forward"), (2.0, 2.3, "ten"),
    (2.3, 2.8, "meters"), (2.9, 3.1, "and"), (3.1, 3.4, "turn"), (3.4, 3.8, "left"),
)  # fmt: skip


def test_cues_break_at_the_character_limit() -> None:
    cues = cues_of([SEG], max_chars=20, max_seconds=10)
    assert [c.text for c in cues] == ["please go forward", "ten meters and turn", "left"]
    assert (cues[0].start, cues[0].end) == (1.0, 2.0)
    assert all(len(c.text) <= 20 for c in cues)


def test_cues_break_at_the_time_limit_and_between_segments() -> None:
    later = segment((9.0, 9.5, "hello"))
    cues = cues_of([SEG, later], max_chars=200, max_seconds=1.5)
    assert [c.text for c in cues] == ["please go forward ten", "meters and turn left", "hello"]
    assert all(c.end - c.start <= 1.5 for c in cues)


def test_a_word_longer_than_the_limit_is_a_cue_of_its_own() -> None:
    long = segment((0.0, 1.0, "a"), (1.0, 2.0, "supercalifragilistic"), (2.0, 2.5, "b"))
    assert [c.text for c in cues_of([long], max_chars=10, max_seconds=10)] == [
        "a",
        "supercalifragilistic",
        "b",
    ]


def test_cues_write_as_webvtt_and_srt() -> None:
    cues = cues_of([SEG], max_chars=42, max_seconds=6)
    assert webvtt(cues).startswith("WEBVTT\n\n00:00:01.000 --> 00:00:03.800\nplease go forward")
    assert srt(cues).startswith("1\n00:00:01,000 --> 00:00:03,800\n")


def test_keyword_hits_carry_the_time_of_the_words() -> None:
    hits = keyword_hits([SEG], [("moves", ["Forward", "turn left", "backward"])])
    assert [(h["keyword"], h["start"], h["end"]) for h in hits] == [
        ("forward", 1.5, 2.0),
        ("turn left", 3.1, 3.8),
    ]
    assert hits[0]["list"] == "moves"
    assert hits[0]["text"] == SEG.text


def test_keyword_hits_are_whole_words_and_sorted_by_time() -> None:
    later = segment((5.0, 5.5, "forward"))
    hits = keyword_hits([SEG, later], [("b", ["ten"]), ("a", ["forward", "mete"])])
    assert [(h["list"], h["keyword"], h["start"]) for h in hits] == [
        ("a", "forward", 1.5),
        ("b", "ten", 2.0),
        ("a", "forward", 5.0),
    ]


@pytest.mark.parametrize(
    ("reference", "hypothesis", "wer"),
    [
        ("go forward ten meters", "go forward ten meters", 0.0),
        ("go forward ten meters", "Go forward, ten meters.", 0.0),
        ("go forward ten meters", "go forward meters", 0.25),  # deletion
        ("go forward ten meters", "go forward then ten meters", 0.25),  # insertion
        ("go forward ten meters", "no forward tin meters", 0.5),  # substitutions
        ("go forward", "", 1.0),
        ("go", "a b c", 3.0),  # can exceed 1
        ("", "", 0.0),
    ],
)
def test_word_error_rate(reference: str, hypothesis: str, wer: float) -> None:
    assert word_error_rate(reference, hypothesis) == pytest.approx(wer)


def test_speech_settings() -> None:
    task = TaskSpec.model_validate({"name": "s", "speech": {}})
    assert task.kind == "speech"
    spec = task.type_spec
    assert isinstance(spec, SpeechTask)
    assert SpeechTask.needs_ml
    assert spec.language == "en-US"
    assert spec.subtitle_formats == ["vtt", "srt"]
    with pytest.raises(ValidationError):
        SpeechTask.model_validate({"language": "de-DE"})
    with pytest.raises(ValidationError):
        SpeechTask.model_validate({"subtitleFormats": ["ass"]})
    with pytest.raises(ValidationError):
        SpeechTask.model_validate({"vadThreshold": 1.5})
