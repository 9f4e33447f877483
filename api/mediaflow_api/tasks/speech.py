"""The ``speech`` task: speech to text (segments, words, transcript,
subtitles), voice-activity ranges and keyword hits, on models that ship inside
the worker-ml image (PocketSphinx's US English models, Silero VAD)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from mediaflow_api.tasks.common import SpecModel
from mediaflow_api.tasks.keywords import KeywordList

SpeechLanguage = Literal["en-US"]
SubtitleFormat = Literal["vtt", "srt"]
DEFAULT_SUBTITLES: tuple[SubtitleFormat, ...] = ("vtt", "srt")
# Lists of lists: each list is matched against every segment.
KEYWORD_LISTS_MAX = 20


class SpeechTask(SpecModel):
    """Speech to text: ``speech.json`` (segments with times, confidence and
    words; voice activity; keyword hits), ``transcript.txt`` and subtitles."""

    needs_ml: ClassVar[bool] = True

    language: SpeechLanguage = Field(
        default="en-US",
        description=(
            "Language spoken. Only US English ('en-US') is recognised: the worker ships "
            "PocketSphinx's US English models only. Speech in another language is not detected "
            "as such: it comes out as English words that sound alike, with low confidence."
        ),
    )
    vad_threshold: float = Field(
        default=0.5,
        alias="vadThreshold",
        ge=0.05,
        le=0.95,
        description=(
            "Voice-activity probability (Silero VAD) at which speech starts; lower finds "
            "quieter speech and more noise. Only the voice segments are transcribed."
        ),
    )
    keywords: list[KeywordList] = Field(
        default_factory=list,
        max_length=KEYWORD_LISTS_MAX,
        description="Keyword lists to find in the recognised text (each hit with its time).",
    )
    subtitle_formats: list[SubtitleFormat] = Field(
        default_factory=lambda: list(DEFAULT_SUBTITLES),
        alias="subtitleFormats",
        max_length=2,
        description=(
            "Subtitle files to write: speech.vtt (WebVTT) and/or speech.srt (SubRip); "
            "empty for none."
        ),
    )
    max_cue_characters: int = Field(
        default=42,
        alias="maxCueCharacters",
        ge=10,
        le=200,
        description="Longest subtitle cue in characters (a word longer than this is one cue).",
    )
    max_cue_seconds: float = Field(
        default=6.0,
        alias="maxCueSeconds",
        ge=1,
        le=30,
        description="Longest subtitle cue in seconds.",
    )
