"""Inference folding: each BatchNorm that directly follows a conv (and is that conv's only
reader) is folded into the conv, which gains a bias. A pure IR pass; the weights are folded by
:func:`compiler.inference.fold_module`, which uses the pairs this pass returns.
"""

from __future__ import annotations

import dataclasses

from ..ir import Graph, Node, Stage
from . import shapes, stats


def fold_batchnorm(graph: Graph) -> tuple[Graph, dict[str, str]]:
    """A new graph without foldable BNs, and the folded pairs {bn name: conv name}."""
    readers = graph.consumers()
    pairs: dict[str, str] = {}
    for node in graph.nodes.values():
        if node.op != "batchnorm" or len(node.inputs) != 1:
            continue
        src = graph.nodes.get(node.inputs[0])
        if src is not None and src.op == "conv" and readers[src.name] == [node.name]:
            pairs[node.name] = src.name
    nodes: dict[str, Node] = {}
    for node in graph.nodes.values():
        if node.name in pairs:
            continue
        inputs = [pairs.get(i, i) for i in node.inputs]
        attrs = dict(node.attrs)
        if node.name in pairs.values():
            attrs["bias"] = True
        nodes[node.name] = dataclasses.replace(node, inputs=inputs, attrs=attrs, meta={})
    stages = [
        Stage(
            s.name,
            s.section,
            s.block_type,
            list(s.blocks),
            [n for n in s.nodes if n not in pairs],
            s.shortcut,
        )
        for s in graph.stages
    ]
    output = pairs.get(graph.output, graph.output)
    folded = Graph(
        graph.name,
        graph.input_shape,
        nodes,
        output,
        stages,
        graph.description,
        graph.family,
        {k: v for k, v in graph.meta.items() if k == "spec"},
    )
    shapes.run(folded)  # re-inferred, not copied: the rewired graph must still type-check
    stats.run(folded)
    return folded, pairs
