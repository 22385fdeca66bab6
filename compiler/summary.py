"""The summary `netc compile` prints: a per-stage table, or one JSON-ready dict (no torch)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .ir import Graph


def summary(graph: Graph) -> dict[str, Any]:
    """The JSON form of ``netc compile --json``."""
    out = graph.nodes[graph.output].shape
    return {
        "name": graph.name,
        "family": graph.family,
        "description": graph.description,
        "input_shape": list(graph.input_shape),
        "output_shape": list(out),
        "params": graph.meta["params"],
        "macs": graph.meta["macs"],
        "activation_bytes": graph.meta["activation_bytes"],
        "nodes": len(graph.nodes),
        "stages": [r.as_dict() for r in graph.meta["rows"]],
    }


def table(graph: Graph) -> str:
    """The per-stage table of ``netc compile``."""
    head = ("stage", "blocks", "block", "output", "params", "MACs", "act. MiB")
    rows = [
        (
            r.stage,
            str(r.blocks or "-"),
            r.block_type,
            "x".join(map(str, r.output_shape)),
            f"{r.params:,}",
            f"{r.macs:,}",
            f"{r.activation_bytes / 2**20:.1f}",
        )
        for r in graph.meta["rows"]
    ]
    out_shape = "x".join(map(str, graph.nodes[graph.output].shape))
    total = (
        "total",
        "",
        "",
        out_shape,
        f"{graph.meta['params']:,}",
        f"{graph.meta['macs']:,}",
        f"{graph.meta['activation_bytes'] / 2**20:.1f}",
    )
    widths = [max(len(r[i]) for r in [head, *rows, total]) for i in range(len(head))]
    right = {1, 4, 5, 6}

    def fmt(r: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()

    rule = "-" * len(fmt(head))
    lines = [
        f"{graph.name}: {graph.description}".rstrip(": "),
        fmt(head),
        rule,
        *map(fmt, rows),
        rule,
        fmt(total),
        f"{graph.meta['params'] / 1e6:.2f} M params, {graph.meta['macs'] / 1e9:.3f} GMACs "
        f"({2 * graph.meta['macs'] / 1e9:.3f} GFLOPs), input {list(graph.input_shape)}",
    ]
    return "\n".join(lines)
