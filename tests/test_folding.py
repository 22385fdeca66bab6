"""The inference pass: BatchNorm folded into the conv before it, outputs unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import compiler
from compiler.ir.passes.fold import fold_affine
from tests.conftest import SPECS


def calibrate(m: torch.nn.Module, shape: tuple[int, ...]) -> torch.nn.Module:
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.momentum = None
    m.train()
    with torch.no_grad():
        m(torch.randn(4, *shape))
    return m.eval()


def _computes_the_same(
    m: torch.nn.Module, other: torch.nn.Module, shape: tuple[int, ...]
) -> torch.Tensor:
    """``other``'s output on a random batch, checked against the eval module ``m``'s: as exact
    as the float32 network itself is, against float64 (``m`` is left in float64)."""
    x = torch.randn(3, *shape)
    with torch.no_grad():
        a, b = m(x), other(x)
        exact = m.double()(x.double())
    assert b.shape == a.shape
    assert (b.double() - exact).abs().max() <= 3 * (a.double() - exact).abs().max() + 1e-6
    assert torch.allclose(a, b, rtol=1e-3, atol=1e-3 * float(a.abs().max()))
    return b


def test_fold_pass_is_pure_and_complete() -> None:
    g = compiler.load_spec(SPECS / "resnet50.yaml")
    before = len(g.nodes)
    folded, pairs = fold_affine(g)
    assert len(g.nodes) == before  # the input graph is untouched
    assert len(pairs) == 53 and not any(n.op == "batchnorm" for n in folded.nodes.values())
    assert folded.nodes["layer1.0.relu1"].inputs == ["layer1.0.conv1"]
    assert folded.nodes["layer1.0.add"].inputs == ["layer1.0.conv3", "layer1.0.downsample.0"]
    assert folded.nodes["conv1"].attrs["bias"] is True
    bn_params = sum(n.meta["params"] for n in g.nodes.values() if n.op == "batchnorm")
    assert folded.params == g.params - bn_params // 2  # 2C become a C-bias
    assert folded.macs == g.macs


def test_preactivation_batchnorms_stay() -> None:
    g = compiler.load_spec(SPECS / "cifar" / "preact_resnet164.yaml")
    folded, pairs = fold_affine(g)
    left = [n for n in folded.nodes.values() if n.op == "batchnorm"]
    assert pairs and left  # BN after conv folds; BN on a block's input cannot
    assert all(g.nodes[n.inputs[0]].op != "conv" for n in left if n.inputs[0] in g.nodes)


@pytest.mark.parametrize(
    "spec",
    [
        "resnet50.yaml",
        "resnext50_32x4d.yaml",
        "resnet50d.yaml",
        "cifar/preact_resnet164.yaml",
        "cifar/resnet20.yaml",
    ],
)
def test_folded_module_computes_the_same(spec: str) -> None:
    g = compiler.load_spec(SPECS / spec, ["input=[3, 64, 64]"] if "cifar" not in spec else None)
    m = calibrate(compiler.compile(g, seed=0), g.input_shape)
    from compiler.lowering.folding import fold_module

    folded, fg = fold_module(m, g)
    _computes_the_same(m, folded, g.input_shape)
    assert sum(p.numel() for p in folded.parameters()) == fg.params


def test_compile_inference_flag() -> None:
    m = compiler.compile(SPECS / "resnet18.yaml", seed=0, inference=True)
    assert not m.training
    assert not any(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules())
    assert m.get_submodule("layer1.0.conv1").bias is not None
    weight = m.get_submodule("layer1.0.conv1").weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()


@pytest.mark.parametrize(
    "spec",
    [
        "resnet50.yaml",
        "mobilenet_v2.yaml",
        "densenet121.yaml",
        "shufflenet_v2_x1_0.yaml",
        "googlenet.yaml",
        "efficientnet_b0.yaml",
    ],
)
def test_inference_module_computes_the_same(spec: str, tmp_path: Path) -> None:
    # the whole inference path (weights loaded, BN folded, channels-last) against the eval module
    g = compiler.load_spec(SPECS / spec, ["input=[3, 64, 64]"])
    m = calibrate(compiler.compile(g, seed=0), g.input_shape)
    torch.save(m.state_dict(), tmp_path / "w.pt")
    fast = compiler.compile(g, weights=tmp_path / "w.pt", inference=True)
    assert not fast.training and len(fast.state_dict()) < len(m.state_dict())
    assert fast.meta["weights"]["absent"] == []  # the load report survives the folding
    convs = [p for p in fast.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    b = _computes_the_same(m, fast, g.input_shape)
    assert b.is_contiguous()


@pytest.mark.parametrize("spec", ["mobilenet_v2", "shufflenet_v2_x1_0"])
def test_inference_module_indexes_like_torchvision(spec: str) -> None:
    """A conv-BN-activation Sequential keeps its indices 0 and 2 once the BatchNorm is folded
    away, and stays an nn.Sequential: positional indexing and slicing work on it."""
    import torchvision

    reference = getattr(torchvision.models, spec)()
    folded = compiler.compile(spec, inference=True)
    checked = 0
    for name, part in reference.named_modules():
        # (torchvision's Sequential subclasses too; an empty one has no netc counterpart)
        if not isinstance(part, torch.nn.Sequential) or not name or not len(part):
            continue
        ours = folded.get_submodule(name)
        assert type(ours) is torch.nn.Sequential, name
        kept = [k for k, m in part.named_children() if not isinstance(m, torch.nn.BatchNorm2d)]
        assert [k for k, _ in ours.named_children()] == kept, name
        for i, k in enumerate(kept):  # position i is the i-th module kept
            assert _kind(ours[i]) == _kind(part.get_submodule(k)), (name, k)
        assert [_kind(m) for m in ours[1:]] == [_kind(part.get_submodule(k)) for k in kept[1:]]
        checked += 1
    assert checked > 10
    assert isinstance(folded.get_submodule("conv1" if "shuffle" in spec else "features.0")[0],
                      torch.nn.Conv2d)  # fmt: skip


def _kind(m: torch.nn.Module) -> str:
    """What a Sequential holds at a position: a Sequential (torchvision's subclasses, such as
    Conv2dNormActivation, count as one), a torch.nn layer by its class, or a block."""
    if isinstance(m, torch.nn.Sequential):
        return "Sequential"
    return type(m).__name__ if type(m).__module__.startswith("torch.nn") else "block"


def test_holds_survive_folding(tmp_path: Path) -> None:
    # a held BatchNorm folded away is held as its conv; a folded BatchNorm's holds pass to it
    spec = tmp_path / "held.yaml"
    spec.write_text(
        "name: held\ninput: [3, 8, 8]\nstem:\n"
        "  conv1: {op: conv, out: 4, kernel: 3}\n"
        "  bn1: {op: batchnorm}\n"
        "  relu1: {op: relu}\n"
        "  conv2: {op: conv, out: 4, kernel: 3}\n"
        "  bn2: {op: batchnorm, holds: relu1}\n"
        "  conv3: {op: conv, out: 4, kernel: 3, holds: bn1}\n"
    )
    graph = compiler.load_spec(spec)
    folded, pairs = fold_affine(graph)
    assert pairs == {"bn1": "conv1", "bn2": "conv2"}
    assert folded.nodes["conv2"].holds == ["relu1"]
    assert folded.nodes["conv3"].holds == ["conv1"]
    module = compiler.compile(spec, seed=0, inference=True)
    assert "compiler_lowering_modules_hold(conv2, relu1)" in module.code
    assert "compiler_lowering_modules_hold(conv3, conv1)" in module.code
    x = torch.randn(2, 3, 8, 8)
    eager = compiler.compile(spec, seed=0).eval()
    assert torch.allclose(module(x), eager(x), atol=1e-5)
