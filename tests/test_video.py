"""torchvision's video classifiers (R3D-18, MC3-18, R(2+1)D-18, S3D) from the library's specs,
proven equal to torchvision's models as the image zoo is: counts against torchvision's weights
meta at its clip size, the module tree with every layer's arguments, state_dict keys/order/
shapes, strict load, eval and train outputs under the same random draws (S3D's dropout),
gradients and BN statistics, the aten op sequence, and each family's initialisation.

The ResNets pool adaptively, so their outputs are compared on 4-frame 32x32 clips. S3D's fixed
2x7x7 average pool needs at least 13 frames of 209x209 (its smallest input), where its outputs
are compared, one clip at a time (a forward takes seconds on 2 CPUs: slow); its head is also
run alone on a larger map, where the mean averages the logits over several positions.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import compiler
from compiler.errors import SpecError
from compiler.lowering.lower import lower
from tests.conftest import SPECS, run_cli
from tests.reference import VIDEO
from tests.test_equivalence import assert_same_training_step, close, recorded

pytestmark = pytest.mark.zoo

NAMES = sorted(VIDEO)
# the clips outputs are compared on: [C, T, H, W] (S3D's smallest) and how many of them
CLIP = {name: (3, 4, 32, 32) for name in NAMES} | {"s3d": (3, 13, 209, 209)}
BATCH = {name: 2 for name in NAMES} | {"s3d": 1}
SLOW = {"s3d"}


def _names(slow: set[str]) -> list[object]:
    return [pytest.param(n, marks=pytest.mark.slow) if n in slow else n for n in NAMES]


def reference(name: str, device: str = "cpu") -> nn.Module:
    """torchvision's model on ``device`` (meta: no memory, no init)."""
    from torchvision.models import video

    with torch.device(device):
        return getattr(video, name)()


def _clip(name: str, seed: int) -> torch.Tensor:
    return torch.randn(BATCH[name], *CLIP[name], generator=torch.Generator().manual_seed(seed))


def _compiled(name: str) -> nn.Module:
    """netc's module, built for the clip its outputs are compared on."""
    return compiler.compile(SPECS / f"{name}.yaml", [f"input={list(CLIP[name])}"])


_SIZES = ("kernel_size", "stride", "padding", "dilation")


def _arguments(m: nn.Module) -> dict[str, object]:
    """A layer's constructor arguments, a size written as n spelled out over the three sides
    (torchvision writes some pools' sizes as tuples, netc as the number)."""
    out: dict[str, object] = {}
    for key, value in vars(m).items():
        if key.startswith("_") or key == "training":
            continue
        out[key] = (value,) * 3 if key in _SIZES and isinstance(value, int) else value
    return out


def test_every_video_model_has_a_spec() -> None:
    assert all((SPECS / f"{n}.yaml").exists() for n in NAMES)
    assert compiler.list_models("r[23]*") == ["r2plus1d_18", "r3d_18"]
    assert {"mc3_18", "s3d"} <= set(compiler.list_models())


@pytest.mark.parametrize("name", NAMES)
def test_counts_tree_and_keys_match_torchvision(name: str) -> None:
    """Parameters equal the weights meta exactly, MACs at its clip size (3 decimals, and
    FlopCounterMode / 2 on netc's module); the module tree path for path, each layer of
    torchvision's class or a subclass of it (Conv3DSimple is an nn.Conv3d) with the same
    arguments; the state_dict's keys, order and shapes."""
    params, gmacs, clip = VIDEO[name]
    graph = compiler.load_spec(SPECS / f"{name}.yaml")
    assert graph.input_shape == clip
    assert graph.params == params and round(graph.macs / 1e9, 3) == gmacs
    with torch.device("meta"):
        ours = lower(graph)
    ref = reference(name, "meta")
    mine, theirs = dict(ours.named_modules()), dict(ref.named_modules())
    assert list(mine) == list(theirs)
    for path, layer in theirs.items():
        if next(layer.children(), None) is None:  # a leaf: a layer
            assert isinstance(layer, type(mine[path])), path
            assert _arguments(mine[path]) == _arguments(layer), path
    shapes = [(k, tuple(v.shape)) for k, v in ours.state_dict().items()]
    assert shapes == [(k, tuple(v.shape)) for k, v in ref.state_dict().items()]
    assert graph.params == sum(p.numel() for p in ref.parameters())
    x = torch.empty(1, *clip, device="meta")
    with FlopCounterMode(display=False) as counter:
        ours.eval()(x)
    assert counter.get_total_flops() == 2 * graph.macs


def _nontrivial_bn(model: nn.Module) -> None:
    """Random BN statistics and affine values, so eval mode tests more than the identity."""
    g = torch.Generator().manual_seed(5)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def _run(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
    """An eval-mode forward and the aten ops it dispatches (one forward: S3D's take seconds)."""
    return recorded(model.eval(), x)


@pytest.mark.parametrize("name", _names(SLOW))
def test_eval_outputs_and_aten_ops(name: str) -> None:
    torch.manual_seed(0)
    ref = reference(name)
    _nontrivial_bn(ref)
    ours = _compiled(name)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = _clip(name, 2)
    out, ops = _run(ours, x)
    out_ref, ops_ref = _run(ref, x)
    assert out.shape == (BATCH[name], 400) and close(out, out_ref)
    assert ops == ops_ref


@pytest.mark.parametrize("name", _names(SLOW))
def test_train_mode_same_draws_stats_and_gradients(name: str) -> None:
    """Batch statistics, running statistics and gradients agree; S3D's dropout draws the same
    random numbers."""
    torch.manual_seed(0)
    ref = reference(name)
    ours = _compiled(name)
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert_same_training_step(ours, ref, _clip(name, 3), grad_tol=1e-4)


def test_s3d_head_averages_the_logits_over_what_the_pool_leaves() -> None:
    """S3D's head alone on a larger last map than the smallest clip's 2x7x7: the pool leaves
    2x2x2 positions, the 1x1x1 conv classifies each and the mean averages them, as
    torchvision's forward does (avgpool, classifier, torch.mean over dims 2, 3, 4)."""
    torch.manual_seed(0)
    ref = reference("s3d").eval()  # no dropout
    head = compiler.compile(SPECS / "s3d.yaml", ["input=[1024, 3, 8, 8]", "stages=null"])
    head.load_state_dict(
        {k: v for k, v in ref.state_dict().items() if k.startswith("classifier.")}, strict=True
    )
    x = torch.randn(2, 1024, 3, 8, 8)
    out, ops = _run(head, x)
    with torch.no_grad():
        pooled = ref.get_submodule("avgpool")(x)
        theirs = torch.mean(ref.get_submodule("classifier")(pooled), dim=(2, 3, 4))
    assert torch.equal(out, theirs)
    assert ops == ["aten.avg_pool3d.default", "aten.convolution.default", "aten.mean.dim"]


def test_s3d_smallest_clip_is_torchvisions() -> None:
    """S3D's fixed 2x7x7 pool needs 13 frames of 209x209: netc's shape check refuses one frame
    or one row less with a located error, where torchvision fails at run time."""
    graph = compiler.load_spec(SPECS / "s3d.yaml", ["input=[3, 13, 209, 209]"])
    assert graph.nodes[graph.output].shape == (400,)
    for clip in ("[3, 12, 209, 209]", "[3, 13, 208, 208]"):
        with pytest.raises(SpecError, match="avgpool"):
            compiler.load_spec(SPECS / "s3d.yaml", [f"input={clip}"])


@pytest.mark.parametrize("name", NAMES)
def test_initialisation_follows_the_family(name: str) -> None:
    """Per-tensor mean and std of ``compile(seed=...)`` equal torchvision's own init's
    (VideoResNet's kaiming fan_out convs, BN 1 and 0, a normal(0, 0.01) classifier with a zero
    bias; S3D's PyTorch defaults): constants exactly, random tensors within sampling error."""
    ours = dict(compiler.compile(SPECS / f"{name}.yaml", seed=0).state_dict())
    torch.manual_seed(0)
    theirs = reference(name).state_dict()
    assert list(ours) == list(theirs)
    for key, ref in theirs.items():
        mine, ref = ours[key].float(), ref.float()
        if ref.numel() == 1 or ref.std() == 0:
            assert torch.equal(mine, ref), key
            continue
        n, std = ref.numel(), float(ref.std())
        # the mean of n draws is within 6 standard errors; the std within 6 of its own
        assert abs(float(mine.mean()) - float(ref.mean())) <= 6 * std / n**0.5, key
        assert abs(float(mine.std()) - std) <= 6 * std * (2 / n) ** 0.5 + 1e-8, key


@pytest.mark.parametrize("name", ["r3d_18", "r2plus1d_18"])
def test_zero_init_residual_changes_nothing_as_in_torchvision(name: str) -> None:
    """torchvision's zero_init_residual zeroes Bottleneck BNs only, none of a video BasicBlock's,
    so the library's blocks mark none for zeroing."""
    from torchvision.models import video

    ref = getattr(video, name)(zero_init_residual=True)
    ours = compiler.compile(SPECS / f"{name}.yaml", zero_init_residual=True)
    for model in (ours, ref):
        weights = model.state_dict().items()
        assert not [k for k, v in weights if k.endswith("weight") and not v.any()]


def test_netc_list_shows_the_video_networks() -> None:
    code, out, err = run_cli("list", "*3d*")
    assert code == 0, err
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["r3d_18"][2:5] == ["video_resnet", "33,371,472", "40.697"]
    assert rows["s3d"][2:5] == ["s3d", "8,320,048", "17.979"]


@pytest.mark.export
@pytest.mark.parametrize("exporter", ["dynamo", "netc"])
@pytest.mark.parametrize("name", _names(SLOW))
def test_exports_and_validates_in_onnxruntime(name: str, exporter: str, tmp_path: Path) -> None:
    out = tmp_path / f"{name}.onnx"
    code, stdout, err = run_cli(
        "export", name, "-o", str(out), "--exporter", exporter, "--set", f"input={list(CLIP[name])}"
    )
    assert code == 0, err
    assert "verdict    PASS" in stdout + err and out.stat().st_size > 10_000_000
