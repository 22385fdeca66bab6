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


def initialise(module: fx.GraphModule, graph: Graph, zero_init_residual: bool = False) -> None:
    """Initialise ``module`` (built from ``graph``) in place, in node order."""
    for node in graph.nodes.values():
        if node.op not in ("conv", "batchnorm", "linear"):
            continue
        m = module.get_submodule(node.name)
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            zero = zero_init_residual and node.attrs.get("zero_init", False)
            nn.init.constant_(m.weight, 0.0 if zero else 1.0)
            nn.init.constant_(m.bias, 0.0)


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Module construction inside draws from ``seed``; the global RNG state is left untouched."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
