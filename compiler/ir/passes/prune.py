"""A network that returns feature maps keeps only the nodes they depend on: a backbone made from
a classifier (``outputs: [layer2, layer3, layer4]``) loses its head, its stages and its blocks."""

from __future__ import annotations

import dataclasses

from ..graph import Graph, feeding, within


def keep_what_feeds_the_outputs(graph: Graph) -> Graph:
    """``graph`` without the nodes none of its feature maps depends on, and without the stages
    and block instances left empty (the same graph when it returns no feature maps)."""
    if not graph.features:
        return graph
    needed = feeding(graph.nodes, [f.node for f in graph.features]) | graph.idle
    nodes = {name: node for name, node in graph.nodes.items() if name in needed}
    stages = []
    for stage in graph.stages:
        kept = [n for n in stage.nodes if n in needed]
        if kept:
            blocks = [b for b in stage.blocks if any(within(nodes[n].block, b) for n in kept)]
            stages.append(dataclasses.replace(stage, nodes=kept, blocks=blocks))
    blocks_kept = {b for stage in stages for b in stage.blocks}
    blocks_kept |= {
        b for b in graph.nested_blocks if any(within(n.block, b) for n in nodes.values())
    }
    return dataclasses.replace(
        graph,
        nodes=nodes,
        stages=stages,
        output=graph.features[-1].node,
        block_params={b: p for b, p in graph.block_params.items() if b in blocks_kept},
        nested_blocks={b: t for b, t in graph.nested_blocks.items() if b in blocks_kept},
    )
