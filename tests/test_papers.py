"""The papers' own networks: counts equal the papers' tables, and each family equals a reference
written by hand from the paper (tests/paper_models.py), weights copied across by name."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

import compiler
from tests.conftest import SPECS
from tests.paper_models import CifarResNet, PaperResNet, PreActResNet
from tests.reference import HE2015_CIFAR10, HE2016_PREACT_CIFAR10

pytestmark = pytest.mark.zoo

CIFAR = SPECS / "cifar"
PAPER = SPECS / "paper"


@pytest.mark.parametrize("name", sorted(HE2015_CIFAR10))
def test_cifar_params_equal_the_paper(name: str) -> None:
    n, params = HE2015_CIFAR10[name]
    g = compiler.load_spec(CIFAR / f"{name}.yaml")
    assert g.params == params
    assert sum(len(s.blocks) for s in g.stages) == 3 * n  # depth 6n + 2
    assert g.nodes[g.output].shape == (10,)


@pytest.mark.parametrize("name", sorted(HE2016_PREACT_CIFAR10))
def test_preact_params_equal_the_paper(name: str) -> None:
    n, params, without_bn = HE2016_PREACT_CIFAR10[name]
    g = compiler.load_spec(CIFAR / f"{name}.yaml")
    assert g.params == params
    bn = sum(x.meta["params"] for x in g.nodes.values() if x.op == "batchnorm")
    assert g.params - bn == without_bn
    assert sum(len(s.blocks) for s in g.stages) == 3 * n  # depth 9n + 2


def test_wrn_28_10_has_36_5_million_params() -> None:
    g = compiler.load_spec(CIFAR / "wrn_28_10.yaml")
    assert round(g.params / 1e6, 1) == 36.5
    assert [len(s.blocks) for s in g.stages if s.block_type] == [4, 4, 4]


def test_variants_differ_by_one_number() -> None:
    text = (CIFAR / "resnet110.yaml").read_text()
    assert "extends: resnet20.yaml" in text and "params: {n: 18}" in text
    plain = compiler.load_spec(CIFAR / "plain56.yaml")
    assert not any(n.op == "add" for n in plain.nodes.values())


def test_option_a_is_parameter_free_and_c_projects_everywhere() -> None:
    a = compiler.load_spec(PAPER / "resnet34_a.yaml")
    plain = compiler.load_spec(PAPER / "plain34.yaml")
    assert a.params == plain.params  # A adds no parameters at all
    c = compiler.load_spec(PAPER / "resnet34_c.yaml")
    blocks = {n.block for n in c.nodes.values() if n.block}
    assert {n.block for n in c.nodes.values() if n.shortcut == "C" and n.op == "conv"} == blocks
    adds = [n for n in c.nodes.values() if n.op == "add"]
    assert len(adds) == len(blocks) == 16


Ref = Callable[[], nn.Module]
CASES: dict[str, tuple[str, Ref, int]] = {
    # spec path, reference builder, input size
    "cifar/resnet20": ("cifar/resnet20", lambda: CifarResNet(3, "A"), 32),
    "cifar/resnet56": ("cifar/resnet56", lambda: CifarResNet(9, "A"), 32),
    "cifar/plain20": ("cifar/plain20", lambda: CifarResNet(3, "none"), 32),
    "cifar/plain56": ("cifar/plain56", lambda: CifarResNet(9, "none"), 32),
    "cifar/preact_resnet164": (
        "cifar/preact_resnet164",
        lambda: PreActResNet([18] * 3, [16, 32, 64], True, False, 10),
        32,
    ),
    "cifar/wrn_28_10": (
        "cifar/wrn_28_10",
        lambda: PreActResNet([4] * 3, [160, 320, 640], False, False, 10),
        32,
    ),
    "paper/plain18": ("paper/plain18", lambda: PaperResNet([2] * 4, "basic", "none"), 96),
    "paper/plain34": ("paper/plain34", lambda: PaperResNet([3, 4, 6, 3], "basic", "none"), 96),
    **{
        f"paper/resnet{d}_{k.lower()}": (
            f"paper/resnet{d}_{k.lower()}",
            (lambda d=d, k=k: PaperResNet([2] * 4 if d == 18 else [3, 4, 6, 3], "basic", k)),
            96,
        )
        for d in (18, 34)
        for k in "ABC"
    },
    "paper/resnet50_v1": (
        "paper/resnet50_v1",
        lambda: PaperResNet([3, 4, 6, 3], "bottleneck", "B"),
        96,
    ),
    "paper/preact_resnet18": (
        "paper/preact_resnet18",
        lambda: PreActResNet([2] * 4, [64, 128, 256, 512], False, True, 1000),
        96,
    ),
    "paper/preact_resnet50": (
        "paper/preact_resnet50",
        lambda: PreActResNet([3, 4, 6, 3], [64, 128, 256, 512], True, True, 1000),
        96,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_equal_to_the_hand_written_reference(case: str) -> None:
    spec, build, size = CASES[case]
    torch.manual_seed(0)
    ref = build()
    ours = compiler.compile(SPECS / f"{spec}.yaml", seed=1)
    theirs = ref.state_dict()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.items()
    }
    ours.load_state_dict(theirs, strict=True)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    x = torch.randn(2, 3, size, size)
    for train in (False, True):
        ours.train(train)
        ref.train(train)
        with torch.no_grad():
            a, b = ours(x), ref(x)
        assert float((a - b).abs().max()) <= 1e-5 * max(1.0, float(b.abs().max())), train


@pytest.mark.parametrize("name", ["resnet1202", "preact_resnet1001"])
def test_deepest_nets_check_compile_and_run(name: str) -> None:
    g = compiler.load_spec(CIFAR / f"{name}.yaml")
    # train mode: with untrained running statistics, eval mode lets 600 blocks overflow
    m = compiler.compile(g, seed=0).train()
    with torch.no_grad():
        out = m(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert sum(p.numel() for p in m.parameters()) == g.params
