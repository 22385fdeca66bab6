"""Every question the front end asks the file system, answered here so that it can be noted.

While :func:`noting` is on, each answer is kept: a checked spec (compiler.spec_cache) is reused
for as long as asking every question again gives the same answers. A read's answer is the bytes
read, so an edit is seen whatever its timestamp or size.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Answer = tuple[str, str, object]  # (question, path, answer)

_NOTES: contextvars.ContextVar[list[Answer] | None] = contextvars.ContextVar(
    "netc_fs_notes", default=None
)


def _noted(question: str, path: str, answer: object) -> None:
    notes = _NOTES.get()
    if notes is not None:
        notes.append((question, path, answer))


def exists(path: str) -> bool:
    answer = os.path.exists(path)
    _noted("exists", path, answer)
    return answer


def isdir(path: str) -> bool:
    answer = os.path.isdir(path)
    _noted("isdir", path, answer)
    return answer


def isfile(path: str) -> bool:
    answer = os.path.isfile(path)
    _noted("isfile", path, answer)
    return answer


def read_bytes(path: str, limit: int) -> bytes:
    """At most ``limit`` bytes of the file."""
    with open(path, "rb") as f:
        answer = f.read(limit)
    _noted(f"read:{limit}", path, answer)
    return answer


def _ask(question: str, path: str) -> object:
    asks: dict[str, Callable[[str], object]] = {
        "exists": os.path.exists,
        "isdir": os.path.isdir,
        "isfile": os.path.isfile,
    }
    if question in asks:
        return asks[question](path)
    limit = int(question.removeprefix("read:"))
    with open(path, "rb") as f:
        return f.read(limit)


@contextmanager
def noting() -> Iterator[list[Answer]]:
    """Keep every answer given inside, in order, in the list yielded."""
    notes: list[Answer] = []
    token = _NOTES.set(notes)
    try:
        yield notes
    finally:
        _NOTES.reset(token)


def still_hold(notes: list[Answer]) -> bool:
    """Whether asking each noted question again gives the noted answer."""
    for question, path, answer in notes:
        try:
            if _ask(question, path) != answer:
                return False
        except OSError:
            return False
    return True
