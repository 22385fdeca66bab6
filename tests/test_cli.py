"""The netc command: tables, JSON, exit statuses, help on every command, python -m compiler."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

import compiler
from tests.conftest import ROOT, run_cli

COMMANDS = [
    "compile",
    "check",
    "export",
    "diagram",
    "emit",
    "list",
    "ir",
    "schema",
    "diff",
    "gradflow",
]


def test_compile_resnet50_table(in_root: Path) -> None:
    code, out, err = run_cli("compile", "specs/resnet50.yaml")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[1].split() == [
        "stage",
        "blocks",
        "block",
        "output",
        "params",
        "MACs",
        "act.",
        "MiB",
    ]
    layer3 = next(ln for ln in lines if ln.startswith("layer3"))
    assert layer3.split()[:5] == ["layer3", "6", "bottleneck", "1024x14x14", "7,098,368"]
    total = next(ln for ln in lines if ln.startswith("total"))
    assert total.split()[:4] == ["total", "1000", "25,557,032", "4,089,184,256"]
    # per sample: every output kept (the table's total) and the eval forward's peak
    assert lines[-1] == (
        "activations per sample: 143.3 MiB if every output is kept, "
        "10.0 MiB alive at once in an eval forward"
    )


def test_compile_json(in_root: Path) -> None:
    code, out, _ = run_cli("compile", "specs/resnet50.yaml", "--json")
    assert code == 0
    data = json.loads(out)
    assert (data["name"], data["params"], data["macs"]) == ("resnet50", 25557032, 4089184256)
    assert data["output_shape"] == [1000]
    assert [r["stage"] for r in data["stages"]][1:5] == ["layer1", "layer2", "layer3", "layer4"]
    assert data["stages"][3]["blocks"] == 6
    # layer1.0 at its projection: its 64-channel input (held by the call) and three 256-channel
    # maps (bn3, the projection conv and its BN), 56x56 in fp32
    assert data["peak_activation_bytes"] == (64 + 3 * 256) * 56 * 56 * 4


def test_compile_with_overrides_and_module_code(in_root: Path) -> None:
    code, out, _ = run_cli(
        "compile", "specs/resnet18.yaml", "--set", "params.num_classes=10", "--json"
    )
    assert code == 0 and json.loads(out)["output_shape"] == [10]
    code, out, _ = run_cli("compile", "specs/resnet18.yaml", "--print-module")
    assert code == 0 and "def forward(self, x):" in out


def test_check_exit_status(in_root: Path) -> None:
    assert run_cli("check", "specs/resnet18.yaml", "specs/resnet50.yaml")[0] == 0
    code, _, err = run_cli("check", "tests/invalid/cycle.yaml")
    assert code == 2 and "cycle.yaml:4:21: error:" in err
    code, out, _ = run_cli("check", "-q", "specs/resnet18.yaml")
    assert code == 0 and out == ""


def test_compile_spec_error_is_exit_2(in_root: Path) -> None:
    code, out, err = run_cli("compile", "tests/invalid/unknown_op.yaml")
    assert code == 2 and out == "" and "did you mean 'batchnorm'?" in err


def test_missing_file_is_a_spec_error(in_root: Path) -> None:
    code, _, err = run_cli("check", "specs/nope.yaml")
    assert code == 2 and err.strip() == "specs/nope.yaml: error: no such file: specs/nope.yaml"


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_on_every_command(command: str | None) -> None:
    args = [command, "--help"] if command else ["--help"]
    code, out, _ = run_cli(*args)
    assert code == 0 and "usage: netc" in out
    if command:
        assert f"examples:\n  netc {command}" in out  # a runnable example on every command


def test_the_module_docstring_lists_every_command() -> None:
    import compiler.tools.cli

    parser = compiler.tools.cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(COMMANDS) == set(sub.choices)
    for command in sub.choices:
        assert f"\n  {command} " in (compiler.tools.cli.__doc__ or ""), command


def test_python_dash_m_compiler_works_as_netc() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "compiler", "check", "specs/resnet18.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.startswith("ok: specs/resnet18.yaml")
    bad = subprocess.run(
        [sys.executable, "-m", "compiler", "check", "tests/invalid/cycle.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_check_table_is_compiles_table_without_building(tmp_path: Path) -> None:
    code, checked, _ = run_cli("check", "cifar/resnet20", "--table")
    assert code == 0
    code, compiled, _ = run_cli("compile", "cifar/resnet20")
    assert code == 0 and checked == compiled and checked.startswith("resnet20: ResNet-20")


def test_a_renamed_child_does_not_inherit_its_bases_description(tmp_path: Path) -> None:
    child = tmp_path / "mine.yaml"
    child.write_text("extends: resnext50_32x4d\nname: mine\nparams: {num_classes: 10}\n")
    assert compiler.load_spec(child).description == ""
    assert compiler.load_spec("resnext50_32x4d").description.startswith("ResNeXt")
    child.write_text("extends: resnext50_32x4d\nparams: {num_classes: 10}\n")  # not renamed
    assert (
        compiler.load_spec(child).description == compiler.load_spec("resnext50_32x4d").description
    )


def test_block_types_are_listed_and_checked_on_their_own(in_root: Path) -> None:
    code, out, err = run_cli("list", "--blocks")
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "width, stride=1, scale=4, base_width=26, cardinality=1" in rows["bottle2neck"]
    assert set(rows) >= {"basic", "bottleneck", "basic3d", "vit_encoder_block"}
    code, out, err = run_cli("check", "blocks/bottleneck", "--set", "width=32")
    assert code == 0, err
    assert out.startswith("ok: blocks/bottleneck (block type bottleneck: one block [128, 56, 56]")
    code, out, err = run_cli("check", "specs/blocks/basic3d.yaml")  # drawn on a video map
    assert code == 0 and "[64, 8, 56, 56]" in out, err
    code, _, err = run_cli("check", "blocks/bottleneck", "--set", "widht=3")
    assert code == 2 and "has no parameter 'widht'; did you mean 'width'?" in err


def test_the_readmes_specs_paths_name_the_library_outside_the_source_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a wheel install, run anywhere: specs/resnet50.yaml and specs/blocks/... are the
    library's files (a file of that path, where there is one, still wins)."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("check", "specs/resnet50.yaml", "specs/blocks/bottleneck.yaml")
    assert code == 0, err
    assert out.startswith("ok: specs/resnet50.yaml (resnet50: 25,557,032 params")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "resnet50.yaml").write_text(
        "name: mine\ninput: [8]\nhead:\n  fc: {op: linear, out: 2}\n"
    )
    assert "mine: 18 params" in run_cli("check", "specs/resnet50.yaml")[1]
