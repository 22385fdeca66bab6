"""Block types on their own, for the command line: `netc list --blocks` (the library's block
types with their parameters) and `netc check` of a block type file (one block, checked as the
diagrams draw it)."""

from __future__ import annotations

import os

from ..errors import one_line
from ..frontend.block_network import block_network
from ..frontend.lookup import is_block_file, library_root
from ..frontend.source import load_file
from ..ir.graph import within


def is_block_path(path: str) -> bool:
    """Whether ``path`` is a block type file (``block:`` and ``nodes:``), not a network; a file
    that cannot be read is left to the spec loader, which reports it."""
    try:
        return is_block_file(load_file(path).data)
    except Exception:
        return False


def check_line(path: str, shown: str, params: list[str]) -> str:
    """``ok: ...`` for a block type file that checks as one block; raises SpecError otherwise.
    Required parameters are 64 unless ``params`` (``key=value``) set them."""
    graph, block = block_network(path, params)
    nodes = [n for n in graph.nodes.values() if within(n.block, block)]
    params_count = sum(n.meta.get("params", 0) for n in nodes)
    macs = sum(n.meta.get("macs", 0) for n in nodes)
    into, out = list(graph.input_shape), list(graph.shape_of(graph.output))
    return (
        f"ok: {one_line(shown)} (block type {graph.name.removesuffix('_block')}: one block "
        f"{into} -> {out}, {params_count:,} params, {macs:,} MACs)"
    )


def block_rows() -> list[tuple[str, str, str]]:
    """(name, parameters with defaults, description) of each block type in the library's
    blocks/ folder."""
    folder = os.path.join(library_root(), "blocks")
    rows = []
    for entry in sorted(os.listdir(folder)):
        if not entry.endswith(".yaml"):
            continue
        data = load_file(os.path.join(folder, entry)).data
        if not is_block_file(data):
            continue
        declared = data.get("params") or {}
        params = ", ".join(
            f"{k}" if v is None else f"{k}={v}" for k, v in declared.items()
        )  # required ones bare
        text = " ".join(str(data.get("description", "")).split())
        rows.append((data["block"], params or "-", text))
    return rows
