"""Inference lowering: fold BatchNorm into the preceding conv and rebuild the module.

For y = BN(conv(x)): w' = w * g / sqrt(v + eps) per output channel, and
b' = (b - m) * g / sqrt(v + eps) + beta. Exact in eval mode up to float rounding.
"""

from __future__ import annotations

import torch
from torch import fx

from .ir import Graph
from .lower import lower
from .passes.fold import fold_batchnorm


@torch.no_grad()
def fold_module(module: fx.GraphModule, graph: Graph) -> tuple[fx.GraphModule, Graph]:
    """The eval-mode equivalent of ``module`` with BatchNorms folded into convs."""
    folded_graph, pairs = fold_batchnorm(graph)
    folded = lower(folded_graph)
    source = module.state_dict()
    target = folded.state_dict()
    conv_to_bn = {conv: bn for bn, conv in pairs.items()}
    for key in target:
        owner, leaf = key.rsplit(".", 1)
        if owner in conv_to_bn:
            bn = conv_to_bn[owner]
            scale = source[f"{bn}.weight"] / torch.sqrt(
                source[f"{bn}.running_var"] + graph.nodes[bn].attrs["eps"]
            )
            if leaf == "weight":
                target[key] = source[key] * scale.reshape(-1, 1, 1, 1)
            else:
                bias = source.get(key, torch.zeros_like(scale))
                target[key] = (bias - source[f"{bn}.running_mean"]) * scale + source[f"{bn}.bias"]
        else:
            target[key] = source[key]
    folded.load_state_dict(target, strict=True)
    return folded.eval(), folded_graph
