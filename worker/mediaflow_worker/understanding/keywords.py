"""Finding the words of user keyword lists in recognised text (pure).

Matching is case-insensitive and Unicode-normalised (NFKC + casefold: full-width
letters match their ASCII twins); a keyword of a script written with spaces must match whole
words ("art" is not found in "start"), a keyword in a script written without
them (Chinese, Japanese, Thai) matches anywhere in the text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass


def normalise(text: str) -> str:
    """The form both sides are compared in: NFKC, case-folded, runs of
    whitespace as one space."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _spaceless(word: str) -> bool:
    # CJK ideographs, kana, Hangul syllables, Thai/Lao/Khmer: no spaces between words.
    return any(
        "\u3040" <= ch <= "\u30ff"
        or "\u3400" <= ch <= "\u9fff"
        or "\uac00" <= ch <= "\ud7af"
        or "\u0e00" <= ch <= "\u0eff"
        or "\u1780" <= ch <= "\u17ff"
        or "\uf900" <= ch <= "\ufaff"
        for ch in word
    )


@dataclass(frozen=True)
class KeywordMatcher:
    """The compiled form of a list of keywords."""

    words: tuple[str, ...]
    _patterns: tuple[re.Pattern[str], ...]

    @classmethod
    def of(cls, words: Iterable[str]) -> KeywordMatcher:
        """A matcher for ``words`` (blank ones ignored, duplicates once)."""
        kept = tuple(dict.fromkeys(w for w in (normalise(word) for word in words) if w))
        patterns = tuple(
            re.compile(re.escape(word) if _spaceless(word) else rf"(?<!\w){re.escape(word)}(?!\w)")
            for word in kept
        )
        return cls(kept, patterns)

    def find(self, text: str) -> list[str]:
        """The keywords (normalised) found in ``text``, in list order."""
        normal = normalise(text)
        pairs = zip(self.words, self._patterns, strict=True)
        return [word for word, pattern in pairs if pattern.search(normal)]
