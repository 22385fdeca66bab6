"""The ONNX export choices, importable without torch (the command line reads them)."""

from __future__ import annotations

EXPORTERS = ("dynamo", "torchscript", "netc")
DEFAULT_EXPORTER = "dynamo"
DEFAULT_OPSET = 18
# the oldest opset each exporter writes (netc: Pad and Slice take their numbers as inputs from 13)
MIN_OPSET = {"dynamo": 18, "netc": 13}
