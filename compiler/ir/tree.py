"""The module tree of a graph: its dotted node names as a tree of parts, and which parts can be
modules of their own (torch is not imported: the memory analysis reads it as the lowering does).

A part is *sealed* when its nodes run one after another (no node of another part runs in between)
and nothing outside it reads any of them but one, its output; a sealed part is called as one
module, which holds its inputs until it returns. A part the spec names in ``module_lists`` is
not: its children are called one by one from the enclosing module (torchvision's ModuleList
iterated in a forward), so each child's input is freed once that child has run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .graph import Graph, Node


@dataclass(kw_only=True)
class Part:
    """One dotted-path prefix of the node names (``layer1``, ``layer1.0``), or a leaf node."""

    path: str  # '' for the network
    children: dict[str, Part] = field(default_factory=dict)  # in the order they first run
    node: Node | None = None  # set for a leaf
    members: list[Node] = field(default_factory=list)  # every node below, in order
    inputs: list[str] = field(default_factory=list)  # values read from outside, in order
    output: str = ""  # the one value read outside (sealed parts and leaves)
    sealed: bool = False
    chain: bool = False  # sealed, and an nn.Sequential (set by the lowering)


def build_tree(graph: Graph) -> Part:
    """The parts of ``graph``, sealed."""
    root = Part(path="")
    for node in graph.nodes.values():
        part = root
        part.members.append(node)
        parts = node.name.split(".")
        for depth, name in enumerate(parts):
            child = part.children.get(name)
            if child is None:  # (a Part made only when new: networks have thousands of nodes)
                child = part.children[name] = Part(path=".".join(parts[: depth + 1]))
            part = child
            part.members.append(node)
        part.node = node
    order = {n: k for k, n in enumerate(graph.nodes)}
    _seal(root, order, graph.consumers(), set(graph.returns))
    for path in graph.module_lists:  # a list is no module of its own: its children are called
        listed: Part | None = root
        for name in path.split("."):
            listed = listed.children.get(name) if listed is not None else None
        if listed is not None:  # (none left when folding or pruning removed all its nodes)
            listed.sealed = False
    return root


def _seal(
    part: Part, order: dict[str, int], readers: dict[str, list[str]], returned: set[str]
) -> None:
    """Work out, bottom up, which parts are sealed."""
    for child in part.children.values():
        _seal(child, order, readers, returned)
    names = {n.name for n in part.members}
    part.inputs = list(dict.fromkeys(i for n in part.members for i in n.inputs if i not in names))
    exports = [
        n.name
        for n in part.members
        if n.name in returned or any(r not in names for r in readers[n.name])
    ]
    span = order[part.members[-1].name] - order[part.members[0].name] + 1
    # a node that runs another's module (share:) is called from a module that holds both
    foreign = any(n.shares and n.shares not in names for n in part.members)
    part.sealed = part.path == "" or (
        span == len(part.members) and len(exports) <= 1 and not foreign
    )
    part.output = exports[0] if exports else part.members[-1].name


def unit_below(part: Part, node: Node) -> Part | None:
    """The outermost sealed part strictly inside ``part`` that holds ``node``, if any."""
    names = node.name.split(".")
    start = len(part.path.split(".")) if part.path else 0
    current = part
    for depth in range(start, len(names) - 1):
        current = current.children[names[depth]]
        if current.sealed:
            return current
    return None
