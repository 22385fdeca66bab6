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
