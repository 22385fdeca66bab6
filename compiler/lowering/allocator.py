"""An allocator policy for CPU inference that the caller opts into, for a scope it chooses.

Under glibc's default malloc, a forward pass returns most of its activation memory to the
kernel when the tensors are freed (large blocks are unmapped, the heap's top is trimmed), and
the next forward faults every page back in: ResNet-50 at batch 8 takes about 60,000 minor page
faults per forward, a fifth of its time on a 2-core machine. Inside ``keep_freed_memory()``
glibc keeps freed memory for reuse instead, so a steady loop of forwards faults almost never.

The setting is the process's (malloc has no per-module policy), so it is never made silently:
only inside the ``with`` block. On leaving it, the memory kept is returned to the kernel
(``malloc_trim``) and glibc's policy is set back to where its own dynamic thresholds settle in a
process that has freed a large block (blocks of 32 MiB and more unmapped when freed, the heap
trimmed past 64 MiB free). One difference remains afterwards: glibc no longer moves those
thresholds itself (any ``mallopt`` call stops that), so a process that never freed a block
above 128 KiB keeps up to 64 MiB more of freed memory than it would have.
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
# on leaving the scope: glibc's own policy where its dynamic thresholds end up once a process
# has freed a large block (mmap threshold at its 32 MiB ceiling on 64-bit, trim threshold twice
# that). glibc's static defaults (128 KiB) would unmap every activation of a ResNet-50 forward:
# 3-6x the faults of the default policy, measured
AFTER = {M_MMAP_MAX: 65536, M_MMAP_THRESHOLD: 32 * 2**20, M_TRIM_THRESHOLD: 64 * 2**20}
# inside the scope: no block is unmapped (all come from the heap) and the heap's top is trimmed
# only past 2 GiB free (mallopt takes an int)
KEEP = {M_MMAP_MAX: 0, M_TRIM_THRESHOLD: 2**31 - 1}

_LOCK = threading.Lock()
_DEPTH = 0


def _libc() -> Any | None:
    """glibc, or None where malloc is another (macOS, musl): the policy is glibc's."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    libc = ctypes.CDLL(None)
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def _set(libc: Any, settings: dict[int, int]) -> list[int]:
    """Apply every setting; the parameters glibc refused (none, in practice)."""
    return [
        param
        for param, value in settings.items()
        if libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)) != 1
    ]


@contextmanager
def keep_freed_memory() -> Iterator[bool]:
    """Keep memory that is freed inside the block for reuse, instead of returning it to the
    kernel. Yields whether the policy is in force: True under glibc (Linux), False elsewhere,
    where nothing changes. Blocks nest, and threads may share one: the outermost ends it.

    >>> with keep_freed_memory():
    ...     for batch in batches:
    ...         outputs = model(batch)

    The policy is glibc's malloc's: with another allocator preloaded (jemalloc, tcmalloc) it
    has no effect. Leaving the block replaces thresholds the process set itself (``mallopt``,
    ``MALLOC_*_`` variables, ``GLIBC_TUNABLES``) with the values in ``AFTER``.
    """
    global _DEPTH
    libc = _libc()
    if libc is None:
        yield False
        return
    with _LOCK:
        if _DEPTH == 0:
            refused = _set(libc, KEEP)
            if refused:
                _set(libc, AFTER)  # nothing half applied
                raise OSError(f"glibc refused mallopt parameters {refused}")
        _DEPTH += 1
    try:
        yield True
    finally:
        with _LOCK:
            _DEPTH -= 1
            if _DEPTH == 0:
                # every setting, then the trim, whatever glibc says to one of them; a refusal
                # here is not raised over the block's own exception (none is expected)
                _set(libc, AFTER)
                libc.malloc_trim(ctypes.c_size_t(0))


def keeping() -> bool:
    """Whether a ``keep_freed_memory`` block is in force now."""
    return _DEPTH > 0


def _after_fork_in_child() -> None:
    # a fork taken while another thread held the lock would leave the child's locked forever;
    # the policy itself (glibc's state) and the depth carry over to the child as they are
    global _LOCK
    _LOCK = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
