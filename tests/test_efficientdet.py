"""EfficientDet from YAML, proven equal to effdet's (rwightman's efficientdet-pytorch, the
`effdet` package): its 'resdet50' config (timm's ResNet-50, a BiFPN of 88 channels and 4
layers over P3..P7, the class and box nets), its separable-conv SiLU variant (the D0..D7
style) and its PAN layout ('pan_fa'). Counts, state_dict keys/order/shapes, strict load,
every level's class and box outputs bit for bit in eval and train mode at two sizes, the aten op
sequence, gradients, the initialisation, ONNX with a dynamic height and width, and emit.

effdet builds its upsampling for one image size (F.interpolate to a fixed size), so each size
has its own reference; netc's resizes take the finer map's size (`like:`), so one network runs
at every size. The backbone is built without stochastic depth (effdet's config sets a drop path
rate of 0.2, which the library's ResNet-50 spec does not have)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import compiler
from tests.conftest import SPECS
from tests.test_detection import exports_at_any_size
from tests.test_equivalence import aten_ops, layout
from tests.test_zoo import _nontrivial_bn

pytestmark = pytest.mark.zoo

SPEC = SPECS / "detection" / "resdet50.yaml"
LEVELS = ["p3", "p4", "p5", "p6", "p7"]
OUTPUTS = [f"class_{v}" for v in LEVELS] + [f"box_{v}" for v in LEVELS]
# variant -> (the spec's --set, effdet's config changes, parameters)
VARIANTS: dict[str, tuple[list[str], dict[str, Any], int]] = {
    "bifpn": ([], {}, 27_605_354),
    "separable_silu": (
        ["params.separable=true", "params.act='silu'"],
        {"separable_conv": True, "act_type": "silu"},
        24_687_274,
    ),
    "pan": (["params.fpn_layer='pan_layer'"], {"fpn_name": "pan_fa"}, 27_893_638),
}
SIZES = [(256, 256), (256, 384)]  # (height, width): multiples of P7's stride, 128


def reference(variant: str, size: tuple[int, int]) -> nn.Module:
    """effdet's EfficientDet of the 'resdet50' config for this size, randomly initialised."""
    from effdet import EfficientDet
    from effdet.config import get_efficientdet_config

    config = get_efficientdet_config("resdet50")
    config.image_size = size
    config.backbone_args = {"drop_path_rate": 0.0}
    for key, value in VARIANTS[variant][1].items():
        config[key] = value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (effdet's torch.jit use)
        return EfficientDet(config, pretrained_backbone=False)


def graph(variant: str, size: tuple[int, int] = (256, 256)) -> compiler.Graph:
    sets = [_quoted(s) for s in VARIANTS[variant][0]]
    return compiler.load_spec(SPEC, [*sets, f"input=[3, {size[0]}, {size[1]}]"])


def _quoted(setting: str) -> str:
    """``params.act='silu'`` as --set takes it: a string value is an expression in quotes."""
    key, _, value = setting.partition("=")
    return f'{key}="{value}"' if value.startswith("'") else setting


def as_list(out: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    return [out[k] for k in OUTPUTS]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_counts_and_keys_match_effdet(variant: str) -> None:
    g = graph(variant)
    ref = reference(variant, (256, 256))
    assert g.params == VARIANTS[variant][2] == sum(p.numel() for p in ref.parameters())
    assert g.output_keys == OUTPUTS
    ours = compiler.compile(g)
    assert layout(ours) == layout(ref)


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def pair(request: pytest.FixtureRequest) -> tuple[str, nn.Module, dict[tuple[int, int], nn.Module]]:
    """netc's network (one, at every size) and effdet's at each size, the same weights."""
    variant = request.param
    torch.manual_seed(0)
    refs = {SIZES[0]: reference(variant, SIZES[0])}
    _nontrivial_bn(refs[SIZES[0]])  # random statistics and affine: eval tests more
    state = refs[SIZES[0]].state_dict()
    for size in SIZES[1:]:
        refs[size] = reference(variant, size)
        refs[size].load_state_dict(state)
    ours = compiler.compile(graph(variant))
    ours.load_state_dict(state, strict=True)
    return variant, ours, refs


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_level_equals_effdet_in_eval_and_train_mode(
    pair: tuple[str, nn.Module, dict[tuple[int, int], nn.Module]], size: tuple[int, int]
) -> None:
    _, ours, refs = pair
    ref = refs[size]
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(2))
    state = {k: v.clone() for k, v in ref.state_dict().items()}
    try:
        for mode in ("eval", "train"):
            getattr(ours, mode)()
            getattr(ref, mode)()
            with torch.no_grad():
                classes, boxes = ref(x)
                mine = ours(x)
            assert list(mine) == OUTPUTS
            assert all(
                torch.equal(a, b) for a, b in zip(as_list(mine), classes + boxes, strict=True)
            )
    finally:  # (train mode moved the statistics: both alike, put back for the other tests)
        ref.load_state_dict(state)
        ours.load_state_dict(state)


def test_aten_ops_and_gradients(
    pair: tuple[str, nn.Module, dict[tuple[int, int], nn.Module]],
) -> None:
    """The eval forward's aten ops are effdet's; in training the gradients of every parameter
    (the fusion weights included) are equal."""
    variant, ours, refs = pair
    x = torch.randn(1, 3, *SIZES[0])
    assert aten_ops(ours.eval(), x) == aten_ops(refs[SIZES[0]].eval(), x)
    state = {k: v.clone() for k, v in ours.state_dict().items()}
    small = reference(variant, (128, 128))  # (a smaller size: a backward on 2 cores)
    small.load_state_dict(state)
    x = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(3))
    ours.train()
    small.train()
    mine = as_list(ours(x))
    classes, boxes = small(x)
    weights = [torch.randn_like(t) for t in mine]
    sum((t * w).sum() for t, w in zip(mine, weights, strict=True)).backward()
    sum((t * w).sum() for t, w in zip(classes + boxes, weights, strict=True)).backward()
    grads = dict(small.named_parameters())
    try:
        for key, p in ours.named_parameters():
            assert p.grad is not None and torch.allclose(p.grad, grads[key].grad, atol=1e-5), key
    finally:
        ours.zero_grad(set_to_none=True)
        ours.load_state_dict(state)


def test_one_module_per_shared_layer_and_a_batchnorm_per_level() -> None:
    """The nets' convs and prediction are built once and run on every level (effdet's
    conv_rep and predict); each level has BatchNorms of its own (bn_rep.{repeat}.{level})."""
    g = graph("bifpn")
    sharers = {n.name: n.shares for n in g.nodes.values() if n.shares}
    assert sharers["class_net.level4.conv2"] == "class_net.conv_rep.2.conv"
    assert sharers["box_net.level1.predict"] == "box_net.predict.conv"
    assert sharers["class_net.level3.act1"] == "class_net.act"
    keys = list(compiler.compile(g).state_dict())
    assert sum(k.startswith("class_net.conv_rep.") for k in keys) == 3
    assert sum(k.startswith("class_net.bn_rep.") and k.endswith(".weight") for k in keys) == 15
    fusion = [k for k in keys if k.endswith("edge_weights")]
    assert len(fusion) == 4 * 8 and fusion[0] == "fpn.cell.0.fnode.0.combine.edge_weights"


@pytest.mark.parametrize("variant", ["bifpn", "separable_silu"])
def test_a_fresh_network_starts_where_effdet_does(variant: str) -> None:
    """effdet's initialisation: the pyramid's convs glorot-uniform (fan out over groups), the
    nets' normal(0.01) (a separable conv: std sqrt(1 / fan_in)), the class prediction's bias
    at probability 0.01, BatchNorms at 1 and 0, the fusion weights at 1. Constants equal, drawn
    weights of the same spread."""
    torch.manual_seed(0)
    ref = reference(variant, (256, 256))
    mine, theirs = compiler.compile(graph(variant), seed=1).state_dict(), ref.state_dict()
    prior = mine[
        "class_net.predict.conv_pw.bias"
        if "separable" in variant
        else "class_net.predict.conv.bias"
    ]
    assert torch.allclose(prior, torch.full_like(prior, -torch.log(torch.tensor(99.0)).item()))
    checked = 0
    for key, value in theirs.items():
        if key.startswith("backbone"):
            continue
        if value.dim() <= 1:
            assert torch.equal(mine[key], value), key
        elif value.numel() >= 4096:
            assert abs(mine[key].std() / value.std() - 1) < 0.1, key
            checked += 1
    assert checked > 20


@pytest.mark.export
def test_onnx_has_a_dynamic_height_and_width(tmp_path: Path) -> None:
    """One file for every size: the resizes take the finer map's size at run time; validated
    in onnxruntime at two sizes."""
    exports_at_any_size(graph("bifpn", (128, 128)), tmp_path / "m.onnx", OUTPUTS)
