"""Diagrams: DOT structure (clusters, node counts, "xN" labels, shortcut styles, shapes) and
rendering of every block type and every library network to SVG and PNG."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import compiler
from compiler.frontend.block_network import block_network
from compiler.frontend.library import spec_files
from exporters.graphviz import block_diagram, network_diagram, render
from tests.conftest import ROOT, SPECS, TESTS, require_dot, run_cli

HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(
    not HAVE_DOT and not require_dot(),
    reason="Graphviz 'dot' not installed (CI sets NETC_REQUIRE_DOT=1)",
)


def edges(source: str) -> list[str]:
    """Edge statements (graphviz starts each statement with a tab; labels may span lines)."""
    return [st.strip() for st in re.split(r"\n(?=\t)", source) if "->" in st]


def test_bottleneck_block_is_the_papers_figure() -> None:
    graph, block = block_network(SPECS / "blocks" / "bottleneck.yaml")
    src = block_diagram(graph, block).source
    for label in ("256-d", "1x1 conv, 64", "3x3 conv, 64", "1x1 conv, 256", "ReLU"):
        assert f'label="{label}"' in src or f"label={label}" in src, label
    assert re.search(r"shape=circle", src) and 'label="+"' in src  # the addition
    skip = [e for e in edges(src) if e.startswith("x ->")]
    assert len(skip) == 2  # into conv1, and the identity skip into the addition
    assert any("identity" in e and "dotted" not in e for e in skip)


def test_basic_block_reproduces_the_residual_block_figure() -> None:
    graph, block = block_network(SPECS / "blocks" / "basic.yaml")
    src = block_diagram(graph, block).source
    weights = re.findall(r'label="3x3 conv, 64"', src)
    assert len(weights) == 2  # weight layer, ReLU, weight layer, +, ReLU
    assert src.count("label=ReLU") == 2 and "identity" in src


def test_projection_is_dotted_and_labelled() -> None:
    graph, block = block_network(SPECS / "blocks" / "basic.yaml", ["stride=2"])
    src = block_diagram(graph, block).source
    proj = [e for e in edges(src) if "projection" in e]
    assert len(proj) == 1 and "style=dotted" in proj[0] and "1x1 conv, 64, /2 + BN" in proj[0]
    assert 'label="3x3 conv, 64, /2"' in src


def test_option_a_padding_is_dashed() -> None:
    g = compiler.load_spec(SPECS / "cifar" / "resnet20.yaml")
    src = block_diagram(g, "layer2.0").source
    pad = [e for e in edges(src) if "pad to 32, /2" in e]
    assert len(pad) == 1 and "style=dashed" in pad[0]


def test_stages_level() -> None:
    g = compiler.load_spec(SPECS / "resnet50.yaml")
    src = network_diagram(g, "stages").source
    assert "bottleneck x6 · 1024x14x14" in src
    assert "bottleneck x3 · 2048x7x7" in src
    assert "7x7 conv, 64, /2" in src and "fc 1000" in src
    assert len(edges(src)) == 7  # input, stem, 4 stages, head, output in a line
    assert 'label=" 512x28x28"' in src


def test_blocks_level_clusters_and_shortcut_styles() -> None:
    g = compiler.load_spec(SPECS / "resnet50.yaml")
    src = network_diagram(g, "blocks").source
    assert len(re.findall(r'subgraph "?cluster_', src)) == 6  # stem, 4 stages, head
    assert "layer3 · bottleneck x6 · 1024x14x14" in src
    assert (
        len(re.findall(r'^\t+"n_layer\d\.\d+" \[label=', src, re.M)) == 16
    )  # every block, none hidden
    projections = [e for e in edges(src) if 'label=" projection"' in e]
    identities = [e for e in edges(src) if 'label=" identity"' in e]
    assert len(projections) == 4 and all("dotted" in e for e in projections)
    assert len(identities) == 12 and not any("dotted" in e for e in identities)


def test_deep_networks_stay_readable() -> None:
    g = compiler.load_spec(SPECS / "cifar" / "preact_resnet1001.yaml")
    src = network_diagram(g, "blocks").source
    assert src.count("⋮  106 more preact_bottleneck blocks") == 3
    assert len(re.findall(r'^\t+"n_layer\d\.\d+" \[label=', src, re.M)) == 15
    assert len(network_diagram(g, "stages").source.splitlines()) < 40


def test_ops_level_and_long_skips() -> None:
    g = compiler.load_spec(TESTS / "specs" / "tiny.yaml")
    src = network_diagram(g, "ops").source
    assert (
        len(re.findall(r'subgraph "?cluster_', src)) == 4 + 3
    )  # stages and head, plus three blocks
    assert len(re.findall(r'^\t+"?n_[a-z0-9_.]+"? \[label=', src, re.M)) == len(g.nodes)
    long = [e for e in edges(src) if 'label=" skip' in e]
    assert len(long) == 1 and long[0].startswith('"n_layer1.0.relu2" -> n_skip_pool')
    assert "#c0392b" in long[0]
    blocks = network_diagram(g, "blocks").source
    long = [e for e in edges(blocks) if 'label=" skip' in e]
    assert len(long) == 1 and long[0].startswith('"n_layer1.0" -> n_skip_pool')


def test_dot_output_needs_no_graphviz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on the PATH
    out = tmp_path / "r.dot"
    code, _, err = run_cli("diagram", str(SPECS / "resnet18.yaml"), "-o", str(out))
    assert code == 0, err
    assert out.read_text().startswith("digraph resnet18 {")
    code, _, err = run_cli("diagram", str(SPECS / "resnet18.yaml"), "-o", str(tmp_path / "r.png"))
    assert code == 1 and "apt-get install graphviz" in err and "brew install graphviz" in err
    assert "Traceback" not in err and not (tmp_path / "r.png").exists()


def test_unknown_format_and_block(tmp_path: Path) -> None:
    code, _, err = run_cli("diagram", str(SPECS / "resnet18.yaml"), "-o", str(tmp_path / "a.gif"))
    assert code == 1 and "use one of svg, png, pdf, dot" in err
    code, _, err = run_cli(
        "diagram",
        str(SPECS / "resnet18.yaml"),
        "--block",
        "bottelneck",
        "-o",
        str(tmp_path / "a.svg"),
    )
    assert code == 2 and "did you mean 'basic'?" not in err and "no stage of resnet18" in err


@needs_dot
def test_render_svg_and_png(tmp_path: Path) -> None:
    g = compiler.load_spec(SPECS / "resnet50.yaml")
    svg = render(network_diagram(g, "blocks"), tmp_path / "r.svg")
    png = render(block_diagram(g, "layer1.1"), tmp_path / "b.png")
    assert Path(svg).read_text().lstrip().startswith(("<?xml", "<svg"))
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))


@needs_dot
def test_transformer_blocks_are_drawn_on_their_own_input() -> None:
    """A block of sequence ops is drawn on the tokens of a 14x14 map, a Swin block on a
    channels-last map; the ends say what the block takes: tokens x width, or channels."""
    graph, block = block_network(SPECS / "blocks" / "vit_encoder_block.yaml")
    source = block_diagram(graph, block).source
    assert 'label="196 x 64-d"' in source and "self-attention, 64 heads" in source
    graph, block = block_network(SPECS / "blocks" / "swin_block.yaml", ["heads=4"])
    source = block_diagram(graph, block).source
    assert 'label="64-d"' in source and "56-d" not in source and "W-MSA 7x7, 4 heads" in source


def test_a_bad_op_in_a_block_file_is_a_located_error(tmp_path: Path) -> None:
    """Choosing the input a block is drawn on reads its ops before they are checked: an op that
    is no name still gets the checker's located error, not a traceback."""
    block = tmp_path / "bad.yaml"
    block.write_text("block: bad\nnodes:\n  a: {op: [conv]}\n")
    code, _, err = run_cli("diagram", str(block), "-o", str(tmp_path / "b.dot"))
    assert code == 2 and "bad.yaml:3:3: error: 'op' of node 'a'" in err
    assert "Traceback" not in err and not (tmp_path / "b.dot").exists()


@pytest.mark.slow
def test_a_block_of_3d_convs_is_drawn_on_a_video_map() -> None:
    graph, block = block_network(SPECS / "blocks" / "basic3d.yaml")
    assert len(graph.input_shape) == 4 and block == "unit.0"
    assert "3x3x3 conv, 64" in block_diagram(graph, block).source


def test_every_library_spec_and_block_type_renders(tmp_path: Path) -> None:
    rendered = 0
    for path in spec_files(str(SPECS)):
        g = compiler.load_spec(path)
        for detail in ("stages", "blocks"):
            out = tmp_path / f"{g.name}-{detail}.svg"
            render(network_diagram(g, detail), out)
            assert "<svg" in out.read_text()
            rendered += 1
    # a block that reads a network's node by name (the U-Net's copied map) is drawn as used (a
    # block of 3-D convs is drawn on its own, on the video map it fits)
    used_in = {"unet_up": ("unet/unet.yaml", "up4")}
    for path in sorted((SPECS / "blocks").glob("*.yaml")):
        if path.stem in used_in:
            spec, block = used_in[path.stem]
            graph = compiler.load_spec(SPECS / spec)
        else:
            graph, block = block_network(path)
        render(block_diagram(graph, block), tmp_path / f"{path.stem}.svg")
        rendered += 1
    assert rendered >= 2 * 35 + 4


@needs_dot
def test_cli_block_option_and_formats(tmp_path: Path) -> None:
    for ext in ("svg", "png", "pdf"):
        out = tmp_path / f"b.{ext}"
        code, _, err = run_cli(
            "diagram", str(SPECS / "resnet50.yaml"), "--block", "bottleneck", "-o", str(out)
        )
        assert code == 0, err
        assert out.stat().st_size > 1000


def test_readme_pictures_are_real_output(in_root: Path, tmp_path: Path) -> None:
    """docs/images/*.png are rendered from the .dot beside them, which is today's output."""
    images = ROOT / "docs" / "images"
    cases = {
        "bottleneck": ["diagram", "specs/blocks/bottleneck.yaml"],
        "basic": ["diagram", "specs/blocks/basic.yaml"],
        "resnet50_stages": ["diagram", "specs/resnet50.yaml", "--detail", "stages"],
        "unet": ["diagram", "specs/unet/unet.yaml"],
        "dense_block": ["diagram", "docs/examples/dense_block.yaml", "--detail", "blocks"],
        "fire": ["diagram", "specs/blocks/fire.yaml", "--set", "squeeze=16", "--set", "expand=64"],
        "shufflenet_unit": ["diagram", "specs/blocks/shufflenet_unit.yaml"],
        "vit_encoder_block": ["diagram", "specs/vit_b_16.yaml", "--block", "vit_encoder_block"],
        "swin_block_pair": ["diagram", "docs/examples/swin_block_pair.yaml", "--detail", "ops"],
        # blocks inside blocks, drawn as nested clusters: DLA's tree of two trees of two leaves
        "dla_tree": [
            "diagram",
            "specs/blocks/dla_tree.yaml",
            *[f"--set={s}" for s in ("levels=2", "width=128", "stride=2", "level_root=true")],
        ],
        "inception": [
            "diagram",
            "specs/blocks/inception.yaml",
            *[
                f"--set={s}"
                for s in (
                    "ch1x1=64",
                    "ch3x3red=96",
                    "ch3x3=128",
                    "ch5x5red=16",
                    "ch5x5=32",
                    "pool_proj=32",
                )
            ],
        ],
        **{
            name: ["diagram", f"specs/blocks/{block}.yaml", *sets]
            for name, (block, sets) in {
                "inverted_residual": ("inverted_residual", ["--set", "out=24"]),
                "inverted_residual_v3": (
                    "inverted_residual_v3",
                    [
                        f"--set={s}"
                        for s in ("expanded=120", "out=40", "se=true", "hs=true", "kernel=5")
                    ],
                ),
                "mbconv": ("mbconv", ["--set", "out=40", "--set", "kernel=5"]),
                "fused_mbconv": ("fused_mbconv", ["--set", "out=48"]),
                "regnet_y_block": (
                    "regnet_bottleneck",
                    [f"--set={s}" for s in ("out=104", "group_width=8", "se_ratio=0.25")],
                ),
                "cnblock": ("cnblock", []),
            }.items()
        },
    }
    readme = (ROOT / "README.md").read_text()
    for name, args in cases.items():
        out = tmp_path / f"{name}.dot"
        code, _, err = run_cli(*args, "-o", str(out), "-q")
        assert code == 0, err
        assert (images / f"{name}.dot").read_text() == out.read_text(), name
        assert (images / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        if name != "basic":
            assert f"docs/images/{name}.png" in readme


def test_an_encoder_decoder_is_drawn_as_a_u() -> None:
    """Nested long skips put each skip's source beside its target (the U-Net's levels side by
    side: encoder down the left, decoder up the right); a network without them is unchanged."""
    unet = network_diagram(compiler.load_spec(SPECS / "unet" / "unet.yaml")).source
    for level in (1, 2, 3, 4):
        assert f"{{\n\t\trank=same\n\t\tn_down{level}\n\t\tn_up{level}\n\t}}" in unet
    assert "rank=same" not in network_diagram(compiler.load_spec(SPECS / "resnet50.yaml")).source
