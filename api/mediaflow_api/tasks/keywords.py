"""Keyword lists: the words the ``ocr``, ``speech`` and ``moderation`` tasks
look for in recognised text (matching: ``mediaflow_worker.understanding.keywords``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from mediaflow_api.tasks.common import TASK_NAME_PATTERN, SpecModel

# A list is matched against every recognised line: bounded so that a Workflow
# cannot make each line cost a million comparisons.
KEYWORDS_MAX_ITEMS = 500
KEYWORD_MAX_LENGTH = 100

Keyword = Annotated[str, StringConstraints(min_length=1, max_length=KEYWORD_MAX_LENGTH)]


class KeywordList(SpecModel):
    """A named list of words or phrases."""

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=TASK_NAME_PATTERN,
        description="Name of the list (reported with each hit), a DNS label.",
    )
    words: list[Keyword] = Field(
        min_length=1,
        max_length=KEYWORDS_MAX_ITEMS,
        description=(
            "Words or phrases, matched case-insensitively after Unicode normalisation (NFKC): "
            "whole words in scripts written with spaces, anywhere in the text in Chinese, "
            "Japanese, Korean and Thai."
        ),
    )
