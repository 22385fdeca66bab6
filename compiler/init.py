"""Weight initialisation as torchvision's ResNet does it, reproducible from a seed.

Convs: kaiming normal (fan_out, relu); BatchNorm: weight 1, bias 0; linear: PyTorch's default.
With ``zero_init_residual`` the BN a block type marks ``zero_init: true`` (the last of each
residual branch) starts at weight 0, so each block begins as the identity (Goyal et al. 2017).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import fx, nn

from .ir import Graph
from .ops import OPS


def initialise(module: fx.GraphModule, graph: Graph, zero_init_residual: bool = False) -> None:
    """Give every parameter and buffer of ``module`` its initial value, in node order.

    The module may come from :func:`compiler.lower.lower` on the meta device and ``to_empty``:
    nothing is assumed initialised, and every module with state is one this function knows, so
    no tensor is left with uninitialised memory.
    """
    for node in graph.nodes.values():
        if not OPS[node.op].params(node.attrs, [graph.shape_of(i) for i in node.inputs],
                                   node.shape) and node.op != "batchnorm":  # fmt: skip
            continue
        m = module.get_submodule(node.name)
        if isinstance(m, nn.Conv2d):
            if m.bias is not None:
                m.reset_parameters()  # PyTorch's default bias init needs the default weight's fan
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.reset_parameters()  # weight 1, bias 0, running mean 0 / var 1, batches 0
            if zero_init_residual and node.attrs.get("zero_init", False):
                nn.init.zeros_(m.weight)
        elif isinstance(m, nn.Linear):
            m.reset_parameters()  # PyTorch's default, as torchvision leaves it
        else:
            raise TypeError(f"no initialisation rule for {type(m).__name__} ('{node.name}')")


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Module construction inside draws from ``seed``; the global RNG state is left untouched."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
