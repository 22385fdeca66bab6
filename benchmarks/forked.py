"""Each model alone in a process of its own: a parent imports torch, torchvision and netc and
nothing else (it runs no op, so OpenMP's threads start afresh in every child), then forks one
child per measurement. Every child starts from the very same process state, builds its one
model and runs it; nothing it does is seen by the next. Compared with a fresh interpreter per
measurement this saves the 2-3 s of importing torch per process, and takes away what differs
between two interpreters before the model is built (imports, hash seeds: where the allocator's
heap ends up), which moves a ResNet-50 forward by a few percent whichever model runs.

    python benchmarks/forked.py NAME BATCH ROUNDS CALLS PLACEMENTS KIND...

KIND: tv | netc | netc_inference (compile(inference=True)) | tv_gc (torchvision's model with
one gc.collect() after its build, its build's garbage freed before the forwards); "_kept" at the
end runs the forwards inside compiler.lowering.allocator.keep_freed_memory; a trailing "2" is a
second instance of the same kind (the control). The kinds run in rotating order, ROUNDS times.
Where the parent's heap ends up differs from parent to parent and moves every child's faults
and time, differently per model: benchmarks/run.py runs one round per parent. Where a model's
weights lie in physical memory moves its forward by up to a third, so a child measures
PLACEMENTS of them: the weights as built, then copied to fresh memory (PLACEMENTS - 1 times),
the same for every kind. Prints JSON: per kind, for each child and placement, the median forward
seconds over CALLS forwards (after 3 warm-up forwards, 1 after a copy) and the minor page faults
per forward; for each child, its process's peak resident memory over the build and the
forwards on the weights as built (MiB), and how far those forwards raised resident memory above
the built model's (MiB). A "_kept" kind measures one placement.

With FORKED_CORE=N in the environment the parent and its children run on CPU core N alone
(benchmarks/run.py sets it with OMP_NUM_THREADS=1 for its "pinned" rows).
"""

from __future__ import annotations

import contextlib
import gc
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
from compiler.lowering.allocator import keep_freed_memory


def replace_weights(model: torch.nn.Module) -> None:
    """Copy every weight and buffer to freshly allocated memory (all copies made before the old
    tensors are let go, so none reuses the block just freed): another draw of where the weights
    lie in physical memory, for torchvision's model and netc's alike."""
    tensors = [*model.parameters(), *model.buffers()]
    copies = [t.data.clone() for t in tensors]
    for tensor, copy in zip(tensors, copies, strict=True):
        tensor.data = copy


def measure(
    kind: str, name: str, batch: int, calls: int, size: int, placements: int
) -> dict[str, list[float]]:
    """One child's figures (see the module's docstring), times and faults per placement."""
    if placements < 1 or (placements > 1 and kind.endswith("_kept")):
        # (copies made inside keep_freed_memory would land in the memory it keeps)
        raise ValueError("PLACEMENTS: at least 1, and 1 for a _kept kind")
    torch.set_grad_enabled(False)
    torch.manual_seed(0)
    reset_high_water_mark()
    base = kind.removesuffix("_kept")
    if base in ("tv", "tv_gc"):
        model = getattr(torchvision.models, name)().eval()
    else:
        model = compiler.compile(name, inference=base == "netc_inference").eval()
    if base == "tv_gc":  # frees the build's cyclic garbage now, not whenever the GC next runs
        gc.collect()
    x = torch.randn(batch, 3, size, size)
    build_peak = status("VmHWM:")
    reset_high_water_mark()
    built = status("VmRSS:")
    scope = keep_freed_memory() if kind.endswith("_kept") else contextlib.nullcontext()
    out: dict[str, list[float]] = {"seconds": [], "faults": []}
    with scope:
        for placement in range(placements):
            if placement:
                replace_weights(model)
            for _ in range(3 if placement == 0 else 1):
                model(x)
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            times = []
            for _ in range(calls):
                start = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - start)
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
            out["faults"].append(faults / calls)
            out["seconds"].append(statistics.median(times))
            if placement == 0:  # what the forwards add to the model as built
                forward_peak = status("VmHWM:")
    out["peak_mib"] = [max(build_peak, forward_peak)]
    out["forward_mib"] = [forward_peak - built]
    return out


def in_child(kind: str, *args: Any) -> dict[str, list[float]]:
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
    figures: dict[str, list[float]] = got["figures"]
    return figures


def main() -> int:
    name, batch, rounds, calls, placements, *kinds = sys.argv[1:]
    if core := os.environ.get("FORKED_CORE"):
        os.sched_setaffinity(0, {int(core)})  # inherited by every child
    size = 224
    out: dict[str, dict[str, list[float]]] = {k: {} for k in kinds}
    for r in range(int(rounds)):
        shift = r % len(kinds)
        for kind in kinds[shift:] + kinds[:shift]:
            got = in_child(kind.rstrip("2"), name, int(batch), int(calls), size, int(placements))
            for key, values in got.items():
                out[kind].setdefault(key, []).extend(values)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
