"""The library as a whole: a golden complexity table with one row per spec (as pycls'
dev/test_models.py), `netc list`, and loading real checkpoints with located mismatch reports."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

import compiler
from compiler.frontend.library import read_library, spec_files
from compiler.lowering.weights import WeightsError
from tests.conftest import ROOT, SPECS, TESTS, run_cli

GOLDEN = TESTS / "golden" / "complexity.tsv"
HEADER = "spec\tparams\tmacs\tactivation_bytes\toutput_shape"


def current_table() -> str:
    rows = [HEADER]
    for e in read_library(str(SPECS)):
        assert e.graph is not None, e.error and e.error.render()
        g = e.graph
        rel = Path(e.path).relative_to(ROOT).as_posix()
        shape = "x".join(map(str, g.nodes[g.output].shape))
        rows.append(f"{rel}\t{g.params}\t{g.macs}\t{g.activation_bytes}\t{shape}")
    return "\n".join(rows) + "\n"


def test_golden_complexity_table() -> None:
    """Any change to a spec or to the compiler that alters a network shows up here.

    After an intended change: NETC_UPDATE_GOLDEN=1 pytest tests/test_library.py, then review the
    diff of tests/golden/complexity.tsv.
    """
    table = current_table()
    if os.environ.get("NETC_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(table)
    golden = GOLDEN.read_text()
    assert table.splitlines()[0] == golden.splitlines()[0]
    assert {ln.split("\t")[0] for ln in table.splitlines()} == {
        ln.split("\t")[0] for ln in golden.splitlines()
    }, "a spec was added or removed: update the golden table"
    assert table == golden


def test_spec_files_leave_out_block_folders() -> None:
    files = spec_files(str(SPECS))
    assert len(files) >= 35
    assert not any("/blocks/" in f for f in files)


@pytest.mark.slow
def test_netc_list(in_root: Path) -> None:
    code, out, err = run_cli("list")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["spec", "name", "family", "params", "GMACs"]
    row = next(ln for ln in lines if ln.startswith("resnet50 "))  # the library, by name
    assert row.split()[1:5] == ["resnet50", "resnet", "25,557,032", "4.089"]
    assert "ResNet-50 v1.5 as in torchvision" in row
    assert any(ln.startswith("cifar/resnet20 ") for ln in lines)
    code, out, _ = run_cli("list", "specs")  # a folder: by path
    assert code == 0 and any(ln.startswith("specs/resnet50.yaml ") for ln in out.splitlines())
    code, out, _ = run_cli("list", "specs/cifar", "--json")
    data = {d["name"]: d for d in json.loads(out)}
    assert data["resnet110"]["params"] == 1727962


def test_list_reports_bad_specs(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: bad\ninput: [3, 8, 8]\nstem:\n  x: {op: nope}\n")
    code, _, err = run_cli("list", str(tmp_path))
    assert code == 2 and "unknown op 'nope'" in err


@pytest.fixture(scope="module")
def resnet18_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torchvision

    path = tmp_path_factory.mktemp("ckpt") / "resnet18.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


def test_compile_with_weights_loads_the_checkpoint(resnet18_checkpoint: Path) -> None:
    m = compiler.compile(SPECS / "resnet18.yaml", weights=resnet18_checkpoint)
    saved = torch.load(resnet18_checkpoint, weights_only=True)
    assert all(torch.equal(v, saved[k]) for k, v in m.state_dict().items())


def test_wrapped_checkpoints_and_the_cli(resnet18_checkpoint: Path, tmp_path: Path) -> None:
    wrapped = tmp_path / "wrapped.pth"
    torch.save(
        {"state_dict": torch.load(resnet18_checkpoint, weights_only=True), "epoch": 3}, wrapped
    )
    compiler.compile(SPECS / "resnet18.yaml", weights=wrapped)
    code, out, _ = run_cli("compile", str(SPECS / "resnet18.yaml"), "--weights", str(wrapped))
    assert code == 0 and "11,689,512" in out


def test_mismatch_report_is_located(resnet18_checkpoint: Path, in_root: Path) -> None:
    with pytest.raises(WeightsError) as e:
        compiler.compile("specs/resnet34.yaml", weights=resnet18_checkpoint)
    report = str(e.value)
    assert report.splitlines()[0].endswith(
        "error: the checkpoint does not fit 'resnet34' (96 missing, 0 unexpected, 0 wrong shape)"
    )
    assert "missing: layer1.2.conv1.weight  (specs/blocks/basic.yaml:" in report
    with pytest.raises(WeightsError) as e:
        compiler.compile(
            "specs/resnet18.yaml", ["params.num_classes=10"], weights=resnet18_checkpoint
        )
    assert "wrong shape: fc.weight: checkpoint [1000, 512], spec [10, 512]" in str(e.value)
    code, _, err = run_cli("compile", "specs/resnet34.yaml", "--weights", str(resnet18_checkpoint))
    assert code == 1 and "96 missing" in err and "Traceback" not in err


def test_unsafe_or_bad_checkpoints_are_refused(tmp_path: Path) -> None:
    import pickle

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps(Evil()))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    lists = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], lists)
    for path, message in [
        (evil, "cannot read checkpoint"),
        (junk, "cannot read checkpoint"),
        (lists, "not a state_dict"),
        (tmp_path / "no.pth", "no such"),
    ]:
        with pytest.raises(WeightsError) as e:
            compiler.compile(SPECS / "resnet18.yaml", weights=path)
        assert message in str(e.value)


def test_list_by_pattern_and_did_you_mean_for_a_library_name() -> None:
    code, out, _ = run_cli("list", "resnet1*")
    names = [line.split()[0] for line in out.splitlines()[1:]]
    assert code == 0 and names == ["resnet101", "resnet101_dilated", "resnet152", "resnet18"]
    code, out, _ = run_cli("list", "cifar/wrn*")
    assert code == 0 and [line.split()[0] for line in out.splitlines()[1:]] == ["cifar/wrn_28_10"]
    code, _, err = run_cli("list", "nothing*")
    assert code == 1 and err.startswith("netc: no library spec matches 'nothing*' under ")
    code, _, err = run_cli("check", "resnt50")
    assert (
        code == 2
        and err == "resnt50: error: no such file: resnt50\n  note: did you mean 'resnet50'?\n"
    )


def test_list_models_names_the_library_by_pattern() -> None:
    assert compiler.list_models("resnet1*") == [
        "resnet101",
        "resnet101_dilated",
        "resnet152",
        "resnet18",
    ]
    everything = compiler.list_models()
    assert "cifar/resnet20" in everything and everything == sorted(everything)
    assert all(compiler.load_spec(n).name for n in compiler.list_models("vgg1[13]"))
    with pytest.raises(TypeError, match="pattern must be a str"):
        compiler.list_models(["resnet*"])  # type: ignore[arg-type]
