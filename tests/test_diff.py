"""`netc diff`: two specs compared as networks (stages, counts, nodes, checkpoint fit)."""

from __future__ import annotations

import json
from pathlib import Path

import compiler
from compiler.tools.diff import diff
from tests.conftest import run_cli


def test_resnet50_to_resnet101() -> None:
    d = diff(compiler.load_spec("resnet50"), compiler.load_spec("resnet101"))
    assert [s.stage for s in d.stages] == ["layer3"]
    change = d.stages[0]
    assert change.before and change.after
    assert (change.before["blocks"], change.after["blocks"]) == (6, 23)
    before, after = d.counts["params"]
    assert after - before == 18_992_128
    assert d.loads and not d.loads_strictly  # every resnet50 key loads; layer3.6.. are new
    assert d.keys_match == 320 and not d.keys_gone and not d.keys_shape_differs
    assert len(d.keys_new) == 306 and all(k.startswith("layer3.") for k in d.keys_new)
    assert d.added[0] == "layer3.6.conv1" and not d.removed


def test_cli_exit_status_text_and_json(tmp_path: Path) -> None:
    code, out, err = run_cli("diff", "resnet50", "resnet101")
    assert code == 1, err
    assert "stage layer3: 6 x bottleneck" in out and "-> 23 x bottleneck" in out
    assert "params: 25,557,032 -> 44,549,160 (+18,992,128)" in out
    assert "every key of resnet50's checkpoint loads into resnet101" in out
    code, out, _ = run_cli("diff", "resnet50", "resnet50")
    assert code == 0 and "the same network" in out and "loads resnet50's checkpoint strictly" in out
    code, out, _ = run_cli("diff", "resnet50", "--set", "params.num_classes=10", "--json")
    assert code == 1
    data = json.loads(out)
    assert data["b"] == "resnet50 with --set params.num_classes=10"
    assert data["checkpoint"]["shape_differs"]["fc.weight"] == {"a": [1000, 2048], "b": [10, 2048]}
    assert data["counts"]["params"]["delta"] == -2_028_510
    assert not data["checkpoint"]["every_key_of_a_loads"]
    assert [s["stage"] for s in data["stages"]] == ["head"]


def test_shortcut_kinds_and_spec_errors(tmp_path: Path) -> None:
    code, out, _ = run_cli("diff", "resnet18", "--set", "shortcut=A", "--json")
    data = json.loads(out)
    assert code == 1
    assert {s["after"]["shortcut"] for s in data["stages"] if s["after"]["block_type"]} == {"A"}
    assert "layer2.0.downsample.0" in data["nodes"]["removed"]
    assert data["checkpoint"]["gone_from_a"][0].startswith("layer2.0.downsample")
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: resnet18\nname: bad\nstages:\n  layer2: {widht: 3}\n")
    code, _, err = run_cli("diff", "resnet18", str(bad))
    assert code == 2 and "bad.yaml:4:" in err and "widht" in err
    code, _, err = run_cli("diff", "resnet18")
    assert code == 1 and "give a second spec or --set" in err


def test_a_block_without_a_shortcut_names_none_and_no_common_key_does_not_load() -> None:
    d = diff(compiler.load_spec("resnet50"), compiler.load_spec("vit_b_16"))
    text = d.text()
    assert "12 x vit_encoder_block, output [197, 768]" in text  # no 'shortcut B'
    assert "checkpoint does not load into vit_b_16: no key matches" in text


def test_a_stage_shows_every_parameter_that_changes() -> None:
    """Beside width, stride and the like, any block parameter whose value differs is shown
    (DLA's levels, and the subtree type that follows from it); one that does not differ is not."""
    d = diff(compiler.load_spec("dla34"), compiler.load_spec("dla34", ["stages.level3.levels=1"]))
    assert [s.stage for s in d.stages] == ["level3"]
    line = next(x for x in d.text().splitlines() if x.startswith("  stage level3"))
    assert "levels 2, width 128" in line and "levels 1, width 128" in line
    assert "subtree dla_tree" in line and "subtree dla_basic" in line
    assert "base_width" not in line and "cardinality" not in line
    text = diff(compiler.load_spec("resnet50"), compiler.load_spec("resnet101")).text()
    assert "base_width" not in text and "expansion" not in text
