"""Blocks inside blocks: a block node is an instance of its type at its path (a module of that
type's class), reads extra inputs as input.1, input.2, ..., may choose its type by an expression
(a block type holding itself), and is drawn, pruned and counted like any block."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import compiler
from compiler.errors import SpecError
from compiler.lowering.lower import block_class
from exporters.graphviz import block_diagram
from tests.conftest import ROOT, SPECS

PAIR = """
name: pair
input: [4, 8, 8]
block_types:
  mix:
    params: {width: null}
    nodes:
      conv: {op: conv, out: width, kernel: 1}
      # every extra input, if any: none in a stage's block, one or more inside another block
      cat: {op: concat, in: [conv, "input.{k} for k in range(input_count) if k > 0"]}
  pair:
    params: {width: null}
    nodes:
      first: {block: mix, width: width}
      second: {block: mix, in: [first, input, first], width: width}
stages:
  layer1: {block: pair, width: 4}
"""


def _spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "net.yaml"
    path.write_text(text)
    return path


def test_a_block_node_is_a_module_of_its_type_with_extra_inputs(tmp_path: Path) -> None:
    graph = compiler.load_spec(_spec(tmp_path, PAIR))
    assert graph.nested_blocks == {"layer1.0.first": "mix", "layer1.0.second": "mix"}
    assert graph.block_params["layer1.0.second"]["input_count"] == 3
    assert graph.nodes["layer1.0.second.cat"].inputs == [
        "layer1.0.second.conv",
        "input",
        "layer1.0.first.cat",
    ]
    assert graph.shape_of("layer1.0.first.cat") == (4, 8, 8)  # its only input: no extra
    assert graph.shape_of("layer1.0.second.cat") == (12, 8, 8)
    model = compiler.compile(_spec(tmp_path, PAIR), seed=0)
    assert isinstance(model.get_submodule("layer1.0"), block_class("pair"))
    assert isinstance(model.get_submodule("layer1.0.second"), block_class("mix"))
    assert [k for k in model.state_dict()] == [
        "layer1.0.first.conv.weight",
        "layer1.0.second.conv.weight",
    ]
    x = torch.randn(2, 4, 8, 8)
    inner = model.get_submodule("layer1.0")
    first = inner.first(x)
    expected = torch.cat([inner.second.conv(first), x, first], 1)
    assert torch.equal(model(x), expected)


def test_a_recursive_block_stops_by_its_parameter() -> None:
    graph = compiler.load_spec(ROOT / "docs" / "examples" / "nested_tree.yaml")
    trees = [b for b, t in graph.nested_blocks.items() if t == "tree"]
    units = [b for b, t in graph.nested_blocks.items() if t == "unit"]
    # per stage block of depth 3: two trees of depth 2, each of two trees of depth 1, each of
    # two units; two stage blocks
    assert len(trees) == 2 * (2 + 4) and len(units) == 2 * 8
    assert "trees.1.right.left.right.conv" in graph.nodes
    assert "trees.1.right.left.right.left" not in graph.nested_blocks


def test_dla_trees_nest_as_timm_builds_them() -> None:
    graph = compiler.load_spec(SPECS / "dla102.yaml")
    # level4 has 4 levels: trees of trees of trees of two bottleneck leaves
    assert graph.nested_blocks["level4.tree2.tree2.tree1"] == "dla_tree"
    assert graph.nested_blocks["level4.tree2.tree2.tree1.tree2"] == "dla_bottleneck"
    # the root of the last tree aggregates the leaves and every child passed down
    cat = graph.nodes["level4.tree2.tree2.tree2.root.cat"]
    assert cat.inputs == [
        "level4.tree2.tree2.tree2.tree2.relu3",
        "level4.tree2.tree2.tree2.tree1.relu3",
        "level4.downsample",
        "level4.tree1.tree2.tree2.root.relu",
        "level4.tree2.tree1.tree2.root.relu",
        "level4.tree2.tree2.tree1.root.relu",
    ]


def test_feature_outputs_keep_the_blocks_nested_in_what_they_keep() -> None:
    graph = compiler.load_spec(SPECS / "dla34.yaml", ["outputs=[level3]"])
    assert set(graph.nested_blocks) == {
        b for b in compiler.load_spec(SPECS / "dla34.yaml").nested_blocks if b < "level4"
    }
    assert "level3.tree2.tree1" in graph.block_params


def test_nested_blocks_are_drawn_as_nested_clusters() -> None:
    graph = compiler.load_spec(SPECS / "dla34.yaml")
    dot = block_diagram(graph, "level3").source
    assert '"cluster_n_level3.tree1" {' in dot and '"cluster_n_level3.tree1.tree2" {' in dot
    assert 'label="tree1 · dla_tree"' in dot and 'label="tree2 · dla_basic"' in dot


@pytest.mark.parametrize(
    ("block", "params", "message"),
    [
        ("{'lef'}", "width: width", "unknown block type 'lef'; did you mean 'leaf'?"),
        ("leaf", "widht: width", "block 'leaf' has no parameter 'widht'; did you mean 'width'?"),
        ("leaf", "", "block 'leaf' needs parameter 'width'"),
        ("here", "width: width", "would nest blocks 33 deep; the cap is 32"),
    ],
)
def test_bad_block_nodes_are_located_errors(
    tmp_path: Path, block: str, params: str, message: str
) -> None:
    text = f"""
name: bad
input: [3, 8, 8]
block_types:
  leaf:
    params: {{width: null}}
    nodes:
      conv: {{op: conv, out: width, kernel: 3}}
  here:
    params: {{width: null}}
    nodes:
      inner: {{block: "{block}", {params}}}
stages:
  layer1: {{block: here, width: 8}}
"""
    with pytest.raises(SpecError) as e:
        compiler.load_spec(_spec(tmp_path, text))
    (d,) = e.value.diagnostics
    assert message in d.message
    assert d.loc.line == 12


BRANCHES = """
name: branches
input: [4, 8, 8]
block_types:
  unit:
    params: {width: null}
    nodes:
      conv: {op: conv, out: width, kernel: 1}
      relu: {op: relu}
  two:
    params: {width: null}
    nodes:
      first: {block: unit, width: width}
      second: {block: unit, in: input.1, width: width}
      # the first unit's conv, read by its path in this block
      mixed: {op: add, in: [second, first.conv], inplace: false}
stem:
  a: {op: conv, out: 4, kernel: 3}
  b: {op: conv, out: 4, kernel: 3, in: input}
stages:
  layer1: {block: two, width: 4, in: [a, b]}
"""


def test_a_stage_of_several_inputs_and_a_read_inside_a_block_node(tmp_path: Path) -> None:
    graph = compiler.load_spec(_spec(tmp_path, BRANCHES))
    assert graph.block_params["layer1.0"]["input_count"] == 2
    assert graph.nodes["layer1.0.first.conv"].inputs == ["a"]
    assert graph.nodes["layer1.0.second.conv"].inputs == ["b"]
    assert graph.nodes["layer1.0.mixed"].inputs == ["layer1.0.second.relu", "layer1.0.first.conv"]
    model = compiler.compile(_spec(tmp_path, BRANCHES), seed=0).eval()
    x = torch.randn(1, 4, 8, 8)
    block = model.get_submodule("layer1.0")
    a, b = model.a(x), model.b(x)
    with torch.no_grad():
        expected = torch.relu(block.second.conv(b)) + block.first.conv(a)
        assert torch.allclose(model(x), expected)
