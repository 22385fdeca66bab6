"""The spec library: every network spec under a folder (block-type files excluded)."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass

from ..errors import Loc, SpecError
from ..ir.graph import Graph
from .access import refusal
from .load import load_spec


@dataclass
class Entry:
    """One network of the library, loaded and counted (or the error it gave)."""

    path: str
    graph: Graph | None
    error: SpecError | None = None


def spec_files(folder: str) -> list[str]:
    """Network spec files below ``folder``, sorted; blocks/ folders hold block types, skipped."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != "blocks" and not d.startswith("."))
        found += [os.path.join(root, f) for f in files if f.endswith((".yaml", ".yml"))]
    return sorted(found, key=lambda p: (p.count(os.sep), p))


def library_name(path: str, folder: str) -> str:
    """The name a spec file under ``folder`` is called by (``cifar/resnet20``)."""
    return os.path.splitext(os.path.relpath(path, folder))[0].replace(os.sep, "/")


def read_library(folder: str, names: bool = False, match: str | None = None) -> list[Entry]:
    """Load every spec under ``folder``; errors are kept per entry, not raised. With ``names``
    each entry is called by its library name (``cifar/resnet20``) instead of its path; with
    ``match`` (a shell pattern like ``resnet*``) only the specs whose name matches are loaded."""
    entries = []
    within = [os.path.realpath(folder)]
    for path in spec_files(folder):
        if match is not None and not fnmatch.fnmatchcase(library_name(path, folder), match):
            continue
        shown = library_name(path, folder) if names else path
        if why := refusal(path, within):  # a link out of the folder is not read
            entries.append(Entry(shown, None, SpecError.at(Loc(path, 0, 0), f"{path} {why}")))
            continue
        try:
            entries.append(Entry(shown, load_spec(path)))
        except SpecError as e:
            entries.append(Entry(shown, None, e))
    return entries
