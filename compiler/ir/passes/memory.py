"""Which values may be overwritten in place, and the peak activation memory of an inference
forward: what the compiler knows about every value's size and lifetime (torch is not imported).

The generated forward runs the nodes in IR order, and torch.fx drops each name after its last
use, so a value's memory is held from the node that makes it until its last reader has run. A
node that returns a view of its input (flatten, permute, chunk, crop, identity, and dropout or
stochastic depth in eval mode) makes no memory of its own: it keeps its input's alive. A node that
writes into its input (a ReLU after a conv, torchvision's ``out += identity``) makes none either.
During a node its inputs and its output are alive together, which is where the peak is taken.
Memory an op uses inside itself (a convolution's workspace) and the network's input and weights
are not counted.
"""

from __future__ import annotations

import dataclasses
import math

from ...ops import OPS
from ..graph import INPUT, Graph
from ..tree import Part, build_tree, unit_below
from .stats import BYTES_PER_VALUE


def inplace_plan(graph: Graph) -> dict[str, bool]:
    """For each node, whether it may overwrite its first input: nothing else reads that value
    (no skip edge from it), it is not the caller's tensor or a returned feature, and the op that
    made it does not need it for its own backward."""
    readers = graph.consumers()
    returned = set(graph.returns)
    fresh: dict[str, bool] = {INPUT: False}  # may the one reader of this value overwrite it
    allowed: dict[str, bool] = {}
    for node in graph.nodes.values():
        first = node.inputs[0] if node.inputs else INPUT
        op = OPS[node.op]
        fresh[node.name] = op.fresh_output or (
            # dropout / stochastic depth hand their input on in eval: as fresh as it is
            op.passes_through
            and fresh[first]
            and len(readers[first]) == 1
            and first not in returned
        )
        allowed[node.name] = (
            first != INPUT
            and len(readers[first]) == 1
            and first not in returned  # a feature output keeps its own value
            and fresh[first]
        )
    # one module serves its node and those that share it: in place only if in place for all
    sharers = [n for n in graph.nodes.values() if n.shares]
    for node in sharers:
        allowed[node.shares] = allowed[node.shares] and allowed[node.name]  # type: ignore[index]
    for node in sharers:
        allowed[node.name] = allowed[node.shares]  # type: ignore[index]
    return allowed


def peak_bytes(graph: Graph, batch: int = 1) -> int:
    """The most activation memory alive at once in an eval-mode forward of ``batch`` samples."""
    if graph.aux:  # training-only outputs do not run in eval mode
        kept = set(graph.deployed())
        nodes = {k: n for k, n in graph.nodes.items() if k in kept}
        graph = dataclasses.replace(graph, nodes=nodes, aux=[])
    inplace = inplace_plan(graph)
    release = _release_points(graph)
    order = list(graph.nodes)
    freed_at: dict[int, list[str]] = {}
    for value, k in release.items():
        freed_at.setdefault(k, []).append(value)
    storage: dict[str, str] = {INPUT: INPUT}  # value -> the node whose memory holds it
    size: dict[str, int] = {INPUT: 0}  # the caller's input is not counted
    holders: dict[str, int] = {INPUT: 1}  # live values per memory
    live = peak = 0
    for k, name in enumerate(order):
        node = graph.nodes[name]
        op = OPS[node.op]
        first = node.inputs[0] if node.inputs else INPUT
        writes = op.overwrites is not None and op.overwrites(node.attrs, len(node.inputs))
        if op.view or (writes and inplace[name]):
            home = storage[first]
        else:
            home = name
            size[home] = math.prod(node.shape) * BYTES_PER_VALUE * batch
            live += size[home]
        storage[name] = home
        holders[home] = holders.get(home, 0) + 1
        peak = max(peak, live)
        for value in freed_at.get(k, []):
            memory = storage[value]
            holders[memory] -= 1
            if holders[memory] == 0:
                live -= size[memory]
    return peak


def _release_points(graph: Graph) -> dict[str, int]:
    """For each value that is not returned, the index of the node after which nothing holds it.

    A value is a local of the forward of the innermost module that holds both its node and a
    reader; that forward passes it to the module around the reader (a block, a stage) and lets it
    go when that call returns, so its memory lives until the last node of that module."""
    tree = build_tree(graph)
    index = {name: k for k, name in enumerate(graph.nodes)}
    returned = set(graph.returns)
    readers = graph.consumers()
    release: dict[str, int] = {}
    for node in graph.nodes.values():
        if not readers[node.name] and node.name not in returned:
            release[node.name] = index[node.name]  # read by nothing: dropped at once
        # a value a node holds is released after it, as after a reader
        held = (h for h in node.holds if h in graph.nodes)  # (aux pruned)
        for value in [*node.inputs, *held]:
            if value in returned:
                continue
            frame = _frame(tree, value, node.name)
            unit = unit_below(frame, node)
            end = index[unit.members[-1].name] if unit is not None else index[node.name]
            release[value] = max(release.get(value, -1), end)
    return release


def _frame(tree: Part, a: str, b: str) -> Part:
    """The innermost sealed part (module) that holds both values' nodes: the network for the
    input."""
    frame = tree
    if a == INPUT:
        return frame
    part = tree
    for x, y in zip(a.split("."), b.split("."), strict=False):
        if x != y or x not in part.children:
            break
        part = part.children[x]
        if part.node is not None:
            break
        if part.sealed:
            frame = part
    return frame
