"""compiler.lowering.allocator.keep_freed_memory: inside the block freed memory is reused without
page
faults; outside it (before and after) glibc returns it to the kernel as it does by default. Each
check runs in a fresh process: the policy is the process's."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

_PROBE = """
import json, resource, sys
import torch
sys.path.insert(0, sys.argv[1])
from compiler.lowering.allocator import keep_freed_memory, keeping

def faults(calls=4):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        # 96 MiB: above the largest block glibc ever serves from its heap by default (32 MiB)
        # and above what it keeps after the block (64 MiB free at the heap's top)
        x = torch.empty(24 * 2**20)
        x.fill_(1.0)
        del x
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / calls

faults()
seen = {"before": faults()}
with keep_freed_memory() as kept:
    faults()  # the heap grows once
    with keep_freed_memory():
        seen["nested"] = faults()
    seen["inside"] = faults()  # the inner block's end leaves the outer's policy in force
    seen["keeping"] = keeping()
seen["after"] = faults()
seen["kept"] = kept
seen["keeping_after"] = keeping()
print(json.dumps(seen))
"""


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the policy is glibc's; elsewhere keep_freed_memory yields False and changes nothing",
)
@pytest.mark.slow
def test_freed_memory_is_kept_inside_the_block_only() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(ROOT)], capture_output=True, text=True, check=True
    ).stdout
    seen = json.loads(out)
    # by default every 96 MiB block is unmapped when freed and faulted in again when filled:
    # a fault per page, or per huge page where transparent huge pages are always on
    before = seen["before"]
    assert before >= 96 * 2**20 / (2 * 2**20)
    assert seen["nested"] < 0.01 * before and seen["inside"] < 0.01 * before
    assert seen["kept"] is True and seen["keeping"] is True
    # afterwards glibc returns freed memory to the kernel again (how often depends on where
    # the heap's free blocks lie: a quarter to all of the pages measured)
    assert seen["after"] > 0.25 * before
    assert seen["keeping_after"] is False


def test_outside_glibc_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    from compiler.lowering import allocator

    monkeypatch.setattr(allocator, "_libc", lambda: None)
    with allocator.keep_freed_memory() as kept:
        assert kept is False and not allocator.keeping()
