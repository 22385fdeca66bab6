"""The summary `netc compile` prints: a per-stage table, or one JSON-ready dict (no torch)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..ir.graph import Feature, Graph
from ..ir.passes.memory import peak_bytes


def summary(graph: Graph) -> dict[str, Any]:
    """The JSON form of ``netc compile --json``."""
    out = graph.nodes[graph.output].shape
    return {
        "name": graph.name,
        "family": graph.family,
        "description": graph.description,
        "input_shape": list(graph.input_shape),
        "output_shape": list(out),
        "params": graph.params,
        "macs": graph.macs,
        "activation_bytes": graph.activation_bytes,
        # what an eval forward holds at once, per sample (compiler.ir.passes.memory)
        "peak_activation_bytes": peak_bytes(graph),
        "nodes": len(graph.nodes),
        "stages": [r.as_dict() for r in graph.counted.rows],
        "outputs": [
            {"name": f.name, "node": f.node, "shape": list(graph.shape_of(f.node))}
            for f in graph.features
        ],
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
        for r in graph.counted.rows
    ]
    out_shape = (
        f"{len(graph.features)} outputs"
        if len(graph.features) > 1
        else "x".join(map(str, graph.shape_of(graph.returns[0])))
    )
    total = (
        "total",
        "",
        "",
        out_shape,
        f"{graph.params:,}",
        f"{graph.macs:,}",
        f"{graph.activation_bytes / 2**20:.1f}",
    )
    fmt = aligned([head, *rows, total], right={1, 4, 5, 6})
    rule = "-" * len(fmt[0])
    lines = [
        f"{graph.name}: {graph.description}".rstrip(": "),
        fmt[0],
        rule,
        *fmt[1:-1],
        rule,
        fmt[-1],
        f"{graph.params / 1e6:.2f} M params, {graph.macs / 1e9:.3f} GMACs "
        f"({2 * graph.macs / 1e9:.3f} GFLOPs), input {list(graph.input_shape)}",
        f"activations per sample: {graph.activation_bytes / 2**20:,.1f} MiB if every output is "
        f"kept, {peak_bytes(graph) / 2**20:,.1f} MiB alive at once in an eval forward",
    ]
    if graph.output_keys:
        shown = ", ".join(
            f"{f.key}: {f.name} {shape_text(graph.shape_of(f.node))}{_mode(f)}"
            for f in graph.features
        )
        lines.append(f"returns a dict {{{shown}}}")
    elif graph.features:
        shown = ", ".join(
            f"{f.name} {shape_text(graph.shape_of(f.node))}{_mode(f)}" for f in graph.features
        )
        lines.append(f"returns {len(graph.features)} feature maps: {shown}")
    if graph.sizes is not None:
        lines.append(f"input sizes: {graph.sizes.text()} (each checked valid)")
    return "\n".join(lines)


def aligned(rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    """Rows as text columns two spaces apart, the columns in ``right`` right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in rows
    ]


def shape_text(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


def outputs_text(graph: Graph) -> str:
    """What the network returns, for one line: ``output [1000]``, or every output of a network
    of several (``outputs cls_logits [120087, 91], bbox_regression [120087, 4]``)."""
    if len(graph.features) <= 1:
        return f"output {list(graph.shape_of(graph.returns[0]))}"
    shown = ", ".join(
        f"{f.key or f.name} {list(graph.shape_of(f.node))}{_mode(f)}" for f in graph.features
    )
    return f"outputs {shown}"


def _mode(f: Feature) -> str:
    return " (eval only)" if f.eval_only else ""
