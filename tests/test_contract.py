"""The contract, tested from the op table: whatever ``netc check`` accepts, ``compile``, ``export``
(each exporter) and ``diagram`` build without error, and the built module's parameters, MACs and
output shape equal the analysis.

Networks are generated from the op table's attribute schemas, not from the library: every op,
every attribute at its boundary values (0, 1, the bounds, just past them, wrong types) and random
small graphs of them. A new op joins the generator by being in ``compiler.ops.OPS``. Each case
either gives a located SpecError or satisfies the contract.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

import compiler
from compiler.errors import SpecError
from compiler.frontend.load import front_end
from compiler.frontend.source import parse
from compiler.lowering.folding import fold_module
from compiler.ops import OPS, REQUIRED, Attr
from exporters import graphviz as gv
from exporters.onnx import ExportError, export
from exporters.options import EXPORTERS
from tests.fuzz_counter import count

pytestmark = pytest.mark.fuzz

DEADLINE_MS = 20_000  # a case builds, runs forward and backward and exports
# a fitting input for an op no adapter gives one: a YOLO head's rows of 4 x 16 bins, and the
# distances, anchor points and strides of 25 cells
FITTING: dict[str, dict[str, Any]] = {
    "dfl": {
        "rows": {"op": "conv", "out": 64, "kernel": 1},
        "flat": {"op": "view", "shape": [64, -1]},
    },
    "dist2bbox": {
        "rows": {"op": "conv", "out": 64, "kernel": 1},
        "flat": {"op": "view", "shape": [64, -1]},
        "sides": {"op": "dfl"},
        "points": {"op": "anchor_points", "in": ["input"], "strides": [8]},
        "strides": {"op": "anchor_points", "in": ["input"], "strides": [8], "index": 1},
    },
}
# what reads an op's value where the network cannot return it (anchor points, no batch
# dimension): a decoding of 25 cells' boxes from their points
READERS: dict[str, dict[str, Any]] = {
    "anchor_points": {
        "strides": {"op": "anchor_points", "in": ["input"], "strides": [8], "index": 1},
        "rows": {"op": "conv", "in": "input", "out": 64, "kernel": 1},
        "flat": {"op": "view", "shape": [64, -1]},
        "sides": {"op": "dfl"},
        "boxes": {"op": "dist2bbox", "in": ["sides", "node", "strides"]},
    },
}


def _numbers(attr: Attr, whole: bool) -> list[Any]:
    """0, 1, each bound, just past each bound, and a few ordinary values."""
    step = 1 if whole else 1e-6
    out: list[Any] = [0, 1, 2, 3, -1] if whole else [0.0, 1.0, 0.5, 1e-5, 0.1, -0.1]
    for bound, past in ((attr.min, -step), (attr.max, step)):
        if bound is not None:
            b = int(bound) if whole else float(bound)
            out += [b, b + past, b - past]
    return out


def attr_values(attr: Attr) -> list[Any]:
    """The values an attribute is tried with, wrong types included."""
    if attr.kind == "int":
        return [*_numbers(attr, True), 7, 1.5, "2 * 2", True, "x"]
    if attr.kind in ("size", "padding"):  # conv's kernel and padding: n or [h, w]; or a word
        sizes = [*_numbers(attr, True), 7, [1, 3], [3, 1], [0, 2], [2], [1, 2, 3], [1, "x"], True]
        sizes += [[1, 2, 3, 4], [], [1, 0, 1]]  # one side per spatial dimension, at most three
        return sizes + ([*attr.choices, "nope", "sam e"] if attr.kind == "padding" else [])
    if attr.kind == "float":
        return [*_numbers(attr, False), 2, True, "1 / 4", "y"]
    if attr.kind == "bool":
        return [True, False, 1, "yes"]
    if attr.kind == "ints":  # permute's dims: orders, a batch moved, too short, a repeat;
        # a reduction's: from the end, one past the last; split's sizes: of 3 and 4 channels, an
        # empty piece
        dims = [[0, 2, 3, 1], [0, 3, 1, 2], [1, 0, 2, 3], [0, 1], [0, 1, 1, 2], [-1], [3], 3, "x"]
        return [*dims, [1, 2], [2, 2], [1, 1, 2], [3, 0]]
    return [*attr.choices, "nope", 3]


def valid_values(attr: Attr) -> st.SearchStrategy[Any]:
    """Values inside the attribute's range (small ones: the networks stay tiny)."""
    if attr.kind in ("int", "size", "padding"):
        low = int(attr.min or 0) + int(attr.min_open)
        side = st.integers(low, low + 3 if attr.max is None else int(attr.max))
        if attr.kind == "int":
            return side
        size = st.one_of(side, st.lists(side, min_size=1, max_size=3))  # n, or one per side
        return st.one_of(size, st.sampled_from(attr.choices)) if attr.choices else size
    if attr.kind == "float":
        low, high = attr.min or 0.0, 1.0 if attr.max is None else attr.max
        return st.floats(low, high, exclude_min=attr.min_open, exclude_max=attr.max_open)
    if attr.kind == "bool":
        return st.booleans()
    if attr.kind == "ints":  # permute's orders, the dimensions a reduction takes, split's sizes
        orders = st.permutations([1, 2, 3]).map(lambda p: [0, *p])
        dims = st.lists(st.integers(-3, 2), min_size=1, max_size=2, unique=True)
        return st.one_of(orders, dims, st.lists(st.integers(1, 3), min_size=1, max_size=3))
    return st.sampled_from(attr.choices)


@st.composite
def node_of(draw: st.DrawFn, op_name: str, earlier: list[str]) -> dict[str, Any]:
    """A node of ``op_name``: each attribute valid four times in five, else at a boundary or of
    a wrong type; inputs from the nodes before it, mostly as many as the op takes."""
    op = OPS[op_name]
    node: dict[str, Any] = {"op": op_name}
    for key, attr in op.attrs.items():
        if attr.default is REQUIRED or draw(st.booleans()):
            edge = draw(st.integers(0, 4)) == 0
            node[key] = draw(st.sampled_from(attr_values(attr)) if edge else valid_values(attr))
    least, most = op.inputs
    count_in = least
    if draw(st.integers(0, 5)) == 0:
        count_in = draw(st.integers(max(least - 1, 0), (most or least + 1) + 1))
    if count_in != 1 or draw(st.integers(0, 3)) == 0:
        node["in"] = draw(st.lists(st.sampled_from(earlier), min_size=count_in, max_size=count_in))
    return node


# ops that give the tested op a fitting input: a feature map, a flat vector, or the input itself
ADAPTERS: list[dict[str, Any]] = [
    {},
    {"op": "flatten"},
    {"op": "conv", "out": 4, "kernel": 1},
    {"op": "global_avgpool"},
    {"op": "permute", "dims": [0, 2, 3, 1]},  # channels-last, as inside a ConvNeXt block
    {"op": "tokens"},  # a token sequence [H * W, C], as inside a ViT
    {"op": "partition", "size": 1},  # groups of tokens [G, P, C], as inside MaxViT
]


@st.composite
def networks(draw: st.DrawFn, focus: str | None = None) -> dict[str, Any]:
    """A small network: an input (a [C, H, W] map, sometimes a [C, L] or a [C, T, H, W] one),
    an adapter, then 1-4 ops (the first is ``focus`` if given)."""
    rank = draw(st.sampled_from([2, 2, 1, 3]))
    shape = [
        draw(st.integers(1, 6)),
        *draw(st.lists(st.integers(1, 9), min_size=rank, max_size=rank)),
    ]
    stem: dict[str, Any] = {}
    earlier = ["input"]
    adapter = draw(st.sampled_from(ADAPTERS))
    if adapter:
        stem["adapt"] = dict(adapter)
        earlier.append("adapt")
    ops = [focus] if focus else []
    ops += draw(st.lists(st.sampled_from(sorted(OPS)), min_size=0 if focus else 1, max_size=3))
    for k, name in enumerate(ops):
        stem[f"n{k}"] = draw(node_of(name, earlier))
        earlier.append(f"n{k}")
    return {"name": "generated", "input": shape, "stem": stem}


def _check(data: dict[str, Any]) -> compiler.Graph | None:
    """What `netc check` does: the graph, or None after a well-formed located error."""
    text = yaml.safe_dump(data, sort_keys=False)
    try:
        return front_end(parse(text, "generated.yaml"))
    except SpecError as e:
        rendered = e.render()
        assert e.diagnostics and ": error: " in rendered and "Traceback" not in rendered
        assert all(d.loc.line > 0 for d in e.diagnostics), rendered  # located in the file
        return None


def _macs(graph: compiler.Graph) -> int:
    """FlopCounterMode / 2 for one sample, on the meta device: on the CPU it does not count
    attention's fused kernels (nn.MultiheadAttention's fast path, scaled_dot_product_attention)."""
    from compiler.lowering.lower import lower

    with torch.device("meta"):
        module = lower(graph).eval()
        x = torch.empty(1, *graph.input_shape)
    with FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops() // 2


def _holds(graph: compiler.Graph, tmp: Path, exporters: tuple[str, ...]) -> None:
    """The contract for one accepted network."""
    module = compiler.compile(graph, seed=0)
    assert sum(p.numel() for p in module.parameters()) == graph.params
    x = torch.randn(2, *graph.input_shape)
    module.train()
    xg = x.clone().requires_grad_()
    module(xg).sum().backward()  # train mode, and autograd through every in-place op
    assert xg.grad is not None and xg.grad.shape == x.shape
    module.eval()
    with torch.no_grad():
        out = module(x)
        assert tuple(out.shape[1:]) == graph.shape_of(graph.output)
    assert _macs(graph) == graph.macs
    for detail in ("stages", "blocks", "ops"):
        assert gv.network_diagram(graph, detail).source
    folded, folded_graph = fold_module(module, graph)
    # a division by zero gives inf or NaN in PyTorch and onnxruntime alike, which no tolerance
    # compares: such a network must still export, unvalidated
    finite = bool(torch.isfinite(out).all())
    if not finite:
        count("contract: a non-finite output (a division by zero), exported unvalidated")
    for exporter in exporters:
        path = Path(tempfile.mkdtemp(dir=tmp)) / f"{exporter}.onnx"
        try:
            report = export(
                folded, folded_graph, path, exporter=exporter, folded=True, validate=finite
            )
        except ExportError as e:
            # torch's exporters write ONNX's ceil mode, which keeps a last pooling window that
            # PyTorch drops (it starts in the padding): validation catches it and writes nothing
            assert not path.exists()
            assert exporter != "netc", str(e)  # netc's own exporter writes every network
            assert (
                _drops_a_window(graph)
                or (exporter == "torchscript" and _torchscript_cannot(graph))
                or (exporter == "dynamo" and _dynamo_cannot(graph))
                or _scale_loses_a_row(graph)
            ), str(e)
            count(f"contract: {exporter} refused what its own ONNX cannot express")
            continue
        assert (report.passed or not finite) and path.exists()


def _torchscript_cannot(graph: compiler.Graph) -> bool:
    """What TorchScript's exporter cannot write: an adaptive pool to more than 1x1 (or of a map
    that is not [C, H, W]) or an instance
    norm with running statistics with a dynamic batch ("input size not accessible", "instance_norm
    training for unknown batch size"), and softplus's threshold, which it leaves out (validation
    catches it)."""
    return any(
        (n.op == "adaptive_avgpool" and (n.attrs["size"] > 1 or len(n.shape) != 3))
        or (n.op == "instancenorm" and n.attrs["track_running_stats"])
        or n.op == "softplus"
        for n in graph.nodes.values()
    )


def _dynamo_cannot(graph: compiler.Graph) -> bool:
    """What the dynamo exporter cannot write: an adaptive pool of a [C, L] or [C, T, H, W] map
    into unequal windows (it has no rule for aten._adaptive_avg_pool3d)."""
    return any(
        n.op == "adaptive_avgpool"
        and len(graph.shape_of(n.inputs[0])) != 3
        and any(side % n.attrs["size"] for side in graph.shape_of(n.inputs[0])[1:])
        for n in graph.nodes.values()
    )


def _scale_loses_a_row(graph: compiler.Graph) -> bool:
    """A resize by a scale that float32 holds a little low (0.9): torch's exporters write it as
    Resize's float32 scales, from which ONNX takes a size a row short of torch's (10 x 0.9)."""
    for node in (n for n in graph.nodes.values() if n.op == "resize" and n.attrs["scale"]):
        held = float(np.float32(node.attrs["scale"]))
        sides = zip(graph.shape_of(node.inputs[0])[1:], node.shape[1:], strict=True)
        if any(math.floor(held * n) != o for n, o in sides):
            return True
    return False


def _drops_a_window(graph: compiler.Graph) -> bool:
    """Whether a ceil-mode pool of ``graph`` drops a last window that ONNX's ceil mode keeps."""
    for node in graph.nodes.values():
        a = node.attrs
        # (a padding by rule gives ceil(size / stride) windows: none to drop)
        if (
            node.op in ("maxpool", "avgpool")
            and a["ceil_mode"]
            and not isinstance(a["padding"], str)
        ):
            sizes, outs = graph.shape_of(node.inputs[0])[1:], node.shape[1:]
            k, p = _each(a["kernel"], len(sizes)), _each(a["padding"], len(sizes))
            s = _each(a["stride"], len(sizes)) if a["stride"] else k
            windows = zip(sizes, outs, k, s, p, strict=True)
            if any(math.ceil((n + 2 * p - k) / s) + 1 != o for n, o, k, s, p in windows):
                return True
    return False


def _each(value: int | tuple[int, ...], rank: int) -> tuple[int, ...]:
    """A size attribute, one value per spatial side."""
    return (value,) * rank if isinstance(value, int) else tuple(value)


def _settings(cases: int) -> settings:
    return settings(
        max_examples=cases, deadline=DEADLINE_MS, suppress_health_check=list(HealthCheck)
    )


@pytest.mark.parametrize("op", sorted(OPS))
def test_every_attribute_boundary_is_checked_or_built(op: str, tmp_path: Path) -> None:
    """Each attribute of each op at each of its boundary values, alone on a fitting input."""
    attrs = OPS[op].attrs
    base = {k: a.default for k, a in attrs.items() if a.default is not REQUIRED}
    base |= {k: 2 for k, a in attrs.items() if a.default is REQUIRED}
    least = OPS[op].inputs[0]
    cases = [(None, None)] + [(k, v) for k, a in attrs.items() for v in attr_values(a)]
    accepted = 0
    # an image through every adapter; a signal and a video as they come
    inputs = [([3, 5, 5], a) for a in ADAPTERS] + [([3, 5], {}), ([3, 2, 5, 5], {})]
    for shape, adapter in inputs:
        for key, value in cases:
            node = {"op": op, **{k: v for k, v in base.items() if v is not None}}
            if key is not None:
                node[key] = value
            stem: dict[str, Any] = {"adapt": adapter} if adapter else {}
            src = "adapt" if adapter else "input"
            if least > 1:  # the adapted value, then the input (a departition's map)
                node["in"] = [src, *["input"] * (least - 1)]
            if op in FITTING and not adapter:  # its own fitting input, after the others
                stem = {k: dict(v) for k, v in FITTING[op].items()}
                if op == "dist2bbox":
                    node["in"] = ["sides", "points", "strides"]
            stem["node"] = node
            if op in READERS:  # (an adapter's value is no level map: these read the input)
                node["in"] = ["input"]
                stem.update({k: dict(v) for k, v in READERS[op].items()})
            count("contract: attribute boundaries")
            graph = _check({"name": "boundary", "input": shape, "stem": stem})
            if graph is not None:
                accepted += 1
                _holds(graph, tmp_path, ("netc",))
    assert accepted, f"no value of any attribute of {op} was accepted on any input"


@_settings(400)
@given(data=networks())
def test_generated_networks_hold_the_contract(data: dict[str, Any], tmp_path: Path) -> None:
    count("contract: generated networks")
    graph = _check(data)
    if graph is not None:
        count("contract: generated networks accepted and built")
        _holds(graph, tmp_path, ("netc",))


@_settings(40)
@given(data=networks())
def test_generated_networks_export_with_every_exporter(
    data: dict[str, Any], tmp_path: Path
) -> None:
    count("contract: generated for every exporter")
    graph = _check(data)
    if graph is not None:
        count("contract: generated, accepted and exported by every exporter")
        _holds(graph, tmp_path, EXPORTERS)


def test_the_two_breaks_found_by_hand_are_located_errors() -> None:
    """dropout p=1.5 and a one-input add were accepted by check and failed in compile."""
    for node, message in (
        ({"op": "dropout", "p": 1.5}, "'p' of 'drop' must be in [0, 1], got 1.5"),
        ({"op": "add", "in": ["conv1"]}, "'drop': add takes two or more inputs, got 1"),
    ):
        data = {
            "name": "broken",
            "input": [3, 8, 8],
            "stem": {"conv1": {"op": "conv", "out": 8, "kernel": 3}, "drop": node},
        }
        with pytest.raises(SpecError) as e:
            front_end(parse(yaml.safe_dump(data, sort_keys=False), "broken.yaml"))
        assert message in e.value.render()
        assert e.value.diagnostics[0].loc.line > 0


def test_numbers_are_drawn_at_and_past_the_bounds() -> None:
    values = _numbers(Attr(kind="float", min=0, max=1), False)
    assert {0.0, 1.0, -1e-6, 1 + 1e-6} <= set(values)
    assert math.isclose(max(values), 1 + 1e-6)
