"""Source locations and compiler-style diagnostics (``file:line:col: error: ...`` with a caret).

Every problem in a spec becomes a :class:`Diagnostic`; a phase collects all of them and raises
:class:`SpecError` once, so a user sees every mistake of a file in one run.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Loc:
    """A position in a spec file or on the command line (1-based line and column)."""

    file: str
    line: int
    col: int
    text: str = ""  # the whole source line, for the snippet under the message

    def shifted(self, cols: int) -> Loc:
        """The same line, ``cols`` characters further right (for positions inside a value)."""
        return Loc(self.file, self.line, self.col + cols, self.text)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}" if self.line > 0 else self.file


# control characters (terminal escapes, carriage returns), bidirectional controls (which reorder
# what a reader sees), line separators (a line break for one reader and not another), surrogates
# and the byte-order mark: no spec needs them, and each could disguise text where it is printed
HIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff\ufeff]"
)


def shown(text: str, mark: str = "") -> str:
    """``text`` safe to print: each hidden character as its escape (``\\x1b``), or as ``mark``
    where the columns must stay (a snippet above its caret)."""
    return HIDDEN.sub(lambda m: mark or repr(m.group())[1:-1], text)


def one_line(text: object) -> str:
    """Untrusted text (a checkpoint's key, a file name) on one line of output: hidden
    characters, newlines and tabs escaped, so it can neither forge a line nor move the cursor."""
    return shown(str(text)).replace("\n", "\\n").replace("\t", "\\t")


UNKNOWN = Loc("<unknown>", 0, 0)
COMMAND_LINE = "<command line>"
ARGUMENTS = "<arguments>"
# how an override is shown in an error: as the user typed it on the command line (`netc`'s own
# setting: --set KEY=VALUE), or as the Python argument it came from (compile(), load_spec():
# outputs=["layer5"], "params.num_classes=10")
OVERRIDES_SHOWN_AS: ContextVar[tuple[str, str]] = ContextVar(
    "overrides_shown_as", default=(ARGUMENTS, "")
)
ON_THE_COMMAND_LINE = (COMMAND_LINE, "--set ")


def overrides_file() -> str:
    """The file name overrides' errors are located in: the command line, or the arguments."""
    return OVERRIDES_SHOWN_AS.get()[0]


def command_line_loc(item: str, col: int = 1) -> Loc:
    """The position ``col`` (1-based) inside the override ``item``, shown as the command line's
    ``--set item`` or as the argument ``item``."""
    label, prefix = OVERRIDES_SHOWN_AS.get()
    return Loc(label, 1, len(prefix) + col, prefix + item)


@dataclass
class Diagnostic:
    """One located error with optional notes (hints shown under the snippet)."""

    loc: Loc
    message: str
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        """Format like a C compiler: location, message, source line, caret, notes."""
        out = [shown(f"{self.loc}: error: {self.message}")]
        if self.loc.text and self.loc.line > 0:
            text, col = _window(shown(self.loc.text.rstrip("\n"), "\ufffd"), self.loc.col)
            gutter = f"{self.loc.line:>5} | "
            out.append(gutter + text)
            out.append(" " * (len(gutter) - 2) + "| " + " " * max(col - 1, 0) + "^")
        out.extend(shown(f"  note: {n}") for n in self.notes)
        return "\n".join(out)


SNIPPET_WIDTH = 100  # longer source lines are cut around the caret


def _window(text: str, col: int) -> tuple[str, int]:
    """The part of a long line around ``col`` (1-based), and the caret's column in it."""
    if len(text) <= SNIPPET_WIDTH:
        return text, col
    start = max(0, min(col - SNIPPET_WIDTH // 2, len(text) - SNIPPET_WIDTH))
    cut = text[start : start + SNIPPET_WIDTH]
    prefix = "..." if start > 0 else ""
    suffix = "..." if start + SNIPPET_WIDTH < len(text) else ""
    return prefix + cut + suffix, col - start + len(prefix)


class SpecError(Exception):
    """One or more diagnostics about a spec: the only exception a bad spec may raise."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__(self.render())

    @classmethod
    def at(cls, loc: Loc, message: str, *notes: str) -> SpecError:
        """A SpecError of one diagnostic."""
        return cls([Diagnostic(loc, message, [n for n in notes if n])])

    def render(self) -> str:
        return "\n".join(d.render() for d in self.diagnostics)


class Diagnostics:
    """An error collector: phases add to it and call :meth:`raise_if_any` at their end."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def error(self, loc: Loc, message: str, *notes: str) -> None:
        self.items.append(Diagnostic(loc, message, [n for n in notes if n]))

    def extend(self, err: SpecError) -> None:
        self.items.extend(err.diagnostics)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise SpecError(self.items)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A ``did you mean 'x'?`` note for a misspelled name, or '' when nothing is close."""
    close = difflib.get_close_matches(str(name), sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def suffix_hint(name: str, candidates: Iterable[str]) -> str:
    """The did-you-mean as a message suffix: ``; did you mean 'x'?`` or ''."""
    hint = did_you_mean(name, candidates)
    return f"; {hint}" if hint else ""
