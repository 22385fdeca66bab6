"""Inference lowering: fold each per-channel affine (BatchNorm) into the conv before it.

For y = a(conv(x)) with a(z) = scale * z + shift per channel (the op's ``fold`` rule):
w' = w * scale per output channel and b' = b * scale + shift. Exact in eval mode up to float
rounding.
"""

from __future__ import annotations

import functools

import torch
from torch import fx

from ..ir.graph import Graph
from ..ir.passes.fold import fold_affine
from ..ops import OPS
from .lower import lower


@torch.no_grad()
def fold_module(module: fx.GraphModule, graph: Graph) -> tuple[fx.GraphModule, Graph]:
    """The eval-mode equivalent of ``module`` with its affine ops folded into convs."""
    folded_graph, pairs = fold_affine(graph)
    folded = lower(folded_graph)
    source = module.state_dict()
    target = folded.state_dict()
    absorber_of = {conv: affine for affine, conv in pairs.items()}
    for key in target:
        owner, _, leaf = key.rpartition(".")
        if owner not in absorber_of:  # (a top-level bare parameter has no owner: '')
            target[key] = source[key]
            continue
        affine = graph.nodes[absorber_of[owner]]
        rule = OPS[affine.op].fold
        assert rule is not None  # fold_affine pairs only ops with a fold rule
        scale, shift = rule(affine.attrs, functools.partial(_entry, source, affine.name))
        if leaf == "weight":
            w = source[key]
            target[key] = w * scale.reshape(-1, *[1] * (w.dim() - 1))
        else:
            target[key] = source.get(key, torch.zeros_like(scale)) * scale + shift
    folded.load_state_dict(target, strict=True)
    if "weights" in module.meta:  # the load's report and the weights' preprocessing
        folded.meta["weights"] = module.meta["weights"]
    return folded.eval(), folded_graph


def _entry(state: dict[str, torch.Tensor], owner: str, leaf: str) -> torch.Tensor:
    return state[f"{owner}.{leaf}"]
