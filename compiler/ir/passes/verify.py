"""Structural verification of an IR graph, as a table of rules; each failure names the node.

Expansion already refuses most of these with located errors; the verifier is the independent
check (like torch.fx's ``Graph.lint``) that any graph, however built, is well formed before it is
lowered.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Iterator

from ...errors import UNKNOWN, Diagnostic, SpecError
from ...ops import OPS
from ..graph import INPUT, MODULE_PART, Graph, Node
from ..module_attributes import MODULE_ATTRIBUTES

Rule = Callable[[Graph, Node, set[str]], Iterator[str]]
_PART = MODULE_PART


def _known_op(g: Graph, n: Node, seen: set[str]) -> Iterator[str]:
    if n.op not in OPS:
        yield f"unknown op '{n.op}'"


def _inputs_earlier(g: Graph, n: Node, seen: set[str]) -> Iterator[str]:
    for i in n.inputs:
        if i != INPUT and i not in seen:
            yield f"input '{i}' is not defined before it"


def _arity(g: Graph, n: Node, seen: set[str]) -> Iterator[str]:
    op = OPS.get(n.op)
    problem = op.arity_error(len(n.inputs)) if op else None
    if problem:
        yield problem


def _name(g: Graph, n: Node, seen: set[str]) -> Iterator[str]:
    if n.name == INPUT or not n.name or any(not part for part in n.name.split(".")):
        yield f"'{n.name}' is not a valid module path"
    if any(not _PART.fullmatch(p) for p in n.name.split(".") if p):
        yield (
            f"'{n.name}': each part of a module path is letters, digits, '_' and '-' "
            "(torchvision's RegNet has 'block1-0')"
        )
    # a keyword cannot name a module (generated source reads `self.layer1`; a part that is no
    # identifier, such as 'block1-0' or '0', is read with getattr); nor can a torch module's
    # own attribute, like 'forward' or 'half' (the lowering checks the installed torch again)
    for p in n.name.split("."):
        if keyword.iskeyword(p):
            yield f"'{p}' is a Python keyword and cannot name a module; rename it"
        elif p in MODULE_ATTRIBUTES:
            yield (
                f"'{p}' is the name of a torch module attribute and cannot name a module; rename it"
            )
        elif p == "self":  # generated forwards read their modules through it
            yield "'self' cannot name a module; rename it"


def _path_prefix(g: Graph, n: Node, seen: set[str]) -> Iterator[str]:
    # a module cannot also be a container: 'conv1' and 'conv1.0' cannot both be nodes
    parts = n.name.split(".")
    for k in range(1, len(parts)):
        prefix = ".".join(parts[:k])
        if prefix in g.nodes:
            yield f"'{n.name}' sits inside node '{prefix}'; a node cannot also be a container"


def _batchless_read(g: Graph, n: Node, seen: set[str]) -> Iterator[str]:
    """A value without a batch dimension goes only where its op allows (anchor points into
    dist2bbox), and is not returned."""
    for i in n.inputs:
        source = g.nodes.get(i)
        if source is None or source.op not in OPS:
            continue
        readers = OPS[source.op].read_only_by
        if readers and n.op not in readers:
            yield (
                f"reads '{i}' ({source.op}), a value without a batch dimension, which only "
                f"{', '.join(readers)} reads"
            )


def _batchless_returned(g: Graph) -> Iterator[Diagnostic]:
    for name in g.returns:
        node = g.nodes.get(name)
        if node is not None and node.op in OPS and OPS[node.op].read_only_by:
            yield Diagnostic(
                node.loc,
                f"node '{name}' ({node.op}) has no batch dimension and cannot be an output; "
                f"{', '.join(OPS[node.op].read_only_by)} reads it",
            )


RULES: list[Rule] = [_known_op, _inputs_earlier, _arity, _name, _path_prefix, _batchless_read]


def _holds(graph: Graph) -> Iterator[Diagnostic]:
    """A held value must be at hand where the holder runs: an input of the holder's module, one
    of its own nodes, or the output of a module directly inside it (a value inside a nested
    module is that module's local)."""
    holders = [n for n in graph.nodes.values() if n.holds]
    if not holders:
        return
    from ..tree import build_tree, unit_below

    tree = build_tree(graph)
    # an eval forward runs only these: a node it runs cannot keep one only training computes
    deployed = set(graph.deployed()) if graph.aux else None
    for node in holders:
        locs = node.holds_locs or [node.loc] * len(node.holds)
        frame = part = tree
        for segment in node.name.split(".")[:-1]:
            part = part.children[segment]
            if part.sealed:
                frame = part
        names = {m.name for m in frame.members}
        for held, loc in zip(node.holds, locs, strict=True):
            if deployed is not None and node.name in deployed and held not in deployed:
                yield Diagnostic(
                    loc,
                    f"node '{node.name}' holds '{held}', which only the training outputs "
                    "(aux_outputs) need: an eval forward does not compute it",
                    ["hold it from a node of the training outputs' branch"],
                )
                continue
            unit = unit_below(frame, graph.nodes[held]) if held in names else None
            if held in frame.inputs or (held in names and (unit is None or unit.output == held)):
                continue
            yield Diagnostic(
                loc,
                f"node '{node.name}' holds '{held}', which is inside a module of its own there"
                + (f" ('{unit.path}', whose output is '{unit.output}')" if unit else ""),
                ["hold a value of the holder's own module, or a nested module's output"],
            )


def run(graph: Graph) -> None:
    """Check every rule on every node; raise SpecError listing all failures."""
    seen: set[str] = set()
    diags: list[Diagnostic] = []
    reported: set[tuple[str, int, int, Rule]] = set()  # one report per spec line and rule
    for node in graph.nodes.values():
        for rule in RULES:
            key = (node.loc.file, node.loc.line, node.loc.col, rule)
            if key in reported:
                continue  # every block of a stage repeats its block type's mistake
            messages = [f"node '{node.name}': {msg}" for msg in rule(graph, node, seen)]
            if messages and node.loc is not UNKNOWN:
                reported.add(key)
            diags.extend(Diagnostic(node.loc, m) for m in messages)
        seen.add(node.name)
    if not diags:  # (the tree needs a well-formed graph)
        diags.extend(_holds(graph))
    diags.extend(_batchless_returned(graph))
    if graph.output not in graph.nodes:
        loc = next(iter(graph.nodes.values())).loc if graph.nodes else UNKNOWN
        diags.append(Diagnostic(loc, f"output '{graph.output}' is not a node"))
    if diags:
        raise SpecError(diags)
