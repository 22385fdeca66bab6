"""Names a spec chooses cannot make generated code read the wrong value, shadow what it uses,
or forge output: emitted source computes what compile() builds whatever the names, and names
that could not be written are refused where the spec gives them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

import compiler
from compiler.errors import SpecError
from compiler.tools.emit import emit
from tests.conftest import run_cli

HEAD = "head:\n  pool: {op: global_avgpool}\n  flatten: {op: flatten}\n  fc: {op: linear, out: 4}\n"

SPECS = {
    # a value named as the forward's argument, read again after it was taken
    "argument": "stem:\n  x: {op: conv, out: 3, kernel: 3}\n  y: {op: conv, out: 3, kernel: 3, "
    "in: input}\n  add: {op: add, in: [x, y]}\n",
    # two values whose names become the same variable
    "alike": "stem:\n  a-b: {op: conv, out: 3, kernel: 3}\n  a_b: {op: conv, out: 3, kernel: 3, "
    "in: input}\n  add: {op: add, in: [a-b, a_b]}\n",
    "numbered": "stem:\n  '1': {op: conv, out: 3, kernel: 3}\n  v_1: {op: conv, out: 3, kernel: 3,"
    " in: input}\n  add: {op: add, in: ['1', v_1]}\n",
    # an optional module named as the module torch.nn is imported as: a constructor flag
    "flag": "block_types:\n  blk:\n    params: {width: null}\n    nodes:\n"
    "      conv: {op: conv, out: width, kernel: 3}\n      nn: {op: batchnorm, when: index == 0}\n"
    "stages:\n  layer1: {block: blk, repeat: 2, width: 3}\n",
    # block types whose classes would be torch.nn.functional's alias or a copied helper
    "helpers": "block_types:\n  f:\n    nodes:\n      norm: {op: layernorm2d}\n  permute:\n"
    "    nodes:\n      conv: {op: conv, out: 3, kernel: 1}\n"
    "stages:\n  a: {block: f}\n  b: {block: permute}\n",
    # the network and a block type of the same name
    "same": "block_types:\n  same:\n    nodes:\n      conv: {op: conv, out: 3, kernel: 3}\n"
    "stages:\n  a: {block: same, repeat: 2}\n",
}


@pytest.mark.parametrize("case", sorted(SPECS))
def test_emitted_source_computes_what_compile_builds(
    tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / f"{case}.yaml"
    spec.write_text(f"name: {case}\ninput: [3, 8, 8]\n{SPECS[case]}{HEAD}")
    out = tmp_path / f"{case}_net.py"
    out.write_text(emit(compiler.load_spec(spec)))
    loader = importlib.util.spec_from_file_location(f"{case}_net", out)
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    monkeypatch.setitem(sys.modules, f"{case}_net", module)
    loader.loader.exec_module(module)
    emitted = module.build(seed=0).eval()  # type: ignore[attr-defined]
    built = compiler.compile(spec, seed=0).eval()
    x = torch.randn(2, 3, 8, 8)
    assert list(emitted.state_dict()) == list(built.state_dict())
    assert torch.equal(emitted(x), built(x))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("stages:\n  'head:s': {block: b}\n", "stage name 'head:s' must be a module path"),
        ('stages:\n  "a\\n0 errors": {block: b}\n', "stage name 'a\\n0 errors' must be"),
        ("stem:\n  self: {op: relu}\n", "'self' cannot name a module"),
        ("block_types:\n  'x y':\n    nodes: {c: {op: relu}}\n", "block type 'x y' must be a"),
        ("params: {w: " + "9" * 5000 + "}\n", "number too long"),
    ],
)
def test_names_that_could_not_be_written_are_refused(
    tmp_path: Path, entry: str, message: str
) -> None:
    spec = tmp_path / "net.yaml"
    blocks = "block_types:\n  b:\n    nodes: {c: {op: relu}}\n" if "{block: b}" in entry else ""
    spec.write_text(f"name: net\ninput: [3, 8, 8]\n{blocks}{entry}")
    with pytest.raises(SpecError) as e:
        compiler.load_spec(spec)
    found = [d for d in e.value.diagnostics if message in d.render()]
    assert found and found[0].loc.line >= 3  # where the spec gives the name


def test_printed_file_names_and_checkpoint_keys_are_escaped(tmp_path: Path) -> None:
    folder = tmp_path / "specs"
    folder.mkdir()
    hostile = folder / "a\x1b]0;TITLE\x07\x1b[31mred\nforged.yaml"
    hostile.write_text("name: net\ninput: [3, 8, 8]\nstem:\n  c: {op: conv, out: 3, kernel: 3}\n")
    code, out, err = run_cli("list", str(folder))
    assert code == 0 and "\x1b" not in out + err and "\x07" not in out + err
    assert "a\\x1b]0;TITLE\\x07\\x1b[31mred\\nforged.yaml" in out
    code, out, _ = run_cli("check", str(hostile))
    assert code == 0 and out.count("\n") == 1 and "\x1b" not in out
    state = compiler.compile(hostile, seed=0).state_dict()
    state["\x1b[2Jevil\nkept as initialised: forged"] = torch.zeros(1)
    checkpoint = tmp_path / "w.pth"
    torch.save(state, checkpoint)
    code, out, err = run_cli("compile", str(hostile), "--weights", str(checkpoint), "--partial")
    assert code == 0 and "\x1b" not in out + err
    assert "unused from the checkpoint: \\x1b[2Jevil\\nkept as initialised: forged" in out + err


def test_command_line_numbers_are_checked(tmp_path: Path) -> None:
    for args, message in [
        (["diagram", "cifar/resnet20", "-o", "x.svg", "--dot-timeout", "nan"], "finite number"),
        (["gradflow", "cifar/resnet20", "-o", "g.png", "--batch", "0"], "0 is less than 1"),
        (["export", "cifar/resnet20", "-o", "x.onnx", "--opset", "-3"], "-3 is less than 1"),
        (["check", "cifar/resnet20", "--max-nodes", "x"], "'x' is not a whole number"),
    ]:
        code, _, err = run_cli(*args)
        assert code == 2 and message in err and "Traceback" not in err
    spec = tmp_path / "act.yaml"
    spec.write_text("name: act\ninput: [3, 8, 8]\nstem:\n  r: {op: relu}\n")
    code, _, err = run_cli("gradflow", str(spec), "-o", str(tmp_path / "g.png"))
    assert (code, err) == (1, "netc: error: act has no weights: there is no gradient to measure\n")
    code, _, err = run_cli(
        "export", "cifar/resnet20", "-o", str(tmp_path / "x.onnx"), "--opset", "999"
    )
    assert code == 1 and "opset 999 is newer than this onnx knows" in err
