"""The `netc` exporter: ONNX written straight from the IR by the op table's ONNX rules.

torch.onnx re-traces the module (the dynamo exporter: torch.export, decompositions, a registry of
torchlib functions, and a start-up of its own; docs/performance.md has the times). netc already
holds the network as a graph of a dozen primitive ops, so it can write the ONNX graph directly:
one node per IR node (two for a strided option-A shortcut), named by module path, with the
module's state_dict entries as initializers under their PyTorch names. The result goes through
the same checker and onnxruntime validation as the torch exporters' files.
"""

from __future__ import annotations

from typing import Any

import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from compiler import __version__
from compiler.ir.graph import INPUT, Graph
from compiler.ops import OPS, LowerContext, NotExportable

from .options import dynamic_sides, other_sizes, output_names


class _Builder:
    """The graph being written: nodes, initializers, the module's weights and which are used."""

    def __init__(self, weights: dict[str, torch.Tensor], opset: int) -> None:
        self.weights = weights
        self.opset = opset
        self.used: set[str] = set()
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []


class _NodeWriter:
    """The :class:`compiler.ops.OnnxWriter` for one IR node. Its last ONNX node, whose output is
    the IR node's value, takes the IR node's name (``layer2.0.shortcut``); any before it are named
    ``layer2.0.shortcut/Slice``."""

    def __init__(
        self, builder: _Builder, name: str, inputs: list[str], module: str | None = None
    ) -> None:
        self.builder, self.name, self.inputs = builder, name, inputs
        self.module = module or name  # whose weights it reads: another node's under share:
        self.first = len(builder.nodes)
        self.constants = 0

    @property
    def opset(self) -> int:
        return self.builder.opset

    def node(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        name = f"{self.name}/{op_type}{len(self.builder.nodes) - self.first or ''}"
        self.builder.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return name

    def param(self, leaf: str) -> str:
        key = f"{self.module}.{leaf}" if leaf else self.module  # '': the node's bare parameter
        if key not in self.builder.weights:
            raise NotExportable(f"the module has no '{key}' for node {self.name}")
        if key not in self.builder.used:
            self.builder.used.add(key)
            array = self.builder.weights[key].detach().cpu().contiguous().numpy()
            self.builder.initializers.append(numpy_helper.from_array(array, key))
        return key

    def ints(self, values: list[int]) -> str:
        return self._constant(TensorProto.INT64, [len(values)], values)

    def floats(self, values: list[float]) -> str:
        return self._constant(TensorProto.FLOAT, [len(values)], values)

    def scalar(self, value: float) -> str:
        return self._constant(TensorProto.FLOAT, [], [value])

    def _constant(self, dtype: int, dims: list[int], values: list[Any]) -> str:
        self.constants += 1
        name = f"{self.name}/const{self.constants}"
        self.builder.initializers.append(helper.make_tensor(name, dtype, dims, values))
        return name

    def finish(self, output: str, value: str) -> None:
        """Name the rule's last node after the IR node and its output ``value``."""
        last = self.builder.nodes[-1]
        if len(self.builder.nodes) == self.first or last.output[0] != output:
            raise NotExportable(f"the ONNX rule for {self.name} did not end with its output node")
        last.name, last.output[0] = self.name, value


def _varying(graph: Graph) -> dict[str, list[bool]]:
    """For each returned node of a graph with ``sizes:``, which of its dims change with the
    input's sides (compared at another accepted size)."""
    from compiler.ir.passes.sizes import shapes_at

    others = other_sizes(graph)  # the validation's other size (square here: any accepted side)
    if not others:
        return {}
    shapes = shapes_at(graph, others[0][-1])
    return {
        n: [a != b for a, b in zip(graph.shape_of(n), shapes[n], strict=True)]
        for n in graph.returns
    }


def build(module: nn.Module, graph: Graph, opset: int) -> onnx.ModelProto:
    """The ONNX model of ``graph`` with ``module``'s weights; raises NotExportable.
    ``opset`` is not checked here: exporters/onnx.py refuses opsets below 13 first."""
    state = module.state_dict()
    builder = _Builder(state, opset)
    names = {INPUT: "input"}
    returned = dict(zip(graph.returns, output_names(graph), strict=True))
    for node in (graph.nodes[n] for n in graph.deployed()):
        ctx = LowerContext([graph.shape_of(i) for i in node.inputs], node.shape, False)
        writer = _NodeWriter(builder, node.name, [names[i] for i in node.inputs], node.shares)
        rule = OPS[node.op].onnx
        if rule is None:  # a plugin's op without one (exporters/onnx.py refuses it first)
            raise NotExportable(f"op '{node.op}' of node {node.name} has no ONNX rule")
        out = rule(node.attrs, ctx, writer)
        value = returned.get(node.name, node.name)
        if value in builder.used:  # a bare parameter holds the node's name (layer_scale)
            value = f"{value}/output"
        writer.finish(out, value)
        names[node.name] = value
    # every learned tensor must have gone into the file: a module that does not match its graph
    # (an extra layer, a renamed one) is refused here rather than exported without it
    # (the training-only outputs' layers are not deployed: they are left out on purpose)
    training_only = tuple(f"{n}." for n in set(graph.nodes) - set(graph.deployed()))
    unused = sorted(
        k
        for k, v in module.named_parameters()
        if k not in builder.used and v.numel() > 0 and not k.startswith(training_only)
    )
    if unused:
        raise NotExportable(f"the graph does not use the module's {', '.join(unused[:5])}")
    # with `sizes:`, the output dims that change with the input's are left to shape inference
    varying, sides = _varying(graph), dynamic_sides(graph)
    outputs = [
        helper.make_tensor_value_info(
            value,
            TensorProto.FLOAT,
            [
                "batch",
                *[
                    f"{value}_{sides.get(k + 1, f'dim{k + 1}')}"
                    if node in varying and varying[node][k]
                    else d
                    for k, d in enumerate(graph.shape_of(node))
                ],
            ],
        )
        for node, value in returned.items()
    ]
    dims = [sides.get(k + 1, d) for k, d in enumerate(graph.input_shape)]
    onnx_graph = helper.make_graph(
        builder.nodes,
        graph.name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", *dims])],
        outputs,
        builder.initializers,
    )
    opsets = [helper.make_opsetid("", opset)]
    return helper.make_model(
        onnx_graph,
        opset_imports=opsets,
        ir_version=helper.find_min_ir_version_for(opsets),  # the oldest runtime that can load it
        producer_name="netc",
        producer_version=__version__,
        doc_string=graph.description,
    )
