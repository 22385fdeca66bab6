"""Feature outputs: a spec's ``outputs:`` (or ``compile(outputs=...)``) makes a backbone that
returns those feature maps as a list, with timm-style ``feature_info``, exports them all to ONNX
and marks them in diagrams."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision
from torchvision.models.feature_extraction import create_feature_extractor

import compiler
from compiler.lowering.folding import fold_module
from exporters import graphviz as gv
from exporters.onnx import export
from tests.conftest import SPECS, run_cli

LEVELS = ["layer2", "layer3", "layer4"]


def test_a_backbone_returns_its_feature_maps_like_torchvisions_extractor() -> None:
    ours = compiler.compile("resnet50", outputs=LEVELS, seed=0).eval()
    ref = torchvision.models.resnet50().eval()
    ref_state = ref.state_dict()
    assert not any(k.startswith("fc.") for k in ours.state_dict())  # the head is gone
    ours.load_state_dict({k: v for k, v in ref_state.items() if not k.startswith("fc.")})
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        got = ours(x)
        want = create_feature_extractor(ref, return_nodes=LEVELS)(x)
    assert isinstance(got, list) and len(got) == 3
    for tensor, name in zip(got, LEVELS, strict=True):
        torch.testing.assert_close(tensor, want[name], rtol=0, atol=0)
    info = ours.feature_info
    assert info.channels() == [512, 1024, 2048]
    assert info.reduction() == [8, 16, 32]
    assert info.module_name() == LEVELS


def test_the_spec_key_and_the_counts() -> None:
    graph = compiler.load_spec(SPECS / "resnet50.yaml", ["outputs=[layer2, layer3, layer4]"])
    assert [f.name for f in graph.features] == LEVELS
    assert graph.returns == ["layer2.3.relu3", "layer3.5.relu3", "layer4.2.relu3"]
    full = compiler.load_spec(SPECS / "resnet50.yaml")
    assert graph.params == full.params - 2048 * 1000 - 1000  # the fc is not built
    module = compiler.compile(graph)
    assert sum(p.numel() for p in module.parameters()) == graph.params


def test_a_block_or_a_node_may_be_an_output_and_order_is_kept() -> None:
    m = compiler.compile("cifar/resnet20", outputs=["layer3", "layer1.2", "conv1"], seed=0)
    outs = m(torch.randn(1, 3, 32, 32))
    assert [tuple(o.shape[1:]) for o in outs] == [(64, 8, 8), (16, 32, 32), (16, 32, 32)]


@pytest.mark.parametrize("exporter", ["netc", "dynamo"])
@pytest.mark.export
def test_onnx_export_with_several_outputs(exporter: str, tmp_path: Path) -> None:
    graph = compiler.load_spec(
        SPECS / "resnet18.yaml", ["outputs=[layer2, layer3, layer4]", "input=[3, 64, 64]"]
    )
    module = compiler.compile(graph, seed=0).eval()
    report = export(module, graph, tmp_path / "f.onnx", exporter=exporter)
    assert report.passed
    assert [o["name"] for o in report.outputs] == LEVELS
    assert [o["shape"] for o in report.outputs] == [
        ["batch", 128, 8, 8],
        ["batch", 256, 4, 4],
        ["batch", 512, 2, 2],
    ]


def test_diagrams_mark_the_outputs() -> None:
    graph = compiler.load_spec(SPECS / "resnet18.yaml", ["outputs=[layer3, layer4]"])
    for detail in ("stages", "blocks", "ops"):
        source = gv.network_diagram(graph, detail).source
        assert "output 0: layer3" in source and "output 1: layer4" in source


def test_compile_json_lists_the_outputs(in_root: Path) -> None:
    code, out, _ = run_cli("compile", "resnet18", "--set", "outputs=[layer4]", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["outputs"] == [{"name": "layer4", "node": "layer4.1.relu2", "shape": [512, 7, 7]}]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[layer9]", "unknown node 'layer9'; did you mean"),
        ("[layer2, layer2]", "'layer2' is already one of the outputs"),
        ("[input]", "'input' is the network's input, not a feature map"),
        ("[]", "'outputs' lists no names"),
    ],
)
def test_bad_outputs_are_located_errors(value: str, message: str, in_root: Path) -> None:
    code, _, err = run_cli("check", "specs/resnet18.yaml", "--set", f"outputs={value}")
    assert code == 2 and message in err and "<command line>:1:" in err


def test_an_output_read_by_an_in_place_op_keeps_its_value(tmp_path: Path) -> None:
    """bn1 is returned and also read by the stem's ReLU: that ReLU must not overwrite it, and
    the export (BatchNorm folded into conv1, which then stands for bn1) returns the same."""
    graph = compiler.load_spec(
        SPECS / "resnet18.yaml", ["outputs=[bn1, layer4]", "input=[3, 64, 64]"]
    )
    model = compiler.compile(graph, seed=0).eval()
    assert not model.relu.inplace
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        bn1, _ = model(x)
        torch.testing.assert_close(bn1, model.bn1(model.conv1(x)), rtol=0, atol=0)
    assert (bn1 < 0).any()  # the value before the ReLU
    folded, folded_graph = fold_module(model, graph)
    assert folded_graph.returns[0] == "conv1"  # bn1 folded into conv1, which returns its value
    assert export(folded, folded_graph, tmp_path / "f.onnx", folded=True).passed


@pytest.mark.parametrize(
    ("spec", "outputs", "size", "layout", "reduction"),
    [
        ("resnet18", ["layer2", "layer4"], 64, "NCHW", [8, 32]),
        ("swin_t", ["stage2", "stage3", "stage4"], 64, "NHWC", [8, 16, 32]),
        ("vit_b_16", ["encoder.ln"], 32, "NLC", [None]),
    ],
)
def test_feature_info_agrees_with_the_tensors_in_every_layout(
    spec: str, outputs: list[str], size: int, layout: str, reduction: list[int | None]
) -> None:
    # channels where the layout keeps them (a Swin stage's [N, H, W, C] has C channels, not H)
    module = compiler.compile(spec, overrides=[f"input=[3, {size}, {size}]"], outputs=outputs)
    got = module.eval()(torch.randn(1, 3, size, size))
    info = module.feature_info
    assert info.layout() == [layout] * len(outputs) and info.reduction() == reduction
    channel_dim = {"NCHW": 1, "NHWC": -1, "NLC": -1}[layout]
    assert info.channels() == [t.shape[channel_dim] for t in got]
    for t, r in zip(got, reduction, strict=True):
        if r is not None:
            assert size // r == t.shape[2 if layout == "NCHW" else 1]
