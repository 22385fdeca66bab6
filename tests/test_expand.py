"""Expansion: block templates, repeats, expressions, shortcut rules, references, extends, --set."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import compiler
from compiler.errors import ON_THE_COMMAND_LINE, OVERRIDES_SHOWN_AS, SpecError
from compiler.ir.graph import dump
from tests.conftest import SPECS, TESTS


@pytest.mark.parametrize("spec", ["tests/specs/tiny.yaml", "specs/resnet18.yaml"])
def test_golden_ir(spec: str, in_root: Path) -> None:
    golden = TESTS / "golden" / (Path(spec).stem + ".ir")
    assert dump(compiler.load_spec(spec)) == golden.read_text()


def nodes_of(
    path: Path | str, overrides: list[str] | None = None
) -> dict[str, compiler.ir.graph.Node]:
    return compiler.load_spec(path, overrides).nodes


def test_projection_only_where_the_shape_changes() -> None:
    nodes = nodes_of(SPECS / "resnet50.yaml")
    projected = sorted({n.block for n in nodes.values() if n.shortcut == "B"})
    assert projected == ["layer1.0", "layer2.0", "layer3.0", "layer4.0"]
    assert nodes["layer2.0.downsample.0"].attrs["stride"] == 2
    assert nodes["layer1.0.downsample.0"].attrs["stride"] == 1  # channels 64 -> 256


def test_option_c_projects_every_block() -> None:
    nodes = nodes_of(SPECS / "resnet18.yaml", ["shortcut=C"])
    blocks = {n.block for n in nodes.values() if n.block}
    assert {n.block for n in nodes.values() if n.shortcut == "C"} == blocks
    assert len(blocks) == 8


def test_option_a_is_parameter_free_and_switches_with_one_word() -> None:
    b = compiler.load_spec(SPECS / "resnet34.yaml")
    a = compiler.load_spec(SPECS / "resnet34.yaml", ["shortcut=A"])
    pads = [n for n in a.nodes.values() if n.op == "pad_channels"]
    assert [n.block for n in pads] == ["layer2.0", "layer3.0", "layer4.0"]
    assert all(n.meta["params"] == 0 for n in pads)
    projection = sum(n.meta["params"] for n in b.nodes.values() if n.shortcut == "B")
    assert a.params == b.params - projection


def test_none_removes_every_add() -> None:
    plain = compiler.load_spec(SPECS / "resnet18.yaml", ["shortcut=none"])
    assert not any(n.op == "add" for n in plain.nodes.values())
    relu = plain.nodes["layer1.0.relu2"]
    assert relu.inputs == ["layer1.0.bn2"]


def test_identity_shortcut_reads_the_block_input() -> None:
    nodes = nodes_of(SPECS / "resnet50.yaml")
    assert nodes["layer1.1.add"].inputs == ["layer1.1.bn3", "layer1.0.relu3"]


def test_avg_down_pools_only_when_strided() -> None:
    nodes = nodes_of(SPECS / "resnet50d.yaml")
    assert "layer1.0.downsample.0" not in nodes  # stride 1: timm's Identity
    assert nodes["layer1.0.downsample.1"].op == "conv"
    assert nodes["layer2.0.downsample.0"].op == "avgpool"
    assert nodes["layer2.0.downsample.1"].attrs["stride"] == 1


def test_stride_placement_v1_and_v1_5() -> None:
    v15 = nodes_of(SPECS / "resnet50.yaml")
    v1 = nodes_of(SPECS / "resnet50.yaml", ["stage_defaults={stride_in_1x1: true}"])
    assert (v15["layer2.0.conv1"].attrs["stride"], v15["layer2.0.conv2"].attrs["stride"]) == (1, 2)
    assert (v1["layer2.0.conv1"].attrs["stride"], v1["layer2.0.conv2"].attrs["stride"]) == (2, 1)
    assert v1["layer2.0.conv1"].shape == (*v15["layer2.0.conv1"].shape[:1], 28, 28)


def test_stride_goes_to_the_first_block_only() -> None:
    nodes = nodes_of(SPECS / "resnet18.yaml")
    assert nodes["layer2.0.conv1"].attrs["stride"] == 2
    assert nodes["layer2.1.conv1"].attrs["stride"] == 1


def test_first_block_overrides_give_torchvision_dilation() -> None:
    nodes = nodes_of(SPECS / "resnet50_dilated.yaml")
    assert nodes["layer3.0.conv2"].attrs["dilation"] == 1
    assert nodes["layer3.1.conv2"].attrs["dilation"] == 2
    assert nodes["layer4.0.conv2"].attrs["dilation"] == 2
    assert nodes["layer4.2.conv2"].attrs["dilation"] == 4
    assert nodes["layer4.2.relu3"].shape == (2048, 28, 28)


def test_variants_are_short_extends() -> None:
    for name in ("resnet101", "resnet152"):
        lines = (SPECS / f"{name}.yaml").read_text().splitlines()
        assert lines[0] == "extends: resnet50.yaml" and len(lines) <= 8
    g = compiler.load_spec(SPECS / "resnet152.yaml")
    assert [len(s.blocks) for s in g.stages if s.block_type] == [3, 8, 36, 3]


def test_overrides_from_the_command_line() -> None:
    g = compiler.load_spec(SPECS / "resnet50.yaml", ["stages.layer3.repeat=23"])
    ref = compiler.load_spec(SPECS / "resnet101.yaml")
    assert (g.params, g.macs) == (ref.params, ref.macs)
    g = compiler.load_spec(SPECS / "resnet50.yaml", ["params.num_classes=10"])
    assert g.nodes["fc"].shape == (10,)


def test_override_names_with_dots(tmp_path: Path) -> None:
    g = compiler.load_spec(SPECS / "resnet50d.yaml", ["stem.conv1.0.out=16"])
    assert g.nodes["conv1.0"].shape[0] == 16


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "stages.layr3.repeat=23",
            "<command line>:1:14: error: no key 'layr3' in stages; did you mean 'layer3'?",
        ),
        ("stages.layer3.repeat=[", "<command line>:1:28: error: invalid YAML"),
        ("stages.layer3.repeat=0", "<command line>:1:28: error: stage 'layer3': 'repeat' must be"),
        ("no-equals-sign", "<command line>:1:7: error: override 'no-equals-sign' must look like"),
    ],
)
def test_override_errors_are_located_on_the_command_line(override: str, message: str) -> None:
    token = OVERRIDES_SHOWN_AS.set(ON_THE_COMMAND_LINE)  # as netc's command line sets it
    try:
        with pytest.raises(SpecError) as e:
            compiler.load_spec(SPECS / "resnet50.yaml", [override])
    finally:
        OVERRIDES_SHOWN_AS.reset(token)
    assert e.value.render().startswith(message)
    assert f"--set {override}" in e.value.render()
    # from Python, the same error points into the argument as it was passed
    with pytest.raises(SpecError) as e:
        compiler.load_spec(SPECS / "resnet50.yaml", [override])
    _, line, col, rest = message.split(":", 3)
    python = f"<arguments>:{line}:{int(col) - len('--set ')}:{rest}"
    assert e.value.render().startswith(python) and "--set" not in e.value.render()


def test_a_compile_argument_error_is_phrased_for_python() -> None:
    with pytest.raises(SpecError) as e:
        compiler.compile("resnet18", outputs=["layer5"])
    text = e.value.render()
    assert text.startswith("<arguments>:1:9: error: unknown node 'layer5'; did you mean 'layer4'?")
    assert '    1 | outputs=["layer5"]' in text


def test_long_skip_across_stages() -> None:
    g = compiler.load_spec(TESTS / "specs" / "tiny.yaml")
    assert g.nodes["skip_pool"].inputs == ["layer1.0.relu2"]
    assert g.nodes["long_skip"].inputs == ["layer2.1.relu2", "skip_pad"]


def test_user_block_type_in_yaml_only(tmp_path: Path) -> None:
    spec = tmp_path / "se_net.yaml"
    spec.write_text(
        "name: se_net\ninput: [3, 32, 32]\n"
        "block_types:\n"
        "  se_basic:\n"
        "    params: {width: null, stride: 1, reduction: 4}\n"
        "    first_only: [stride]\n"
        '    let: {squeezed: "max(width // reduction, 1)"}\n'
        "    nodes:\n"
        "      conv1: {op: conv, out: width, kernel: 3, stride: stride}\n"
        "      bn1: {op: batchnorm}\n"
        "      relu1: {op: relu}\n"
        "      pool: {op: global_avgpool}\n"
        "      fc1: {op: conv, out: squeezed, kernel: 1, bias: true}\n"
        "      relu2: {op: relu}\n"
        "      fc2: {op: conv, out: width, kernel: 1, bias: true}\n"
        "      gate: {op: sigmoid}\n"
        "      scale: {op: mul, in: [relu1, gate]}\n"
        "      shortcut: {op: shortcut, in: input, out: width, stride: stride}\n"
        "      add: {op: add, in: [scale, shortcut]}\n"
        "stages:\n"
        "  layer1: {block: se_basic, repeat: 2, width: 16, stride: 2}\n"
    )
    g = compiler.load_spec(spec)
    assert g.nodes["layer1.1.scale"].shape == (16, 16, 16)
    assert g.nodes["layer1.0.fc1"].attrs["out"] == 4
    module = compiler.compile(g, seed=0)
    import torch

    assert module(torch.randn(2, 3, 32, 32)).shape == (2, 16, 16, 16)


def test_when_switches_a_node_off() -> None:
    g = compiler.load_spec(SPECS / "resnet26d.yaml")
    assert g.nodes["layer1.0.downsample.1"].inputs == ["maxpool"]


def test_node_cap_refuses_absurd_networks() -> None:
    with pytest.raises(SpecError) as e:
        compiler.load_spec(SPECS / "resnet50.yaml", limits=compiler.Limits(max_nodes=100))
    assert "more than 100 nodes" in e.value.render() and "--max-nodes" in e.value.render()
    with pytest.raises(SpecError) as e:
        compiler.load_spec(SPECS / "resnet50.yaml", ["stages.layer3.repeat=10**9"])
    assert "'repeat' is 1000000000; the cap is 10000" in e.value.render()


def test_parameter_cap() -> None:
    limits = compiler.Limits(max_params=1_000_000)
    with pytest.raises(SpecError) as e:
        compiler.load_spec(SPECS / "resnet18.yaml", limits=limits)
    # refused by the node that passes the cap, before the rest of the network is expanded
    assert (
        "basic.yaml:16:3: error: the network has more than 1,000,000 parameters by node "
        "'layer3.0.conv2'; the cap is 1,000,000"
    ) in e.value.render()
    assert "--max-params" in e.value.render()


def test_block_lookup_is_nearest_first(tmp_path: Path) -> None:
    """A blocks/ folder three levels above a spec does not shadow the blocks/ beside the library
    spec it extends (a stray /tmp/blocks once changed the located notes of a clean clone in
    /tmp); a blocks/ folder beside the spec itself still overrides the library's."""
    stray = tmp_path / "blocks"
    stray.mkdir()
    (stray / "basic.yaml").write_text("this: is not a block type\n")
    child = tmp_path / "a" / "b" / "c" / "child.yaml"
    child.parent.mkdir(parents=True)
    child.write_text(f"extends: {SPECS / 'cifar' / 'resnet20.yaml'}\nname: child\n")
    assert compiler.load_spec(child).params == 269_722
    own = child.parent / "blocks"
    own.mkdir()
    basic = (SPECS / "blocks" / "basic.yaml").read_text()
    (own / "basic.yaml").write_text(basic.replace("expansion: 1 ", "expansion: 2 "))
    assert compiler.load_spec(child).params > 269_722


def test_op_defaults_set_an_attribute_for_the_whole_network(tmp_path: Path) -> None:
    """MobileNetV3's BatchNorms (eps 1e-3, momentum 0.01) without touching a block file: the
    default reaches block and shortcut nodes; a node's own value wins."""
    spec = tmp_path / "eps.yaml"
    spec.write_text(
        f"extends: {SPECS / 'resnet18.yaml'}\nname: eps\n"
        "params: {+m: 0.01}\n"
        "op_defaults:\n  batchnorm: {eps: 0.001, momentum: m}\n"
        "stem:\n  bn1: {eps: 0.00002}\n"
    )
    graph = compiler.load_spec(spec)
    bns = {n.name: n.attrs for n in graph.nodes.values() if n.op == "batchnorm"}
    assert bns["bn1"] == {"eps": 2e-5, "momentum": 0.01, "zero_init": False, "frozen": False}
    assert bns["layer2.0.downsample.1"]["eps"] == 0.001
    assert all(a["momentum"] == 0.01 for a in bns.values())
    module = compiler.compile(graph)
    assert module.get_submodule("layer3.1.bn2").eps == 0.001
    assert module.get_submodule("layer3.1.bn2").momentum == 0.01


def test_flat_blocks_number_their_nodes_on_in_the_container() -> None:
    """VGG's make_layers: conv, [BN,] ReLU per block and a pool after a row's last block, each the
    next member of `features`; `repeat` is the number of blocks in the stage."""
    plain = compiler.load_spec(SPECS / "vgg11.yaml")
    bn = compiler.load_spec(SPECS / "vgg11_bn.yaml")
    ops = [n.op for n in plain.nodes.values() if n.name.startswith("features.")]
    assert ops[:6] == ["conv", "relu", "maxpool", "conv", "relu", "maxpool"]
    assert list(plain.nodes)[:3] == ["features.0", "features.1", "features.2"]
    assert bn.nodes["features.1"].op == "batchnorm" and bn.nodes["features.3"].op == "maxpool"
    assert len([n for n in bn.nodes if n.startswith("features.")]) == 29
    assert not plain.block_params  # a flat block is no module


def test_flat_numbering_goes_on_from_the_stem(tmp_path: Path) -> None:
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 8, 8]\n"
        "block_types:\n  unit:\n    flat: true\n    nodes:\n"
        "      conv: {op: conv, out: 4, kernel: 3}\n      relu: {op: relu}\n"
        "stem:\n  body.0: {op: conv, out: 4, kernel: 1}\n"
        "stages:\n  s1: {block: unit, repeat: 2, path: body}\n"
    )
    assert list(nodes_of(spec)) == ["body.0", "body.1", "body.2", "body.3", "body.4"]


def test_a_dense_stage_reads_every_earlier_output_and_ends_in_their_concat() -> None:
    graph = compiler.load_spec(SPECS / "densenet121.yaml")
    nodes = graph.nodes
    assert nodes["features.denseblock1.denselayer1.cat"].inputs == ["features.pool0"]
    assert nodes["features.denseblock1.denselayer3.cat"].inputs == [
        "features.pool0",
        "features.denseblock1.denselayer1.conv2",
        "features.denseblock1.denselayer2.conv2",
    ]
    # in_channels is the sum of what the layer reads: 64 + 2 * 32
    assert nodes["features.denseblock1.denselayer3.norm1"].shape == (128, 56, 56)
    end = nodes["features.denseblock1.concat"]
    assert len(end.inputs) == 7 and end.shape == (64 + 6 * 32, 56, 56)
    assert nodes["features.transition1.norm"].inputs == ["features.denseblock1.concat"]


def test_an_override_sets_only_declared_parameters_unless_it_adds_one() -> None:
    with pytest.raises(SpecError) as e:
        compiler.load_spec("resnet50", ["params.num_clases=10"])
    text = e.value.render()
    assert "<arguments>:1:8: error: the spec has no parameter 'num_clases'" in text
    assert "did you mean 'num_classes'?" in text and "+params.num_clases" in text
    with pytest.raises(SpecError, match="already a parameter of the spec"):
        compiler.load_spec("resnet50", ["+params.num_classes=10"])
    graph = compiler.load_spec("resnet50", ["+params.extra=3", "params.num_classes=10"])
    assert graph.shape_of(graph.output) == (10,)
    assert graph.origin is not None and graph.origin.data["params"]["extra"] == 3


def test_a_child_adds_a_parameter_with_a_plus(tmp_path: Path) -> None:
    child = tmp_path / "child.yaml"
    child.write_text(
        f"extends: {SPECS / 'resnet18.yaml'}\nname: child\nparams:\n  +groups_extra: 2\n"
        "  num_classes: 10\n"
    )
    graph = compiler.load_spec(child, limits=None)
    assert graph.origin is not None and graph.origin.data["params"]["groups_extra"] == 2
    assert graph.shape_of(graph.output) == (10,)


LOOP_BLOCK = """
name: loops
input: [8, 6, 6]
block_types:
  pieces:
    params: {width: null, scale: 4}
    let:
      first: in_channels != width * scale
    nodes:
      conv1: {op: conv, out: width * scale, kernel: 1}
      "spx.{i}": {for: {i: scale}, op: chunk, chunks: scale, index: i, in: conv1}
      each:
        for: {i: scale - 1}
        nodes:
          "sp.{i}": {op: add, in: ["spx.{i}", "relus.{i - 1}"], when: i > 0 and not first}
          "convs.{i}": {op: conv, out: width, kernel: 3}
          "relus.{i}": {op: relu}
      cat: {op: concat, in: ["relus.{i} for i in range(scale - 1)", "spx.{scale - 1}"]}
stages:
  layer1: {block: pieces, repeat: 2, width: 3}
"""


def test_a_loop_body_makes_its_nodes_in_turn_and_a_list_names_them_all(tmp_path: Path) -> None:
    spec = tmp_path / "loops.yaml"
    spec.write_text(LOOP_BLOCK)
    graph = compiler.load_spec(spec)
    nodes = graph.nodes
    # for i = 0, then 1, then 2: each piece's conv reads the one before through its add
    second = [n for n in nodes if n.startswith("layer1.1.") and ("sp." in n or "convs" in n)]
    assert second == [
        "layer1.1.convs.0", "layer1.1.sp.1", "layer1.1.convs.1", "layer1.1.sp.2",
        "layer1.1.convs.2",
    ]  # fmt: skip
    assert nodes["layer1.1.sp.1"].inputs == ["layer1.1.spx.1", "layer1.1.relus.0"]
    # the first block switches its adds off: each conv reads its own piece, and the add's second
    # input (relus.-1 when i is 0) is never looked for
    assert nodes["layer1.0.convs.1"].inputs == ["layer1.0.spx.1"]
    assert not any(n.startswith("layer1.0.sp.") for n in nodes)
    assert nodes["layer1.1.cat"].inputs == [
        *(f"layer1.1.relus.{i}" for i in range(3)),
        "layer1.1.spx.3",
    ]
    assert graph.shape_of("layer1.1.cat") == (12, 6, 6)
    module = compiler.compile(graph, seed=0)
    keys = [k for k in module.state_dict() if k.startswith("layer1.0.")]
    assert keys[:2] == ["layer1.0.conv1.weight", "layer1.0.convs.0.weight"]
    assert module(torch.randn(2, 8, 6, 6)).shape == (2, 12, 6, 6)


def test_a_loop_counts_from_the_blocks_parameters(tmp_path: Path) -> None:
    spec = tmp_path / "loops.yaml"
    spec.write_text(LOOP_BLOCK.replace("width: 3}", "width: 3, scale: 2}"))
    graph = compiler.load_spec(spec)
    assert sum(n.startswith("layer1.0.convs.") for n in graph.nodes) == 1
    assert graph.shape_of("layer1.0.cat") == (6, 6, 6)


def test_a_child_places_an_entry_after_or_before_one_of_its_base(tmp_path: Path) -> None:
    child = tmp_path / "placed.yaml"
    child.write_text(
        f"extends: {SPECS / 'resnet18.yaml'}\nname: placed\nstem:\n"
        "  act0: {op: relu, after: bn1}\n  drop: {op: dropout, p: 0.1, before: conv1}\n"
        "  extra: {op: identity}\n"
    )
    graph = compiler.load_spec(child)
    stem = [n for n in graph.nodes if "." not in n][:7]
    # placed where named; an entry without a place goes to the end of its section, as before
    assert stem == ["drop", "conv1", "bn1", "act0", "relu", "maxpool", "extra"]
    assert graph.nodes["relu"].inputs == ["act0"]


def test_a_template_takes_a_name_from_a_string_parameter(tmp_path: Path) -> None:
    spec = tmp_path / "named.yaml"
    spec.write_text(
        "name: named\ninput: [3, 8, 8]\nblock_types:\n  joiner:\n"
        "    params: {width: null, other: \"'input'\"}\n"
        "    nodes:\n      conv: {op: conv, out: width, kernel: 3}\n"
        '      join: {op: add, in: [conv, "{other}"]}\n'
        "stem:\n  stem_conv: {op: conv, out: 8, kernel: 3}\n"
        "stages:\n  layer1: {block: joiner, width: 8, other: \"'stem_conv'\"}\n"
        "  layer2: {block: joiner, width: 8}\n"
    )
    graph = compiler.load_spec(spec)
    assert graph.nodes["layer1.0.join"].inputs == ["layer1.0.conv", "stem_conv"]
    assert graph.nodes["layer2.0.join"].inputs == ["layer2.0.conv", "layer1.0.join"]
    bad = spec.read_text().replace("\"'stem_conv'\"", "\"'a b'\"")
    spec.write_text(bad)
    with pytest.raises(SpecError, match=r"must give a whole number or a name, got 'a b'"):
        compiler.load_spec(spec)
