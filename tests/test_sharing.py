"""``share:``: a block instance that runs another's modules (a detection head built once and
called on every level). Its nodes have values, shapes and MACs of their own and no modules: the
state_dict, the parameter count and the initialisation hold the shared weights once; compile,
emit, folding and ONNX all call the one module."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import compiler
from compiler.lowering.folding import fold_module
from compiler.tools.emit import emit
from tests.conftest import TESTS, run_cli
from tests.test_emit import run_source

SPEC = TESTS / "specs" / "shared_tower.yaml"


def by_hand(module: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The network written out: the head's modules applied to both levels."""
    head = module.get_submodule("head")
    c1 = module.get_submodule("c1")(x)
    c2 = module.get_submodule("c2")(c1)

    def tower(v: torch.Tensor) -> torch.Tensor:
        return head.out(F.relu(head.bn(head.conv(v))))

    return {"fine": tower(c1), "coarse": tower(c2)}


def test_the_shared_weights_are_held_and_counted_once() -> None:
    graph = compiler.load_spec(SPEC)
    sharers = {n.name: n.shares for n in graph.nodes.values() if n.shares}
    assert sharers == {f"head.l2.{k}": f"head.{k}" for k in ("conv", "bn", "relu", "out")}
    module = compiler.compile(SPEC, seed=0)
    keys = list(module.state_dict())
    assert not any(k.startswith("head.l2") for k in keys)
    assert (
        graph.params
        == sum(p.numel() for p in module.parameters())
        == 3 * 8 * 9 + 8 * 8 * 9 + (8 * 8 * 9 + 8) + 2 * 8 + 8 * 4
    )
    # each level's MACs count: the second level runs the tower on a quarter of the positions
    macs = {n.name: n.meta["macs"] for n in graph.nodes.values()}
    assert macs["head.l2.conv"] * 4 == macs["head.conv"] > 0


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_outputs_are_the_one_module_run_twice(mode: str) -> None:
    module = compiler.compile(SPEC, seed=0)
    getattr(module, mode)()
    x = torch.randn(2, 3, 40, 24)
    torch.manual_seed(1)
    mine = module(x)
    if mode == "train":  # the batch statistics of the second call are the ones kept
        module.get_submodule("head.bn").reset_running_stats()
    reference = by_hand(module, x)
    assert list(mine) == ["fine", "coarse"]
    assert all(torch.allclose(mine[k], reference[k], atol=1e-6) for k in reference)


def test_a_gradient_sums_over_every_level() -> None:
    module = compiler.compile(SPEC, seed=0)
    out = module(torch.randn(2, 3, 32, 32))
    out["coarse"].sum().backward()
    assert module.get_submodule("head.out").weight.grad is not None
    assert module.get_submodule("c1").weight.grad is not None


def test_folding_leaves_a_shared_module_alone() -> None:
    """An inference build folds BatchNorms into convs, but not a shared one: its conv serves
    two callers, and the values stay the network's."""
    graph = compiler.load_spec(SPEC)
    module = compiler.compile(graph, seed=0).eval()
    folded, fgraph = fold_module(module, graph)
    assert "head.bn" in fgraph.nodes and "head.l2.bn" in fgraph.nodes
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert all(
            torch.allclose(folded(x)[k], module(x)[k], atol=1e-5) for k in ("fine", "coarse")
        )


def test_emit_writes_one_module_called_twice(tmp_path: Path) -> None:
    """The standalone source builds the head once, calls it on both levels and initialises it
    once: the same weights as compile() from the same seed, the same outputs."""
    graph = compiler.load_spec(SPEC)
    source = emit(graph)
    assert source.count("self.head.conv = ") == 1 and source.count("self.head.conv(") == 2
    built = run_source(source, str(tmp_path / "shared.py"))["build"](seed=0)
    ours = compiler.compile(graph, seed=0)
    assert list(built.state_dict()) == list(ours.state_dict())
    for key, value in ours.state_dict().items():
        assert torch.equal(built.state_dict()[key], value), key
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        mine, theirs = built.eval()(x), ours.eval()(x)
    assert all(torch.equal(mine[k], theirs[k]) for k in ("fine", "coarse"))


def test_freeze_builds_those_parameters_untrained(tmp_path: Path) -> None:
    """``freeze:`` paths: requires_grad=False in compile() and in the emitted source alike."""
    graph = compiler.load_spec(SPEC, ["freeze=[c1, head.bn]"])
    frozen = [k for k, p in compiler.compile(graph).named_parameters() if not p.requires_grad]
    assert frozen == ["c1.weight", "head.bn.weight", "head.bn.bias"]
    built = run_source(emit(graph), str(tmp_path / "frozen.py"))["build"]()
    assert [k for k, p in built.named_parameters() if not p.requires_grad] == frozen
    code, out, err = run_cli("check", str(SPEC), "--set", "freeze=[c1, head.bn]")
    assert code == 0, err
    assert "outputs fine [4, 16, 16], coarse [4, 8, 8]" in out


def test_diff_shows_what_freeze_and_share_change() -> None:
    from compiler.tools.diff import diff

    a = compiler.load_spec(SPEC)
    b = compiler.load_spec(SPEC, ["freeze=[c1]"])
    changes = diff(a, b)
    assert not changes.equal and changes.frozen == ([], ["c1"])
    assert "  not trained (freeze): none -> c1" in changes.text().splitlines()
    unshared = compiler.load_spec(SPEC, ["stages.head_2.share=null"])
    changes = diff(a, unshared)
    assert changes.changed == [f"head.l2.{k}" for k in ("conv", "bn", "relu", "out")]
    assert changes.keys_new == [
        "head.l2.conv.weight",
        "head.l2.conv.bias",
        "head.l2.bn.weight",
        "head.l2.bn.bias",
        "head.l2.bn.running_mean",
        "head.l2.bn.running_var",
        "head.l2.bn.num_batches_tracked",
        "head.l2.out.weight",
    ]


def test_gradflow_shows_a_shared_layer_once() -> None:
    """netc gradflow: the head's layers once, at their first place, their gradients summed over
    both levels."""
    from compiler.tools.gradflow import measure

    flow = measure(compiler.load_spec(SPEC))
    assert flow.layers == ["c1", "c2", "head.conv", "head.out"]  # (weighted layers)
    assert all(norm > 0 for norm in flow.norms)
