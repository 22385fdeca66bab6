"""Inference folding: each per-channel affine op (an op with ``Op.fold``: BatchNorm) that directly
follows an op that ``absorbs`` it (a conv), and is that op's only reader, disappears into it. A
pure IR pass; :func:`compiler.lowering.folding.fold_module` folds the weights by the pairs it
returns.
"""

from __future__ import annotations

import dataclasses

from ...ops import OPS
from ..graph import Graph, Node
from . import shapes, stats


def fold_affine(graph: Graph) -> tuple[Graph, dict[str, str]]:
    """A new graph without the foldable nodes, and the folded pairs {folded: absorbing node}."""
    readers = graph.consumers()
    pairs: dict[str, str] = {}
    # a module run by several nodes (share:) keeps its own weights: folding would change them
    # for every caller at once
    shared = {n.shares for n in graph.nodes.values() if n.shares}
    shared |= {n.name for n in graph.nodes.values() if n.shares}
    for node in graph.nodes.values():
        if OPS[node.op].fold is None or len(node.inputs) != 1 or node.name in shared:
            continue
        src = graph.nodes.get(node.inputs[0])
        if src is not None and OPS[src.op].absorbs is not None and readers[src.name] == [node.name]:
            pairs[node.name] = src.name
    folded_into = {conv: affine for affine, conv in pairs.items()}  # (one affine per conv)
    nodes: dict[str, Node] = {}
    for node in graph.nodes.values():
        if node.name in pairs:
            continue
        absorbs = OPS[node.op].absorbs
        attrs = absorbs(node.attrs) if absorbs and node.name in folded_into else dict(node.attrs)
        inputs = [pairs.get(i, i) for i in node.inputs]
        # a held value folded away is its absorbing node's; a folded node's holds pass to it
        held = list(node.holds)
        if node.name in folded_into:
            held += graph.nodes[folded_into[node.name]].holds
        held = [h for h in dict.fromkeys(pairs.get(h, h) for h in held) if h != node.name]
        # the spec's fields are copied by replace; only the passes' annotations start afresh
        nodes[node.name] = dataclasses.replace(
            node, inputs=inputs, attrs=attrs, holds=held, holds_locs=[], meta={}
        )
    stages = [
        dataclasses.replace(s, blocks=list(s.blocks), nodes=[n for n in s.nodes if n not in pairs])
        for s in graph.stages
    ]
    # a returned value that was folded away is now its absorbing node's (the same values)
    features = [dataclasses.replace(f, node=pairs.get(f.node, f.node)) for f in graph.features]
    folded = dataclasses.replace(
        graph,
        nodes=nodes,
        output=pairs.get(graph.output, graph.output),
        stages=stages,
        features=features,
        totals=None,
    )
    shapes.run(folded)  # re-inferred, not copied: the rewired graph must still type-check
    stats.run(folded)
    return folded, pairs
