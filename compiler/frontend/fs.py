"""Every question the front end asks the file system, answered here so that it can be noted.

While :func:`noting` is on, each answer is kept: a checked spec (compiler.frontend.spec_cache) is
reused
for as long as asking every question again gives the same answers. A read's answer is the bytes
read, so an edit is seen whatever its timestamp or size.
"""

from __future__ import annotations

import contextvars
import functools
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")
# (the question, as the function that answers it; the path; the answer)
Answer = tuple[Callable[[str], Any], str, Any]

_NOTES: contextvars.ContextVar[list[Answer] | None] = contextvars.ContextVar(
    "netc_fs_notes", default=None
)


def _asked(ask: Callable[[str], T], path: str) -> T:
    answer = ask(path)
    notes = _NOTES.get()
    if notes is not None:
        notes.append((ask, path, answer))
    return answer


def exists(path: str) -> bool:
    return _asked(os.path.exists, path)


def isdir(path: str) -> bool:
    return _asked(os.path.isdir, path)


def isfile(path: str) -> bool:
    return _asked(os.path.isfile, path)


def realpath(path: str) -> str:
    return _asked(os.path.realpath, path)


def read_bytes(path: str, limit: int) -> bytes:
    """At most ``limit`` bytes of the file."""
    return _asked(functools.partial(_read, limit=limit), path)


class NotAFile(OSError):
    """The path is something other than a regular file; ``kind`` says what ('a named pipe')."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(f"{path} is {kind}, not a spec file")
        self.kind = kind


_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a named pipe",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def _read(path: str, limit: int) -> bytes:
    # opened without blocking (a named pipe with no writer would wait forever) and checked on
    # the open file, so a file swapped for a pipe after an earlier look is still refused
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        kind = stat.S_IFMT(os.fstat(fd).st_mode)
        if kind != stat.S_IFREG:
            raise NotAFile(path, _KINDS.get(kind, "not a regular file"))
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
    for ask, path, answer in notes:
        try:
            if ask(path) != answer:
                return False
        except OSError:
            return False
    return True
