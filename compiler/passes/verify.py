"""Structural verification of an IR graph, as a table of rules; each failure names the node.

Expansion already refuses most of these with located errors; the verifier is the independent
check (like torch.fx's ``Graph.lint``) that any graph, however built, is well formed before it is
lowered.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Iterator

from ..errors import UNKNOWN, Diagnostic, SpecError
from ..ir import INPUT, Graph, Node
from ..ops import OPS

Rule = Callable[[Graph, Node, set[str]], Iterator[str]]
_PART = re.compile(r"[A-Za-z0-9_-]+")


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
    # identifier, such as 'block1-0' or '0', is read with getattr); clashes with torch's own
    # attributes, like 'forward', are refused by the lowering
    for p in n.name.split("."):
        if keyword.iskeyword(p):
            yield f"'{p}' is a Python keyword and cannot name a module; rename it"


def _path_prefix(g: Graph, n: Node, seen: set[str]) -> Iterator[str]:
    # a module cannot also be a container: 'conv1' and 'conv1.0' cannot both be nodes
    parts = n.name.split(".")
    for k in range(1, len(parts)):
        prefix = ".".join(parts[:k])
        if prefix in g.nodes:
            yield f"'{n.name}' sits inside node '{prefix}'; a node cannot also be a container"


RULES: list[Rule] = [_known_op, _inputs_earlier, _arity, _name, _path_prefix]


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
    if graph.output not in graph.nodes:
        loc = next(iter(graph.nodes.values())).loc if graph.nodes else UNKNOWN
        diags.append(Diagnostic(loc, f"output '{graph.output}' is not a node"))
    if diags:
        raise SpecError(diags)
