"""Deprecated name of ``bucket_rules`` (kept while ``tests/e2e/harness.py`` imports it)."""

from mediaflow_operator.bucket_rules import our_prefixes

__all__ = ["our_prefixes"]
