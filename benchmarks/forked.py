"""Each model alone in a process of its own: a parent imports torch, torchvision and netc and
nothing else (it runs no op, so OpenMP's threads start afresh in every child), then forks one
child per measurement. Every child starts from the very same process state, builds its one
model and runs it; nothing it does is seen by the next. Compared with a fresh interpreter per
measurement this saves the 2-3 s of importing torch per process, and takes away what differs
between two interpreters before the model is built (imports, hash seeds: where the allocator's
heap ends up), which moves a ResNet-50 forward by a few percent whichever model runs.

    python benchmarks/forked.py NAME BATCH ROUNDS CALLS KIND...

KIND: tv | netc | netc_inference (compile(inference=True)); "_kept" at the end runs the
forwards inside compiler.allocator.keep_freed_memory; a trailing "2" is a second instance of
the same kind (the control). The kinds run in rotating order, ROUNDS times. Where the parent's
heap ends up differs from parent to parent and moves every child's faults and time by a few
percent, differently per model: benchmarks/run.py runs one round per parent. Prints JSON: per
kind, for each child, its median forward seconds over CALLS forwards (after 3 warm-up forwards),
its minor page faults per forward, its process's peak resident memory (MiB) and how far the
forwards raised resident memory above the built model's (MiB).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from procfs import reset_high_water_mark, status

import compiler
from compiler.allocator import keep_freed_memory


def measure(kind: str, name: str, batch: int, calls: int, size: int) -> dict[str, float]:
    """One child's figures (see the module's docstring)."""
    torch.set_grad_enabled(False)
    torch.manual_seed(0)
    reset_high_water_mark()
    base = kind.removesuffix("_kept")
    if base == "tv":
        model = getattr(torchvision.models, name)().eval()
    else:
        model = compiler.compile(name, inference=base == "netc_inference").eval()
    x = torch.randn(batch, 3, size, size)
    build_peak = status("VmHWM:")
    reset_high_water_mark()
    built = status("VmRSS:")
    scope = keep_freed_memory() if kind.endswith("_kept") else contextlib.nullcontext()
    with scope:
        for _ in range(3):
            model(x)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / calls
        forward_peak = status("VmHWM:")
    return {
        "seconds": statistics.median(times),
        "faults": faults,
        "peak_mib": max(build_peak, forward_peak),
        "forward_mib": forward_peak - built,
    }


def in_child(kind: str, *args: Any) -> dict[str, float]:
    """``measure`` in a forked child; its figures come back through a pipe."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: measure, send, leave without running the parent's exit handlers
        code = 1
        try:
            os.close(read)
            try:
                message = {"figures": measure(kind, *args)}
            except Exception as e:  # the parent reports it
                message = {"error": repr(e)}
            os.write(write, json.dumps(message).encode())
            code = 0 if "figures" in message else 1
        finally:  # a child never returns into the parent's loop, whatever happened
            os._exit(code)
    os.close(write)
    data = b""
    while chunk := os.read(read, 1 << 16):
        data += chunk
    os.close(read)
    _, status = os.waitpid(pid, 0)
    got: dict[str, Any] = json.loads(data) if data else {}
    if "figures" not in got:
        ended = f"exit status {os.waitstatus_to_exitcode(status)}"
        raise RuntimeError(f"{kind} {args[0]}: {got.get('error', ended)}")
    figures: dict[str, float] = got["figures"]
    return figures


def main() -> int:
    name, batch, rounds, calls, *kinds = sys.argv[1:]
    size = 224
    out: dict[str, dict[str, list[float]]] = {k: {} for k in kinds}
    for r in range(int(rounds)):
        shift = r % len(kinds)
        for kind in kinds[shift:] + kinds[:shift]:
            got = in_child(kind.rstrip("2"), name, int(batch), int(calls), size)
            for key, value in got.items():
                out[kind].setdefault(key, []).append(value)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
