"""Checked specs kept for reuse within a process, as Python keeps a module it has imported.

``compile("specs/resnet50.yaml")`` runs the front end (read, merge, check, expand, verify,
count) and then builds the module. Called again with the same arguments, it reuses the checked
graph for as long as every file-system answer the front end was given still holds
(compiler.frontend.fs): the files it read have the same bytes, the block files it looked for and
did not
find are still absent. So a loop that builds one spec many times (seeds, sweeps, tests) checks
it once, and an edited file is always read again. A graph serves one build at a time: a
second thread building the same spec meanwhile runs the front end itself.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..ir.graph import Graph
from ..ops import OPS, plugins
from . import fs
from .access import SEARCH_PATH
from .load import load_spec

MAX_SPECS = 32  # graphs kept, least recently used dropped first


@dataclass(kw_only=True)
class _Entry:
    graph: Graph
    answers: list[fs.Answer]
    in_use: threading.Lock


_ENTRIES: OrderedDict[tuple[object, ...], _Entry] = OrderedDict()
_GUARD = threading.Lock()


@contextmanager
def checked(
    path: str | os.PathLike[str], overrides: list[str] | None, published_weights: bool
) -> Iterator[Graph]:
    """The graph ``load_spec(path, overrides, published_weights=...)`` gives, for the
    duration of the ``with`` block: the caller may lower it but must not keep or change it."""
    overrides = list(overrides) if overrides else None  # (a generator is read once, here)
    # NETC_PATH decides which files the spec may read (compiler.frontend.access)
    trusted = os.environ.get(SEARCH_PATH, "")
    plugins.from_environment(OPS)
    # an op a plugin adds can turn an unknown op into a network: the enabled plugins are part
    # of what a spec means
    key = (
        os.getcwd(),
        os.fspath(path),
        tuple(overrides or ()),
        published_weights,
        trusted,
        plugins.enabled(),
    )
    with _GUARD:
        entry = _ENTRIES.get(key)
        if entry is not None:
            _ENTRIES.move_to_end(key)
    if entry is not None and entry.in_use.acquire(blocking=False):
        try:
            if fs.still_hold(entry.answers):
                yield entry.graph
                return
        finally:
            entry.in_use.release()
    with fs.noting() as answers:
        graph = load_spec(path, overrides, published_weights=published_weights)
    graph.memo = {}  # never handed out: nothing changes it
    entry = _Entry(graph=graph, answers=answers, in_use=threading.Lock())
    with entry.in_use:
        with _GUARD:
            _ENTRIES[key] = entry
            _ENTRIES.move_to_end(key)
            while len(_ENTRIES) > MAX_SPECS:
                _ENTRIES.popitem(last=False)
        yield graph


def _after_fork_in_child() -> None:
    # a fork taken while another thread held the guard would leave the child's locked forever
    global _GUARD
    _GUARD = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def clear() -> None:
    """Forget every checked spec: the next compile of each runs the front end."""
    with _GUARD:
        _ENTRIES.clear()
