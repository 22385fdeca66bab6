"""Encoders x decoders as segmentation_models_pytorch offers them, from the library's specs
(specs/smp/): each composes a library backbone (``parts:``) with a decoder block type, proven
equal to smp's model: parameter count, state_dict keys/order/shapes, strict load, eval outputs
and the aten op sequence at two sizes (one not square), train mode under the same random draws
with gradients and BatchNorm statistics. And a decoder over another backbone (a documented
example) builds and runs at two sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import compiler
from tests.conftest import ROOT, SPECS
from tests.test_equivalence import aten_ops, close
from tests.test_zoo import _nontrivial_bn

pytestmark = pytest.mark.zoo

# spec -> (smp architecture, encoder, smp's parameter count)
MODELS = {
    "unet_resnet34": ("Unet", "resnet34", 24_436_369),
    "fpn_resnet50": ("FPN", "resnet50", 26_116_033),
    "deeplabv3plus_resnet50": ("DeepLabV3Plus", "resnet50", 26_677_585),
    "linknet_resnet18": ("Linknet", "resnet18", 11_663_777),
    # its encoder holds layer3 and layer4 (in the state_dict), its forward stops at layer2
    "pspnet_resnet34": ("PSPNet", "resnet34", 21_437_985),
}
SIZES = [(64, 64), (96, 160)]  # multiples of 32 (smp refuses others), one not square


def reference(name: str) -> nn.Module:
    import segmentation_models_pytorch as smp

    arch, encoder, _ = MODELS[name]
    return getattr(smp, arch)(encoder, encoder_weights=None)  # type: ignore[no-any-return]


@pytest.fixture(scope="module", params=sorted(MODELS))
def pair(request: pytest.FixtureRequest) -> tuple[str, nn.Module, nn.Module]:
    name = request.param
    torch.manual_seed(0)
    ref = reference(name)
    _nontrivial_bn(ref)  # BatchNorm statistics and affine values that are not the identity
    ours = compiler.compile(SPECS / "smp" / f"{name}.yaml")
    return name, ours, ref


def test_counts_and_keys(pair: tuple[str, nn.Module, nn.Module]) -> None:
    name, ours, ref = pair
    graph = compiler.load_spec(SPECS / "smp" / f"{name}.yaml")
    assert graph.params == MODELS[name][2] == sum(p.numel() for p in ref.parameters())
    mine = [(k, tuple(v.shape)) for k, v in ours.state_dict().items()]
    assert mine == [(k, tuple(v.shape)) for k, v in ref.state_dict().items()]
    ours.load_state_dict(ref.state_dict(), strict=True)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_eval_outputs_and_aten_ops(
    pair: tuple[str, nn.Module, nn.Module], size: tuple[int, int]
) -> None:
    _, ours, ref = pair
    ours.load_state_dict(ref.state_dict(), strict=True)
    ours.eval()
    ref.eval()
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        mine, theirs = ours(x), ref(x)
    assert mine.shape == (2, 1, *size) and close(mine, theirs)
    assert aten_ops(ours, x[:1]) == aten_ops(ref, x[:1])


def test_train_mode_same_draws_stats_and_gradients(pair: tuple[str, nn.Module, nn.Module]) -> None:
    from tests.test_equivalence import assert_same_training_step

    _, ours, ref = pair
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, *SIZES[1], generator=torch.Generator().manual_seed(3))
    assert_same_training_step(ours, ref, x, grad_tol=1e-4)


def test_a_decoder_over_another_backbone_runs_at_two_sizes() -> None:
    """docs/examples/unet_efficientnet_b0.yaml: smp's U-Net decoder over torchvision's
    EfficientNet-B0 features, at its written size and at a rectangle of others it accepts."""
    path = ROOT / "docs" / "examples" / "unet_efficientnet_b0.yaml"
    graph = compiler.load_spec(path)
    assert graph.sizes is not None and graph.sizes.multiple == 32
    module = compiler.compile(graph, seed=0).eval()
    for size in [(224, 224), (96, 160)]:
        with torch.no_grad():
            out = module(torch.randn(1, 3, *size))
        assert out.shape == (1, 2, *size) and torch.isfinite(out).all()
