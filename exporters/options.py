"""The ONNX export and drawing choices, importable without torch (the command line reads them)."""

from __future__ import annotations

from compiler.ir.graph import Graph

EXPORTERS = ("dynamo", "torchscript", "netc")
DEFAULT_EXPORTER = "netc"  # ~3x faster than dynamo, the same outputs (docs/performance.md)
DEFAULT_OPSET = 18
# the oldest opset each exporter writes (netc: Pad and Slice take their numbers as inputs from 13)
MIN_OPSET = {"dynamo": 18, "netc": 13}
# Graphviz's layout grows faster than the drawing: ResNet-1001 at --detail ops (8,000 lines of
# DOT) takes 4 s, DenseNet-201 (3,562 lines, dense edges) 200 s
DOT_TIMEOUT_S = 120.0
MAX_STATEMENTS = 20_000  # nodes and edges a drawing may hand to dot


def output_names(graph: Graph) -> list[str]:
    """The ONNX outputs: 'output'; the name of each feature map a backbone returns; or the keys
    of a network that returns a dict (``outputs: {out: classifier, aux: aux_classifier}``)."""
    return [f.key or f.name for f in graph.features] if graph.features else ["output"]


def dynamic_sides(graph: Graph) -> dict[int, str]:
    """The input's axes (after the batch's 0) that an export leaves free, with their names:
    every spatial side of a spec with ``sizes:`` ({2: 'height', 3: 'width'}), none otherwise."""
    if graph.sizes is None:
        return {}
    names = {1: ["length"], 2: ["height", "width"], 3: ["time", "height", "width"]}
    return dict(enumerate(names[len(graph.input_shape) - 1], start=2))


def other_sizes(graph: Graph) -> list[tuple[int, ...]]:
    """Besides the written input, the sizes an export with dynamic sides is checked at: one
    rectangle of two other accepted sides, near 3/4 and 5/8 of the written one (or above it),
    so a side baked into the file, or height and width swapped, shows."""
    rule, shape = graph.sizes, tuple(graph.input_shape)
    if rule is None:
        return []
    c, side = shape[0], shape[-1]
    picks = []
    for frac in (0.75, 0.625, 0.5, 1.25, 1.5):
        n = rule.first(max(1, int(side * frac)))
        if n is not None and n != side and n not in picks:
            picks.append(n)
    if not picks:
        return []
    rank = len(shape) - 1
    sides = [picks[min(i, len(picks) - 1)] for i in range(rank)][::-1]
    return [(c, *sides)]
