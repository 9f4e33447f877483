"""Waiting on a condition with a deadline: the only way tests synchronise."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ConditionTimeout(AssertionError):
    """The condition did not hold before the deadline."""


def wait_for(
    probe: Callable[[], T | None],
    timeout: float,
    what: str | Callable[[], str],
    interval: float = 0.2,
) -> T:
    """Call ``probe`` until it returns a truthy value and return that value.

    Exceptions from ``probe`` count as "not yet" until the deadline, then the
    last one is reported with ``what`` so a failure says what never happened.
    A callable ``what`` is asked only then (e.g. for a log as it is at the end).
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    last_value: T | None = None
    while True:
        try:
            last_value = probe()
            if last_value:
                return last_value
        except Exception as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = (
                f"; last error: {last_error!r}" if last_error else f"; last value: {last_value!r}"
            )
            told = what() if callable(what) else what
            raise ConditionTimeout(f"timed out after {timeout:.0f}s waiting for {told}{detail}")
        time.sleep(interval)
