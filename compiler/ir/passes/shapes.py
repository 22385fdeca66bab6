"""Shape inference: each node's output shape from its inputs' shapes, by the op table's rule.

The expansion calls :func:`infer` node by node as it builds the graph (a block's shortcut rule
depends on its input's shape); :func:`run` re-infers a whole graph, for graphs built otherwise.
"""

from __future__ import annotations

from ...ops import OPS, Shape
from ..graph import Graph, Node


def infer(node: Node, in_shapes: list[Shape]) -> Shape:
    """Annotate ``node.meta['shape']``; raises ops.ShapeError when the inputs do not fit."""
    shape = OPS[node.op].shape(node.attrs, in_shapes)
    node.meta["shape"] = shape
    return shape


def run(graph: Graph) -> None:
    """Infer every node's shape in order."""
    for node in graph.nodes.values():
        infer(node, [graph.shape_of(i) for i in node.inputs])
