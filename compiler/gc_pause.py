"""The cyclic garbage collector paused while a graph or a module is built."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building graphs and modules: the thousands of
    small objects of a deep network otherwise trigger collections whose cost grows with the heap,
    making build time grow faster than depth (docs/design.md has the figures)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
