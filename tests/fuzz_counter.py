"""Counts the fuzz cases run in this session, for the summary line CI prints."""

from __future__ import annotations

from collections import Counter

CASES: Counter[str] = Counter()


def count(kind: str) -> None:
    CASES[kind] += 1
