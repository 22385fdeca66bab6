"""What every command of the command line shares: argument types, output paths, signals and
a terminal that no text can take over."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, NoReturn

from ..errors import shown
from ..frontend.access import SEARCH_PATH

EXIT_OK, EXIT_FAILURE, EXIT_SPEC = 0, 1, 2
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM, as a shell reports


def at_least(least: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``least``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{value} is less than {least}")
        return value

    return parse


def positive(text: str) -> float:
    """An argparse type: a finite number above 0 (nan and inf are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number above 0")
    return value


def write_output(path: str, text: str, quiet: bool) -> int:
    """Write a command's text output atomically; the exit status."""
    from ..atomic import write_text

    try:
        write_text(path, text)
    except OSError as e:
        return cannot_write(path, e)
    if not quiet:
        print(f"wrote {path}")
    return EXIT_OK


def cannot_write(path: str, e: OSError) -> int:
    """Say that ``path`` cannot be written, and why, in one line; the exit status."""
    print(f"netc: error: cannot write {path}: {e.strerror or e}", file=sys.stderr)
    return EXIT_FAILURE


def writable(*paths: str | None) -> bool:
    """Whether every output path given may be written (exporters.atomic.check_target); the
    first that may not is reported. Checked before the work, which can take minutes."""
    from ..atomic import check_target

    for path in paths:
        if path is None:
            continue
        try:
            check_target(path)
        except OSError as e:
            cannot_write(path, e)
            return False
    return True


class Terminated(SystemExit):
    """SIGTERM, raised where the program is, so that cleanups run (atomic_path removes its
    temporary file) as they do for Ctrl-C's KeyboardInterrupt. A SystemExit, so that code
    catching Exception lets it through."""


def on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    raise Terminated(EXIT_TERMINATED)


@contextlib.contextmanager
def search_path(folders: list[str]) -> Iterator[None]:
    """``--path`` folders before NETC_PATH's (compiler.frontend.access reads it) while a command
    runs."""
    before = os.environ.get(SEARCH_PATH)
    if folders:
        os.environ[SEARCH_PATH] = os.pathsep.join([*folders, *([before] if before else [])])
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(SEARCH_PATH, None)
        else:
            os.environ[SEARCH_PATH] = before


class Shown:
    """A text stream that writes hidden characters escaped (errors.shown): whatever a command
    prints (a file name, a checkpoint's key), no escape sequence reaches the terminal."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return int(self.stream.write(shown(text)))

    def flush(self) -> None:
        self.stream.flush()

    def fileno(self) -> int:
        return int(self.stream.fileno())

    def isatty(self) -> bool:
        return bool(self.stream.isatty())
