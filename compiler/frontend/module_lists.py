"""The spec's module paths checked against the expanded network. ``module_lists:``: each path
a container of the network's modules numbered 0 .. k-1, outside every block instance (a block
type's module is one class), whose children hold nodes. ``freeze:``: each a node or a container
of nodes."""

from __future__ import annotations

from typing import Any

from ..errors import Diagnostics
from ..ir.graph import Node
from .spec import NetworkSpec


def module_lists(
    spec: NetworkSpec,
    nodes: dict[str, Node],
    block_params: dict[str, dict[str, Any]],
    diags: Diagnostics,
) -> list[str]:
    """The module lists, in the spec's order; raises SpecError with every problem."""
    out: list[str] = []
    for k, path in enumerate(spec.module_lists):
        loc = spec.loc("module_lists", k)
        prefix = path + "."
        kids = list(
            dict.fromkeys(n[len(prefix) :].split(".")[0] for n in nodes if n.startswith(prefix))
        )
        inside = [b for b in block_params if path == b or path.startswith(b + ".")]
        leaves = [k for k in kids if f"{prefix}{k}" in nodes]
        if path in nodes:
            diags.error(loc, f"'{path}' is a node, not a container of modules")
        elif not kids:
            diags.error(
                loc,
                f"'{path}' holds no modules of this network",
                "a module list is a path its nodes' names start with, like blocks for "
                "blocks.0.conv",
            )
        elif kids != [str(i) for i in range(len(kids))]:
            diags.error(
                loc,
                f"'{path}' holds {', '.join(kids[:4])}: a module list's children are "
                "numbered 0, 1, 2 ...",
            )
        elif inside:
            diags.error(
                loc,
                f"'{path}' is a block"
                if path == inside[0]
                else f"'{path}' is inside the block '{inside[0]}'",
                "a module list is a container of the network's, outside its blocks",
            )
        elif leaves:
            diags.error(
                loc,
                f"'{prefix}{leaves[0]}' is a node: a module list's children are parts "
                "holding nodes",
                f"name its nodes {prefix}{leaves[0]}.0, {prefix}{leaves[0]}.1 ...",
            )
        elif path in out:
            diags.error(loc, f"'{path}' is already a module list")
        else:
            out.append(path)
    diags.raise_if_any()
    return out


def frozen_paths(spec: NetworkSpec, nodes: dict[str, Node], diags: Diagnostics) -> list[str]:
    """The spec's ``freeze:`` paths, each a node or a container of nodes (errors into
    ``diags``)."""
    out: list[str] = []
    for k, path in enumerate(spec.freeze):
        if path not in nodes and not any(n.startswith(path + ".") for n in nodes):
            tops = ", ".join(dict.fromkeys(n.split(".")[0] for n in nodes))
            diags.error(
                spec.loc("freeze", k),
                f"'freeze' names '{path}', which holds no module of this network",
                f"a module path like layer1 or backbone.body.conv1; the network's: {tops}",
            )
        elif path not in out:
            out.append(path)
    return out
