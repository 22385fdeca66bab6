"""The element-wise activations and arithmetic, group and instance norms, layer norms over
several dimensions, softmax and reductions: each compiled node computes what PyTorch's functional
form does, with the op table's dimension convention (counted without the batch), and has the
parameters the analysis counts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
import yaml

import compiler
from compiler.frontend.load import front_end
from compiler.frontend.source import parse
from exporters.onnx import export

Tensor = torch.Tensor
MAP = [4, 3, 5]  # [C, H, W]: no two sizes alike, so a wrong dimension shows


def _graph(stem: dict[str, Any], shape: list[int]) -> compiler.Graph:
    data = {"name": "ops", "input": shape, "stem": stem}
    return front_end(parse(yaml.safe_dump(data, sort_keys=False), "ops.yaml"))


def _run(
    stem: dict[str, Any], shape: list[int] = MAP, train: bool = False
) -> tuple[Tensor, Tensor]:
    """The input and the compiled network's output, in eval mode unless ``train``."""
    graph = _graph(stem, shape)
    module = compiler.compile(graph, seed=0).train(train)
    assert sum(p.numel() for p in module.parameters()) == graph.params
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = module(x)
    assert tuple(out.shape[1:]) == graph.shape_of(graph.output)
    return x, out


Reference = Callable[[Tensor], Tensor]

ONE_NODE: dict[str, tuple[dict[str, Any], Reference]] = {
    "leaky_relu": ({"op": "leaky_relu", "negative_slope": 0.2}, lambda x: F.leaky_relu(x, 0.2)),
    "prelu": ({"op": "prelu"}, lambda x: F.prelu(x, torch.tensor([0.25]))),
    "prelu_per_channel": (
        {"op": "prelu", "per_channel": True},
        lambda x: F.prelu(x, torch.full((4,), 0.25)),
    ),
    "elu": ({"op": "elu", "alpha": 0.5}, lambda x: F.elu(x, 0.5)),
    "selu": ({"op": "selu"}, F.selu),
    "mish": ({"op": "mish"}, F.mish),
    "softplus": (
        {"op": "softplus", "beta": 2, "threshold": 1},
        lambda x: F.softplus(x, beta=2, threshold=1),
    ),
    "hardtanh": (
        {"op": "hardtanh", "min_val": -0.5, "max_val": 1.5},
        lambda x: F.hardtanh(x, -0.5, 1.5),
    ),
    "gelu": ({"op": "gelu"}, F.gelu),
    "gelu_tanh": ({"op": "gelu", "approximate": "tanh"}, lambda x: F.gelu(x, approximate="tanh")),
    "neg": ({"op": "neg"}, torch.neg),
    "abs": ({"op": "abs"}, torch.abs),
    "clamp": ({"op": "clamp", "min": -0.5, "max": 0.25}, lambda x: x.clamp(-0.5, 0.25)),
    "clamp_min": ({"op": "clamp", "min": 0.1}, lambda x: x.clamp(min=0.1)),
    "clamp_max": ({"op": "clamp", "max": 0}, lambda x: x.clamp(max=0.0)),
    "scale": ({"op": "scale", "factor": -1.5}, lambda x: x * -1.5),
    "groupnorm": ({"op": "groupnorm", "groups": 2}, lambda x: F.group_norm(x, 2)),
    "groupnorm_eps": (
        {"op": "groupnorm", "groups": 4, "eps": 0.1, "affine": False},
        lambda x: F.group_norm(x, 4, eps=0.1),
    ),
    "instancenorm": ({"op": "instancenorm"}, F.instance_norm),
    "instancenorm_affine": ({"op": "instancenorm", "affine": True}, F.instance_norm),
    # in eval mode, by the running statistics it starts with: mean 0, variance 1
    "instancenorm_running": (
        {"op": "instancenorm", "track_running_stats": True},
        lambda x: x / torch.sqrt(torch.tensor(1 + 1e-5)),
    ),
    "layernorm": ({"op": "layernorm"}, lambda x: F.layer_norm(x, (5,))),
    "layernorm_dims": ({"op": "layernorm", "dims": 2}, lambda x: F.layer_norm(x, (3, 5))),
    "layernorm_all": ({"op": "layernorm", "dims": 3}, lambda x: F.layer_norm(x, (4, 3, 5))),
    "softmax_channels": ({"op": "softmax", "dim": 0}, lambda x: F.softmax(x, dim=1)),
    "softmax_last": ({"op": "softmax"}, lambda x: F.softmax(x, dim=-1)),
    "log_softmax": ({"op": "log_softmax", "dim": -2}, lambda x: F.log_softmax(x, dim=2)),
    "reduce_mean": ({"op": "reduce_mean", "dims": [1, 2]}, lambda x: x.mean((2, 3))),
    "reduce_mean_keepdim": (
        {"op": "reduce_mean", "dims": [0], "keepdim": True},
        lambda x: x.mean(1, keepdim=True),
    ),
    "reduce_max": ({"op": "reduce_max", "dims": [-1, 0]}, lambda x: torch.amax(x, (1, 3))),
    "reduce_sum": ({"op": "reduce_sum", "dims": [-2]}, lambda x: x.sum(2)),
}


@pytest.mark.parametrize("case", sorted(ONE_NODE))
def test_each_op_computes_its_torch_reference(case: str) -> None:
    node, reference = ONE_NODE[case]
    x, out = _run({"node": node})
    torch.testing.assert_close(out, reference(x))


def test_groupnorm_and_instancenorm_in_training_use_the_batch() -> None:
    x, out = _run({"gn": {"op": "groupnorm", "groups": 2}}, train=True)
    torch.testing.assert_close(out, F.group_norm(x, 2))
    x, out = _run({"inorm": {"op": "instancenorm", "track_running_stats": True}}, train=True)
    torch.testing.assert_close(out, F.instance_norm(x))


def test_reductions_of_a_channels_last_map_and_a_sequence() -> None:
    # a channels-last map [H, W, C]: dim -1 is its channels, as a linear's
    to_last = {"op": "permute", "dims": [0, 2, 3, 1]}
    x, out = _run({"last": to_last, "node": {"op": "reduce_mean", "dims": [-1]}})
    torch.testing.assert_close(out, x.permute(0, 2, 3, 1).mean(-1))
    x, out = _run({"last": to_last, "node": {"op": "softmax", "dim": 2}})
    torch.testing.assert_close(out, F.softmax(x.permute(0, 2, 3, 1), dim=3))
    # a token sequence [L, D]: the mean over the tokens, as a ViT's mean pooling
    seq = {"op": "tokens"}
    x, out = _run({"seq": seq, "node": {"op": "reduce_mean", "dims": [0]}})
    torch.testing.assert_close(out, x.flatten(2).transpose(1, 2).mean(1))


def test_sub_and_div_broadcast_the_second_input() -> None:
    pooled = {"op": "global_avgpool", "in": "input"}
    x, out = _run({"pool": pooled, "node": {"op": "sub", "in": ["input", "pool"]}})
    torch.testing.assert_close(out, x - x.mean((2, 3), keepdim=True))
    stem = {
        "mag": {"op": "abs", "in": "input"},
        "den": {"op": "clamp", "min": 1},
        "node": {"op": "div", "in": ["input", "den"]},
    }
    x, out = _run(stem)
    torch.testing.assert_close(out, x / x.abs().clamp(min=1))


@pytest.mark.parametrize(
    ("node", "params"),
    [
        ({"op": "prelu"}, 1),
        ({"op": "prelu", "per_channel": True}, 4),
        ({"op": "groupnorm", "groups": 2}, 8),
        ({"op": "groupnorm", "groups": 2, "affine": False}, 0),
        ({"op": "instancenorm"}, 0),
        ({"op": "instancenorm", "affine": True}, 8),
        ({"op": "layernorm"}, 10),
        ({"op": "layernorm", "dims": 2}, 30),
    ],
)
def test_parameters_are_counted(node: dict[str, Any], params: int) -> None:
    assert _graph({"node": node}, MAP).params == params


def test_a_layernorm_of_one_dimension_is_built_as_before() -> None:
    """dims: 1 (the default) builds nn.LayerNorm(C) as every spec before the attribute did."""
    graph = _graph(
        {"to_last": {"op": "permute", "dims": [0, 2, 3, 1]}, "ln": {"op": "layernorm"}}, MAP
    )
    ln = compiler.compile(graph, seed=0).get_submodule("ln")
    assert isinstance(ln, torch.nn.LayerNorm) and ln.normalized_shape == (4,)


def test_leaky_relu_works_in_place_only_for_a_positive_slope() -> None:
    """In place, PyTorch's backward reads the output; it refuses that for a slope <= 0."""
    for slope in (0.2, -0.1, 0.0):
        graph = _graph(
            {
                "conv": {"op": "conv", "out": 4, "kernel": 1},
                "act": {"op": "leaky_relu", "negative_slope": slope},
            },
            MAP,
        )
        module = compiler.compile(graph, seed=0).train()
        assert module.get_submodule("act").inplace == (slope > 0)
        x = torch.randn(2, *MAP, requires_grad=True)
        module(x).sum().backward()


@pytest.mark.export
@pytest.mark.parametrize(("exporter", "opset"), [("netc", 13), ("netc", 18), ("dynamo", 18)])
def test_running_statistics_and_thresholds_export_exactly(
    exporter: str, opset: int, tmp_path: Path
) -> None:
    """What tests/specs/every_op.yaml leaves out, since TorchScript's exporter cannot write it:
    an instance norm with running statistics, softplus's threshold. The netc exporter writes them
    at its oldest opset (ReduceMean and ReduceMax take their axes as an attribute before 18, Mish
    is a node of its own from 18) and its default."""
    stem = {
        "gn": {"op": "groupnorm", "groups": 2},
        "inorm": {"op": "instancenorm", "affine": True},
        "run": {"op": "instancenorm", "track_running_stats": True},
        "act": {"op": "mish"},
        "tanh": {"op": "gelu", "approximate": "tanh"},
        "soft": {"op": "softplus", "beta": 0.5, "threshold": 0.5},
        "probs": {"op": "softmax", "dim": 0},
        "rows": {"op": "reduce_sum", "dims": [-1], "keepdim": True},
        "peak": {"op": "reduce_max", "dims": [1]},
        "avg": {"op": "reduce_mean", "dims": [-1]},
    }
    graph = _graph(stem, MAP)
    module = compiler.compile(graph, seed=0)
    module.train()
    with torch.no_grad():  # running statistics other than the initial ones
        module(torch.randn(8, *MAP) * 2 + 1)
    report = export(module.eval(), graph, tmp_path / "m.onnx", exporter=exporter, opset=opset)
    assert report.passed and report.opset == opset
    if exporter == "netc":
        assert report.op_counts.get("Mish", 0) == (opset >= 18)
