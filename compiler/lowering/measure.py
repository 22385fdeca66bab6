"""Measuring what a forward really holds: the activation memory alive at once (imports torch).

Every tensor an aten op returns is followed until Python lets go of it; tensors that share memory
(views, in-place results) count once, and the caller's input and the module's weights not at all.
This is the figure :func:`compiler.ir.passes.memory.peak_bytes` predicts from the IR, measured on
the running module, whatever allocator is in use.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class _LiveMemory(TorchDispatchMode):
    def __init__(self, ignore: set[int]) -> None:
        super().__init__()
        self.ignore = ignore  # memory of the input and the weights
        self.holders: dict[int, int] = {}  # memory address -> live tensors on it
        self.sizes: dict[int, int] = {}
        self.seen: set[int] = set()  # ids of the live tensors already followed
        self.live = 0
        self.peak = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        # under a dispatch mode PyTorch runs every max pool with int64 indices, which a plain CPU
        # forward without autograd never makes: the pooled map is what the forward holds
        kept = out[0] if func is torch.ops.aten.max_pool2d_with_indices.default else out
        for t in tree_leaves(kept):
            if isinstance(t, torch.Tensor) and id(t) not in self.seen:
                self.follow(t)
        return out

    def follow(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        address = storage.data_ptr()
        if address in self.ignore or storage.nbytes() == 0:
            return
        if address not in self.holders:
            self.holders[address] = 0
            self.sizes[address] = storage.nbytes()
            self.live += storage.nbytes()
            self.peak = max(self.peak, self.live)
        self.holders[address] += 1
        self.seen.add(id(t))
        weakref.finalize(t, self.release, address, id(t))

    def release(self, address: int, ident: int) -> None:
        self.seen.discard(ident)
        self.holders[address] -= 1
        if self.holders[address] == 0:
            del self.holders[address]
            self.live -= self.sizes.pop(address)


def peak_live_bytes(module: torch.nn.Module, x: torch.Tensor) -> int:
    """The most activation memory alive at once during ``module(x)`` without autograd."""
    ignore = {x.untyped_storage().data_ptr()}
    ignore |= {t.untyped_storage().data_ptr() for t in module.state_dict().values()}
    with torch.no_grad():
        probe = _LiveMemory(ignore)
        with probe:
            out = module(x)
        del out
    return probe.peak
