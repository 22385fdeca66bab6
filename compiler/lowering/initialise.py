"""Weight initialisation by each op's own rule (``Op.init``), reproducible from a seed.

The rules are torchvision's for the ops they cover (ResNet: kaiming normal convs, BN weight 1 and
bias 0, linear layers at PyTorch's default); with ``zero_init_residual`` the BatchNorm a block type
marks ``zero_init: true`` starts at weight 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import fx, nn

from ..ir.graph import Graph
from ..ops import OPS, InitContext


def initialise(module: fx.GraphModule, graph: Graph, zero_init_residual: bool = False) -> None:
    """Give every parameter and buffer of ``module`` its initial value, in node order.

    The module may come from :func:`compiler.lowering.lower.lower` on the meta device and
    ``to_empty``:
    nothing is assumed initialised, so a module with state whose op has no rule is an error
    rather than a tensor left holding uninitialised memory.
    """
    ctx = InitContext(zero_init_residual=zero_init_residual)
    done: set[str] = set()
    modules = dict(module.named_modules())  # one walk, not a get_submodule per node
    for node in graph.nodes.values():
        rule = OPS[node.op].init
        if rule is not None and not node.shares:  # a shared module is its owner's
            # a node owns a module, or (layer_scale) a bare parameter of its block
            owner, _, leaf = node.name.rpartition(".")
            target = modules[owner]._parameters.get(leaf)
            held = modules.get(node.name) if target is None else target
            if held is None:  # no state with these attributes (weighted_sum's plain sum)
                continue
            rule(held, node.attrs, ctx)
            done.add(node.name)
    for owner, sub in modules.items():
        tensors = {**sub._parameters, **sub._buffers}
        for leaf in (leaf for leaf, tensor in tensors.items() if tensor is not None):
            # a node's rule covers the module's children too (attention's out_proj)
            name = f"{owner}.{leaf}" if owner else leaf
            path = name
            while path and path not in done:
                path = path.rpartition(".")[0]
            if not path:
                raise TypeError(f"no initialisation rule for '{name}' (op of node '{owner}')")


def materialise(module: nn.Module) -> None:
    """Give every parameter and buffer on the meta device storage on the current default device,
    uninitialised (``initialise`` fills it). ``Module.to_empty`` does the same through
    ``_apply``, at several times the cost per tensor; this module is fresh, with no hooks or
    shared tensors to preserve."""
    for sub in module.modules():
        for name, p in sub._parameters.items():
            if p is not None and p.is_meta:
                fresh = torch.empty(p.shape, dtype=p.dtype)
                sub._parameters[name] = nn.Parameter(fresh, requires_grad=p.requires_grad)
        for name, b in sub._buffers.items():
            if b is not None and b.is_meta:
                sub._buffers[name] = torch.empty(b.shape, dtype=b.dtype)


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Module construction inside draws from ``seed``; the global RNG state is left untouched."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
