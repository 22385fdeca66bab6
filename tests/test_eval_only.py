"""``eval_only:``: outputs returned in eval mode only (YOLO's decoded boxes). A training forward
returns the others and does not run what only the eval-only outputs need; compile's module, a
deep copy, a pickled copy and `netc emit`'s source all switch the same way."""

from __future__ import annotations

import copy
import io
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import compiler
from compiler.tools.diff import diff
from compiler.tools.emit import emit
from tests.conftest import TESTS, run_cli
from tests.test_emit import run_source

SPEC = TESTS / "specs" / "eval_only.yaml"


def calls(module: torch.nn.Module, x: torch.Tensor) -> tuple[object, list[str]]:
    """``module(x)`` and the leaf modules it called, in order."""
    seen: list[str] = []
    hooks = [
        m.register_forward_hook(lambda m, i, o, name=name: seen.append(name))
        for name, m in module.named_modules()
        if not list(m.children())
    ]
    try:
        return module(x), seen
    finally:
        for h in hooks:
            h.remove()


def by_hand(module: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    m = module.get_submodule
    raw = m("raw")(F.relu(m("bn")(m("conv")(x))))
    return {"pred": torch.sigmoid(m("decode")(raw)), "raw": raw}


def test_training_returns_the_others_and_skips_what_only_eval_needs() -> None:
    graph = compiler.load_spec(SPEC)
    assert [(f.key, f.eval_only) for f in graph.features] == [("pred", True), ("raw", False)]
    module = compiler.compile(graph, seed=0)
    x = torch.randn(2, 3, 16, 16)
    (train, ran) = calls(module.train(), x)
    assert isinstance(train, dict) and list(train) == ["raw"]
    assert ran == ["conv", "bn", "relu", "raw"]  # no decode, no sigmoid
    (evaluated, ran) = calls(module.eval(), x)
    assert isinstance(evaluated, dict) and list(evaluated) == ["pred", "raw"]
    assert ran == ["conv", "bn", "relu", "raw", "decode", "probs"]
    expected = by_hand(module, x)
    assert all(torch.equal(evaluated[k], expected[k]) for k in expected)
    # the parameters only eval reads are in the state_dict; a training step leaves them alone
    assert "decode.weight" in module.state_dict()
    train["raw"].sum().backward()
    assert module.get_submodule("decode").weight.grad is None


def test_copies_switch_too() -> None:
    module = compiler.compile(SPEC, seed=0)
    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    x = torch.randn(1, 3, 16, 16)
    first = copy.deepcopy(module.state_dict())
    for other in (copy.deepcopy(module), torch.load(buffer, weights_only=False)):
        module.load_state_dict(first)  # the statistics as they were copied
        for training, keys in ((True, ["raw"]), (False, ["pred", "raw"])):
            module.train(training)
            other.train(training)
            with torch.no_grad():
                a, b = module(x), other(x)
            assert list(a) == list(b) == keys and all(torch.equal(a[k], b[k]) for k in keys)


# the spec's dict; a list; an eval-only output that training also computes (its early return
# comes after every step)
SETTINGS = {
    "dict": [],
    "list": ["outputs=[probs, raw]", "eval_only=[probs]"],
    "intermediate": ["outputs=[relu, probs]", "eval_only=[relu]"],
}


def same(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in b)
    assert isinstance(a, list) and isinstance(b, list)
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_emitted_source_switches_by_mode(setting: str) -> None:
    graph = compiler.load_spec(SPEC, SETTINGS[setting])
    source = emit(graph)
    assert "if self.training:" in source
    built = run_source(source, "eval_only_tiny.py")["build"](seed=0)
    ours = compiler.compile(graph, seed=0)
    x = torch.randn(2, 3, 16, 16)
    for training in (True, False):
        a, b = built.train(training)(x), ours.train(training)(x)
        assert same(a, b)
    trained = ours.train()(x)
    assert len(trained) == 1 and len(ours.eval()(x)) == 2


def test_a_list_of_outputs_drops_the_eval_only_ones_in_training() -> None:
    module = compiler.compile(compiler.load_spec(SPEC, SETTINGS["list"]), seed=0)
    x = torch.randn(1, 3, 16, 16)
    copied = copy.deepcopy(module)
    for m in (module, copied):
        (train, ran) = calls(m.train(), x)
        assert isinstance(train, list) and len(train) == 1 and "decode" not in ran
        evaluated = m.eval()(x)
        assert isinstance(evaluated, list) and len(evaluated) == 2


def test_check_diff_and_diagram_say_which_outputs_are_eval_only(tmp_path: Path) -> None:
    code, out, _ = run_cli("check", str(SPEC))
    assert code == 0 and "pred [2, 16, 16] (eval only), raw [4, 16, 16]" in out
    plain = compiler.load_spec(SPEC, ["eval_only=null"])
    assert not any(f.eval_only for f in plain.features)
    change = diff(compiler.load_spec(SPEC), plain)
    assert not change.equal
    assert "returns: pred: probs (eval only), raw: raw -> pred: probs, raw: raw" in change.text()
    code, _, err = run_cli("diagram", str(SPEC), "-o", str(tmp_path / "d.dot"))
    assert code == 0, err
    assert "output 0 (eval only): probs" in (tmp_path / "d.dot").read_text()
