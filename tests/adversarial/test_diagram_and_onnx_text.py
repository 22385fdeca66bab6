"""Hostile text in a spec stays text in Graphviz diagrams and ONNX files.

python-graphviz writes a string that starts with '<' and ends with '>' as an HTML-like label, and
DOT expands escapes like \\N in labels: a network name could colour or rewrite a diagram. In ONNX
a spec's text is data (protobuf strings): it must come back byte for byte and the file check.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import compiler
from exporters.graphviz import block_diagram, network_diagram, render
from tests.conftest import require_dot

HOSTILE = '<<b><font color="red">PWNED</font></b>>'
ESCAPES = "\\N \\G \\L"  # DOT would put the node's or graph's name in their place


@pytest.mark.parametrize("detail", ["stages", "blocks", "ops"])
def test_markup_in_a_name_is_drawn_as_text(tmp_path: Path, detail: str) -> None:
    if shutil.which("dot") is None and not require_dot():
        pytest.skip("Graphviz's dot is not installed")
    graph = compiler.load_spec("tests/specs/tiny.yaml")
    graph.name = HOSTILE  # past the spec's own name rule: the diagram escapes on its own
    dot = network_diagram(graph, detail=detail)
    assert f'label="{HOSTILE.replace(chr(34), chr(92) + chr(34))} ·' in dot.source
    out = tmp_path / "net.svg"
    render(dot, out)
    svg = ET.parse(out).getroot()
    texts = ["".join(e.itertext()) for e in svg.iter() if e.tag.endswith("text")]
    assert any(t.startswith(HOSTILE) for t in texts)  # shown, as typed
    coloured = [e for e in svg.iter() if e.get("fill") == "red" or e.get("stroke") == "red"]
    assert coloured == []


def test_escapes_in_a_label_stay_as_typed() -> None:
    graph = compiler.load_spec("tests/specs/tiny.yaml")
    graph.name = ESCAPES
    source = network_diagram(graph).source
    assert "\\\\N \\\\G \\\\L ·" in source  # each backslash doubled: DOT shows one
    block = block_diagram(graph, "layer1.0", title=HOSTILE).source
    assert f'label="{HOSTILE.replace(chr(34), chr(92) + chr(34))}"' in block
    assert "label=<" not in block


def test_spec_text_lands_in_onnx_as_data(tmp_path: Path) -> None:
    import onnx

    from exporters.onnx import export

    description = 'ends a string"; <script>alert(1)</script> \\ ⊕ 日本\nsecond line'
    spec = tmp_path / "net.yaml"
    spec.write_text(
        Path("tests/specs/tiny.yaml")
        .read_text()
        .replace("name: tiny", "name: net-v1.2_x")
        .replace(
            "description: a small CIFAR-style net with option-A shortcuts and a long skip, "
            "for golden tests",
            f"description: {_yaml_string(description)}",
        )
    )
    graph = compiler.load_spec(spec)
    assert graph.description == description
    module = compiler.compile(spec, seed=0).eval()
    report = export(module, graph, tmp_path / "net.onnx", exporter="netc")
    assert report.passed
    model = onnx.load(tmp_path / "net.onnx")
    onnx.checker.check_model(model, full_check=True)
    assert model.doc_string == description
    assert model.graph.name == "net-v1.2_x"
    assert {p.key: p.value for p in model.metadata_props}["netc.spec"] == "net-v1.2_x"
    names = {n.name for n in model.graph.node}
    assert {"conv1", "layer1.0.conv1", "fc"} <= names  # the spec's node names, as given


def _yaml_string(text: str) -> str:
    import json

    return json.dumps(text)  # a JSON string is a YAML double-quoted scalar
