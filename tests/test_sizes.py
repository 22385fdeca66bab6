"""Networks at any input size: the ``sizes:`` proof against brute force, the built module at the
sizes it accepts, ``resize`` to another node's size, named outputs and ``parts:``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

import compiler
from compiler.errors import SpecError
from compiler.ir.graph import Graph
from compiler.ir.passes import sizes
from compiler.ir.size_rule import SizeRule
from compiler.ops import OPS, ShapeError
from tests.conftest import SPECS

# networks whose rules hold at some sides and fail at others: strides, odd kernels, crops,
# upsamplings that must meet a skip, a ceil-mode pool, a resize by a scale
PROBES = {
    "odd_add": """
stem:
  down: {op: conv, out: 3, kernel: 3, stride: 2}
  up: {op: upsample, scale: 2}
  add: {op: add, in: [up, input]}
""",
    "unet_like": """
stem:
  c1: {op: conv, out: 4, kernel: 3, padding: 0}
  p1: {op: maxpool, kernel: 2}
  c2: {op: conv, out: 4, kernel: 3, padding: 0}
  p2: {op: maxpool, kernel: 3, stride: 3, ceil_mode: true}
  c3: {op: conv, out: 4, kernel: 3, padding: 0}
  up: {op: conv_transpose, out: 4, kernel: 3, stride: 3}
  crop: {op: crop, in: [c2, up]}
  cat: {op: concat, in: [crop, up]}
""",
    "scaled": """
stem:
  s: {op: resize, scale: 0.5}
  c: {op: conv, out: 3, kernel: 3, stride: 2}
  u: {op: upsample, scale: 4}
  add: {op: add, in: [u, input]}
""",
    "resized": """
stem:
  c: {op: conv, out: 3, kernel: 5, stride: 3, padding: 0}
  r: {op: resize, like: input, mode: bilinear}
  add: {op: add, in: [r, input]}
""",
}


def _graph(body: str, side: int, tmp_path: Path) -> Graph:
    path = tmp_path / "net.yaml"
    path.write_text(f"name: probe\ninput: [3, {side}, {side}]\n{body}")
    return compiler.load_spec(path)


def _fails(graph: Graph, side: int) -> bool:
    """Brute force: does any rule fail, or any node's weights change, at input sides ``side``?"""
    try:
        shapes = sizes.shapes_at(graph, side)
    except ShapeError:
        return True
    return any(
        OPS[n.op].params(n.attrs, [shapes[i] for i in n.inputs], shapes[n.name]) != n.meta["params"]
        for n in graph.nodes.values()
    )


@pytest.mark.parametrize("name", sorted(PROBES))
@pytest.mark.parametrize(
    "rule",
    [
        SizeRule(),
        SizeRule(min=12),
        SizeRule(multiple=2),
        SizeRule(multiple=6, remainder=3),
        SizeRule(min=40, multiple=4),
        SizeRule(min=50, max=300, multiple=6),
    ],
    ids=lambda r: r.text(),
)
def test_the_proof_agrees_with_brute_force(name: str, rule: SizeRule, tmp_path: Path) -> None:
    """For every rule, the proof passes exactly when no accepted side up to 400 fails, and a
    side it names fails. (The graph is built at a side where it is valid, accepted or not: the
    weights the proof compares against are that size's.)"""
    graph = _graph(PROBES[name], 96, tmp_path)
    graph.sizes = rule
    failing = [n for n in range(1, 401) if rule.accepts(n) and _fails(graph, n)]
    try:
        sizes.prove(graph)
    except SpecError as e:
        side = int(e.diagnostics[0].message.split(" at input 3x")[1].split("x")[0])
        assert failing and _fails(graph, side)
    else:
        assert not failing


def test_each_probe_net_fails_somewhere_and_passes_somewhere(tmp_path: Path) -> None:
    """The brute force above is not vacuous: every probe network has sides that fail and sides
    that pass."""
    for body in PROBES.values():
        graph = _graph(body, 96, tmp_path)
        verdicts = {_fails(graph, n) for n in range(1, 200)}
        assert verdicts == {True, False}


def test_the_period_follows_strides_and_upsamplings(tmp_path: Path) -> None:
    assert sizes.period(_graph(PROBES["odd_add"], 64, tmp_path)) == 2
    assert sizes.period(_graph(PROBES["unet_like"], 96, tmp_path)) == 6
    assert sizes.period(compiler.load_spec(SPECS / "resnet50.yaml")) == 32
    assert sizes.probe_sides(SizeRule(multiple=32, max=100), 32) == [32, 64, 96]


@pytest.mark.parametrize(
    ("spec", "sides"),
    [
        ("unet/unet_padded.yaml", [16, 48, 80]),
        ("segmentation/lraspp_mobilenet_v3_large.yaml", [33, 50, 71]),
    ],
)
def test_the_module_runs_at_every_accepted_size(spec: str, sides: list[int]) -> None:
    """The module built for the written size runs at others, with the shapes the check gives."""
    overrides = ["params.width=8"] if "unet" in spec else None
    graph = compiler.load_spec(SPECS / spec, overrides)
    assert graph.sizes is not None
    module = compiler.compile(graph).eval()
    for side in sides:
        assert graph.sizes.accepts(side)
        expected = sizes.shapes_at(graph, side)
        with torch.no_grad():
            out = module(torch.randn(1, 3, side, side))
        got = out["out"] if isinstance(out, dict) else out
        node = graph.features[0].node if graph.features else graph.output
        assert tuple(got.shape[1:]) == tuple(expected[node])


def test_the_paper_unet_states_its_tiles() -> None:
    graph = compiler.load_spec(SPECS / "unet" / "unet.yaml")
    assert graph.sizes == SizeRule(min=188, multiple=16, remainder=12, loc=graph.sizes.loc)
    with pytest.raises(SpecError, match="nearest accepted sides are 572 and 588"):
        compiler.load_spec(SPECS / "unet" / "unet.yaml", ["input=[1, 573, 573]"])
    assert compiler.load_spec(SPECS / "unet" / "unet.yaml", ["input=[1, 188, 188]"]).shape_of(
        "up1.relu2"
    ) == (64, 4, 4)


def test_resize_like_is_interpolate_to_the_other_size(tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(
        "name: r\ninput: [3, 40, 30]\nsizes: any\nstem:\n"
        "  c: {op: conv, out: 4, kernel: 3, stride: 4}\n"
        "  r: {op: resize, like: input, mode: bilinear}\n"
    )
    module = compiler.compile(path, seed=0).eval()
    x = torch.randn(2, 3, 37, 23)
    with torch.no_grad():
        expected = F.interpolate(module.c(x), size=(37, 23), mode="bilinear", align_corners=False)
        assert torch.equal(module(x), expected)


def test_named_outputs_are_a_dict_in_torch_and_names_in_onnx(tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(
        "name: named\ninput: [3, 32, 32]\nstem:\n"
        "  a: {op: conv, out: 4, kernel: 3}\n"
        "  b: {op: conv, out: 5, kernel: 3, stride: 2}\n"
        "outputs: {main: b, side: a}\n"
    )
    graph = compiler.load_spec(path)
    assert graph.output_keys == ["main", "side"]
    module = compiler.compile(graph)
    out = module(torch.randn(1, 3, 32, 32))
    assert list(out) == ["main", "side"] and out["main"].shape == (1, 5, 16, 16)
    assert module.feature_info.module_name() == ["b", "a"]
    assert module.feature_info.keys() == ["main", "side"]
    from exporters.options import output_names

    assert output_names(graph) == ["main", "side"]


def test_a_part_is_the_network_under_its_path() -> None:
    """The backbone part holds the library ResNet-50's nodes under backbone.; its head is left
    out; the segmentation heads read its stages by path."""
    graph = compiler.load_spec(SPECS / "segmentation" / "fcn_resnet50.yaml")
    backbone = compiler.load_spec(SPECS / "resnet50_dilated.yaml")
    held = [n[len("backbone.") :] for n in graph.nodes if n.startswith("backbone.")]
    assert held == [n for n in backbone.nodes if n not in ("avgpool", "flatten", "fc")]
    assert graph.nodes["classifier.0"].inputs == ["backbone.layer4.2.relu3"]
    assert graph.nodes["aux_classifier.0"].inputs == ["backbone.layer3.5.relu3"]
    assert graph.block_types()["backbone.layer1.0"] == "bottleneck"
    stage_names = [s.name for s in graph.stages]
    assert stage_names[:2] == ["backbone.stem", "backbone.layer1"]
