"""The ONNX export choices, importable without torch (the command line reads them)."""

from __future__ import annotations

from compiler.ir import Graph

EXPORTERS = ("dynamo", "torchscript", "netc")
DEFAULT_EXPORTER = "netc"  # ~3x faster than dynamo, the same outputs (docs/performance.md)
DEFAULT_OPSET = 18
# the oldest opset each exporter writes (netc: Pad and Slice take their numbers as inputs from 13)
MIN_OPSET = {"dynamo": 18, "netc": 13}


def output_names(graph: Graph) -> list[str]:
    """The ONNX outputs: 'output', or the name of each feature map a backbone returns."""
    return [f.name for f in graph.features] if graph.features else ["output"]
