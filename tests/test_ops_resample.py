"""Padding by rule, padding modes, resizing, pixel (un)shuffles, splits and channel dropout:
each compiled op computes what torch's own layer or function computes (or, for TensorFlow's
SAME, what its hand-computed padding gives), and the netc exporter writes it exactly."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

import compiler
from compiler.frontend.load import front_end
from compiler.frontend.source import parse
from compiler.lowering import modules
from compiler.tools.emit import emit
from exporters.onnx import export
from tests.test_emit import _check_emitted


def _graph(node: dict[str, Any], shape: list[int], **extra: Any) -> compiler.Graph:
    """A network of one node, ``node``, on an input of ``shape``."""
    data = {"name": "one", "input": shape, "stem": {"node": node}, **extra}
    return front_end(parse(yaml.safe_dump(data, sort_keys=False), "one.yaml"))


def _built(node: dict[str, Any], shape: list[int]) -> tuple[nn.Module, torch.Tensor]:
    """The compiled one-node network (eval mode) and a batch of two inputs for it."""
    module = compiler.compile(_graph(node, shape), seed=0).eval()
    return module, torch.randn(2, *shape)


def _conv_of(module: nn.Module) -> nn.Conv2d:
    conv = module.get_submodule("node")
    assert isinstance(conv, nn.Conv2d)
    return conv


# ---- conv: padding by rule and padding modes ----------------------------------------------


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize(("kernel", "dilation"), [(3, 1), (4, 1), ([2, 5], 1), (4, 2), (1, 1)])
def test_same_is_pytorchs_padding_same(kernel: Any, dilation: int, mode: str) -> None:
    node = {"op": "conv", "out": 4, "kernel": kernel, "dilation": dilation, "bias": True}
    module, x = _built({**node, "padding": "same", "padding_mode": mode}, [3, 9, 8])
    conv = _conv_of(module)
    theirs = nn.Conv2d(3, 4, kernel, padding="same", dilation=dilation, padding_mode=mode)
    theirs.load_state_dict(conv.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(module(x), theirs(x), rtol=0, atol=0)
    # torch's own layer where its padding can say it (equal before and after)
    odd = any(dilation * (k - 1) % 2 for k in conv.kernel_size)  # the odd one after
    assert isinstance(conv, modules.PaddedConv2d) == odd


# TensorFlow's SAME by hand: out = ceil(n / s); pad max((out - 1) * s + k - n, 0), the odd one
# after: (size, kernel, stride) -> (before, after)
TF_PADS = {(7, 3, 2): (1, 1), (8, 3, 2): (0, 1), (8, 4, 2): (1, 1), (9, 4, 3): (0, 1)}
TF_PADS |= {(9, 1, 2): (0, 0), (5, 2, 2): (0, 1), (10, 5, 4): (1, 2), (8, 3, 3): (0, 1)}


@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular"])
@pytest.mark.parametrize(("size", "kernel", "stride"), sorted(TF_PADS))
def test_same_upper_is_tensorflows_same(size: int, kernel: int, stride: int, mode: str) -> None:
    node = {"op": "conv", "out": 4, "kernel": kernel, "stride": stride, "bias": True}
    module, x = _built({**node, "padding": "same_upper", "padding_mode": mode}, [3, size, size])
    conv = _conv_of(module)
    before, after = TF_PADS[size, kernel, stride]
    padded = F.pad(x, (before, after, before, after), mode="constant" if mode == "zeros" else mode)
    want = F.conv2d(padded, conv.weight, conv.bias, stride)
    with torch.no_grad():
        got = module(x)
    assert got.shape[2:] == (math.ceil(size / stride),) * 2
    torch.testing.assert_close(got, want)
    # torch's layer where it can say the padding; else netc's, with nn.Conv2d's state
    assert isinstance(conv, modules.PaddedConv2d) == (before != after)
    assert set(conv.state_dict()) == {"weight", "bias"}


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_padding_modes_are_nn_conv2ds(mode: str) -> None:
    node = {"op": "conv", "out": 5, "kernel": [3, 5], "padding": [1, 2], "padding_mode": mode}
    module, x = _built(node, [2, 6, 7])
    theirs = nn.Conv2d(2, 5, (3, 5), padding=(1, 2), padding_mode=mode, bias=False)
    theirs.load_state_dict(_conv_of(module).state_dict())
    with torch.no_grad():
        torch.testing.assert_close(module(x), theirs(x), rtol=0, atol=0)


def test_a_block_parameter_may_hold_a_padding_word() -> None:
    blocks = {
        "down": {
            "params": {"pad": None},
            "nodes": {"conv": {"op": "conv", "out": 4, "kernel": 3, "stride": 2, "padding": "pad"}},
        }
    }
    data = {
        "name": "words",
        "input": [3, 8, 8],
        "block_types": blocks,
        "stages": {"s": {"block": "down", "repeat": 1, "pad": "'same_upper'"}},  # text: quoted
    }
    graph = front_end(parse(yaml.safe_dump(data, sort_keys=False), "words.yaml"))
    node = next(n for n in graph.nodes.values() if n.op == "conv")
    assert node.attrs["padding"] == "same_upper" and node.shape == (4, 4, 4)


# ---- pools ---------------------------------------------------------------------------------


def _window_means(x: torch.Tensor, k: int, s: int, pads: tuple[int, int]) -> torch.Tensor:
    """The mean of what lies inside the input in each window (padding before, after): the
    average pool of TensorFlow's SAME, by hand."""
    n = x.shape[-1]
    out = math.ceil(n / s)
    rows = []
    for i in range(out):
        cols = []
        for j in range(out):
            r0, c0 = i * s - pads[0], j * s - pads[0]
            window = x[..., max(r0, 0) : min(r0 + k, n), max(c0, 0) : min(c0 + k, n)]
            cols.append(window.mean(dim=(-2, -1)))
        rows.append(torch.stack(cols, -1))
    return torch.stack(rows, -2)


@pytest.mark.parametrize(("size", "kernel", "stride"), [(5, 2, 2), (7, 3, 2), (8, 3, 3)])
def test_pools_pad_as_tensorflows_same(size: int, kernel: int, stride: int) -> None:
    shape = [3, size, size]
    pool = {"kernel": kernel, "stride": stride, "padding": "same_upper"}
    before, after = TF_PADS[size, kernel, stride]
    maxed, x = _built({"op": "maxpool", **pool}, shape)
    padded = F.pad(x, (before, after, before, after), value=-math.inf)
    torch.testing.assert_close(maxed(x), F.max_pool2d(padded, kernel, stride))
    averaged, _ = _built({"op": "avgpool", **pool, "count_include_pad": False}, shape)
    torch.testing.assert_close(averaged(x), _window_means(x, kernel, stride, (before, after)))
    counted, _ = _built({"op": "avgpool", **pool}, shape)
    want = F.avg_pool2d(F.pad(x, (before, after, before, after)), kernel, stride)
    torch.testing.assert_close(counted(x), want)


def test_a_pools_same_keeps_the_size_at_stride_one() -> None:
    module, x = _built({"op": "maxpool", "kernel": 4, "stride": 1, "padding": "same"}, [2, 6, 6])
    want = F.max_pool2d(F.pad(x, (1, 2, 1, 2), value=-math.inf), 4, 1)
    torch.testing.assert_close(module(x), want)


# ---- resize, pixel shuffles, split, channel dropout -------------------------------------------


RESIZES = [
    ({"size": [7, 5]}, {"size": (7, 5)}),
    ({"size": 3}, {"size": 3}),
    ({"scale": 1.5}, {"scale_factor": 1.5}),
    ({"scale": 0.7}, {"scale_factor": 0.7}),
    ({"scale": 0.7, "mode": "bilinear"}, {"scale_factor": 0.7, "mode": "bilinear"}),
    ({"size": [7, 4], "mode": "bilinear"}, {"size": (7, 4), "mode": "bilinear"}),
    ({"size": 1, "mode": "bilinear"}, {"size": 1, "mode": "bilinear"}),
    ({"scale": 1.3, "mode": "bicubic"}, {"scale_factor": 1.3, "mode": "bicubic"}),
    (
        {"size": [4, 9], "mode": "bicubic", "align_corners": True},
        {"size": (4, 9), "mode": "bicubic", "align_corners": True},
    ),
    (
        {"scale": 2.5, "mode": "bilinear", "align_corners": True},
        {"scale_factor": 2.5, "mode": "bilinear", "align_corners": True},
    ),
]


@pytest.mark.parametrize(("attrs", "kwargs"), RESIZES, ids=lambda v: str(v))
def test_resize_is_f_interpolate(attrs: dict[str, Any], kwargs: dict[str, Any]) -> None:
    module, x = _built({"op": "resize", **attrs}, [3, 10, 6])
    torch.testing.assert_close(module(x), F.interpolate(x, **kwargs), rtol=0, atol=0)


def test_pixel_shuffles_are_torchs() -> None:
    module, x = _built({"op": "pixel_shuffle", "factor": 3}, [18, 2, 3])
    assert torch.equal(module(x), F.pixel_shuffle(x, 3))
    module, x = _built({"op": "pixel_unshuffle", "factor": 2}, [3, 4, 6])
    assert torch.equal(module(x), F.pixel_unshuffle(x, 2))


def test_split_pieces_come_from_one_torch_split() -> None:
    nodes = {
        "a": {"op": "split", "sizes": [2, 3, 1], "index": 1},
        "b": {"op": "split", "sizes": [2, 3, 1], "index": 2, "in": "input"},
        "c": {"op": "split", "sizes": [2, 3, 1], "index": 0, "in": "input"},
        "out": {"op": "concat", "in": ["b", "c", "a"]},
    }
    data = {"name": "pieces", "input": [6, 3, 3], "stem": nodes}
    graph = front_end(parse(yaml.safe_dump(data, sort_keys=False), "pieces.yaml"))
    module = compiler.compile(graph, seed=0)
    x = torch.randn(2, 6, 3, 3)
    a, b, c = torch.split(x, [2, 3, 1], dim=1)
    assert torch.equal(module(x), torch.cat([c, a, b], 1))
    calls = [n for n in module.graph.nodes if n.target is torch.split]
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("op", "layer", "shape"),
    [
        ("dropout1d", nn.Dropout1d, [6, 9]),
        ("dropout2d", nn.Dropout2d, [6, 3, 3]),
        ("dropout3d", nn.Dropout3d, [6, 2, 3, 3]),
    ],
)
def test_channel_dropout_is_torchs_in_training_and_passes_through_in_eval(
    op: str, layer: type[nn.Module], shape: list[int]
) -> None:
    module, x = _built({"op": op, "p": 0.5}, shape)
    assert torch.equal(module(x), x)
    module.train()
    torch.manual_seed(1)
    got = module(x)
    torch.manual_seed(1)
    assert torch.equal(got, layer(0.5)(x))
    # whole channels of each sample are zeroed, and not every one
    zeroed = (got == 0).flatten(2).all(-1)
    kept = (got != 0).flatten(2).all(-1)
    assert (zeroed | kept).all() and zeroed.any() and kept.any()


# ---- export and emit -----------------------------------------------------------------------


def _conv(**attrs: Any) -> dict[str, Any]:
    return {"op": "conv", "out": 4, **attrs}


EXPORTED = [
    (_conv(kernel=3, stride=2, padding="same_upper"), [3, 8, 8]),
    (_conv(kernel=4, stride=3, padding="same_upper", padding_mode="circular"), [3, 9, 10]),
    (_conv(kernel=4, padding="same", padding_mode="reflect"), [3, 6, 5]),
    (_conv(kernel=3, padding=2, padding_mode="circular"), [3, 2, 5]),  # wraps exactly once
    (_conv(kernel=3, padding=[1, 0], padding_mode="replicate"), [3, 4, 4]),
    ({"op": "maxpool", "kernel": 3, "stride": 2, "padding": "same_upper"}, [3, 8, 7]),
    (
        {
            "op": "avgpool",
            "kernel": 2,
            "stride": 2,
            "padding": "same_upper",
            "count_include_pad": False,
        },
        [3, 5, 7],
    ),
    ({"op": "avgpool", "kernel": 3, "stride": 1, "padding": "same"}, [3, 5, 5]),
    ({"op": "resize", "scale": 0.7, "mode": "bilinear"}, [3, 10, 20]),
    ({"op": "resize", "scale": 0.35}, [3, 20, 17]),
    ({"op": "resize", "size": [13, 3]}, [3, 10, 7]),
    ({"op": "resize", "size": 1, "mode": "bilinear"}, [3, 4, 5]),
    ({"op": "resize", "size": 1, "mode": "bicubic", "align_corners": True}, [3, 4, 5]),
    ({"op": "resize", "scale": 1.7, "mode": "bicubic"}, [3, 5, 6]),
    # a size that does not change: onnxruntime copies, torch's bicubic still interpolates
    ({"op": "resize", "scale": 1.25, "mode": "bicubic"}, [3, 3, 2]),
    ({"op": "resize", "scale": 1.25, "mode": "bilinear"}, [3, 2, 8]),  # torch's keeps the rows
    ({"op": "pixel_unshuffle", "factor": 2}, [3, 4, 6]),
    ({"op": "pixel_shuffle", "factor": 2}, [8, 3, 2]),
    ({"op": "split", "sizes": [1, 2], "index": 1}, [3, 4, 4]),
]


@pytest.mark.parametrize(("node", "shape"), EXPORTED, ids=lambda v: str(v))
def test_the_netc_exporter_writes_each_case_exactly(
    node: dict[str, Any], shape: list[int], tmp_path: Path
) -> None:
    graph = _graph(node, shape)
    module = compiler.compile(graph, seed=0).eval()
    report = export(module, graph, tmp_path / "m.onnx", exporter="netc", opset=13)
    assert report.passed, report


def test_emitted_source_builds_the_new_layers(tmp_path: Path) -> None:
    nodes = {
        "same": {"op": "conv", "out": 4, "kernel": 4, "padding": "same", "padding_mode": "reflect"},
        "down": {"op": "conv", "out": 4, "kernel": 3, "stride": 2, "padding": "same_upper"},
        "pool": {"op": "maxpool", "kernel": 2, "stride": 2, "padding": "same_upper"},
        "avg": {"op": "avgpool", "kernel": 2, "stride": 2, "padding": "same_upper",
                "count_include_pad": False, "in": "down"},
        "up": {"op": "resize", "size": [5, 5], "mode": "bilinear", "in": "pool"},
        "up2": {"op": "resize", "scale": 1.7, "in": "avg"},
        "both": {"op": "concat", "in": ["up", "up2"]},
        "small": {"op": "split", "sizes": [3, 4, 1], "index": 1},
        "drop": {"op": "dropout2d", "p": 0.2},
        "shuffled": {"op": "pixel_shuffle", "factor": 2},
        "back": {"op": "pixel_unshuffle", "factor": 2},
    }  # fmt: skip
    data = {"name": "new_layers", "input": [3, 10, 10], "stem": nodes}
    graph = front_end(parse(yaml.safe_dump(data, sort_keys=False), "new_layers.yaml"))
    source = _check_emitted(graph, 10, tmp_path)
    assert "class PaddedConv2d(_PaddedConv, nn.Conv2d):" in source


def test_every_op_spec_emits() -> None:
    text = emit(compiler.load_spec(Path(__file__).parent / "specs" / "every_op.yaml"))
    for layer in ("PaddedConv2d", "PaddedMaxPool2d", "PaddedAvgPool2d", "nn.PixelShuffle("):
        assert layer in text


def test_the_schema_takes_padding_words_and_sizes() -> None:
    import jsonschema

    from compiler.tools.schema import library_schema

    validator = jsonschema.Draft202012Validator(library_schema())
    for padding in ("same", "same_upper", 2, [1, 0], "2 * p", None):
        node = {"op": "conv", "out": 4, "kernel": 3, "padding": padding}
        assert not list(
            validator.iter_errors({"name": "x", "input": [3, 8, 8], "stem": {"c": node}})
        )
    node = {"op": "conv", "out": 4, "kernel": 3, "padding": -1, "padding_mode": "mirror"}
    errors = list(validator.iter_errors({"name": "x", "input": [3, 8, 8], "stem": {"c": node}}))
    assert errors
