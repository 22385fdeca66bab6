"""`netc gradflow`: per-layer gradient norms of several specs on one figure, with --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import compiler
from compiler.ops import OPS
from compiler.tools.gradflow import measure
from tests.conftest import SPECS, run_cli


def test_norms_per_weight_layer_in_order_reproducible_and_moved_by_training() -> None:
    graph = compiler.load_spec(SPECS / "cifar" / "resnet20.yaml")
    flow = measure(graph, seed=1)
    assert flow.layers == [n.name for n in graph.nodes.values() if OPS[n.op].weighted]
    assert len(flow.layers) == 20 and flow.layers[-1] == "fc"
    assert all(n > 0 for n in flow.norms)
    assert measure(graph, seed=1).norms == flow.norms  # the same seed, the same figures
    assert measure(graph, seed=1, steps=2).norms != flow.norms


def test_cli_figure_table_and_json(tmp_path: Path) -> None:
    out = tmp_path / "gf.png"
    code, stdout, err = run_cli("gradflow", "cifar/plain20", "cifar/resnet20", "-o", str(out))
    assert code == 0, err
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert "plain20" in stdout and "resnet20" in stdout and "first / last" in stdout
    svg = tmp_path / "gf.svg"
    code, stdout, _ = run_cli("gradflow", "cifar/resnet20", "-o", str(svg), "--json")
    assert code == 0 and svg.read_text().lstrip().startswith("<?xml")
    data = json.loads(stdout)
    assert data[0]["name"] == "resnet20" and len(data[0]["layers"]) == 20
    assert (
        data[0]["first_over_last"]
        == data[0]["layers"][0]["grad_norm"] / data[0]["layers"][-1]["grad_norm"]
    )


def test_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: resnet18\nname: bad\nstem:\n  conv1: {kernal: 3}\n")
    code, _, err = run_cli("gradflow", str(bad), "-o", str(tmp_path / "g.png"))
    assert code == 2 and "bad.yaml:4:" in err
    code, _, err = run_cli("gradflow", "cifar/resnet20", "-o", str(tmp_path / "no" / "g.png"))
    assert code == 1 and "cannot write" in err
    assert not (tmp_path / "g.png").exists()


@pytest.mark.zoo
def test_attention_layers_and_several_outputs_have_their_norms() -> None:
    # ViT's attention keeps its projections in in_proj_weight, not weight; GoogLeNet returns its
    # auxiliary classifiers beside the output in train mode, a backbone a list of feature maps
    vit = measure(compiler.load_spec("vit_b_16", ["input=[3, 32, 32]", "params.patch=16"]))
    attention = [k for k, p in enumerate(vit.layers) if p.endswith("self_attention")]
    assert len(attention) == 12
    assert vit.norms[-1] > 0  # the head; its zero weights stop every gradient before it
    swin = measure(compiler.load_spec("swin_t", ["input=[3, 64, 64]"]), steps=1)
    assert all(n > 0 for n in swin.norms) and len(swin.norms) == len(swin.layers)
    aux = measure(compiler.load_spec("googlenet", ["input=[3, 96, 96]"]))
    assert all(n > 0 for n in aux.norms)  # the auxiliary heads' layers too
    backbone = compiler.load_spec("resnet18", ["input=[3, 32, 32]", "outputs=[layer2, layer4]"])
    flow = measure(backbone)
    assert flow.layers[-1].startswith("layer4") and all(n > 0 for n in flow.norms)
    # named outputs: a dict, each of its values measured
    seg = compiler.load_spec("segmentation/lraspp_mobilenet_v3_large", ["input=[3, 32, 32]"])
    named = measure(seg, steps=1)
    assert named.layers[-1] == "classifier.high_classifier" and all(n > 0 for n in named.norms)
