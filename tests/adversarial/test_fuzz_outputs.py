"""Fuzzing the places spec text lands: any text as a network's description or name either is
refused with a located error or comes out unchanged, as text, in the generated Python source, the
DOT source and the ONNX model; and every kind of special file, in every role a file plays, is
refused by name within a time bound."""

from __future__ import annotations

import ast
import json
import os
import shutil
import socket
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import compiler
from compiler.errors import SpecError
from compiler.frontend.spec import NETWORK_NAME
from compiler.tools.emit import emit
from exporters.graphviz import network_diagram
from tests.conftest import bounded, require_dot, run_cli
from tests.fuzz_counter import count
from tests.test_fuzz import fuzz

pytestmark = pytest.mark.fuzz

NET = """\
name: {name}
description: {description}
input: [3, 8, 8]
stem:
  conv1: {{op: conv, out: 4, kernel: 3}}
head:
  pool: {{op: global_avgpool}}
  flatten: {{op: flatten}}
  fc: {{op: linear, out: 2}}
"""
# the characters that end strings, comments, labels and lines, and markup, among any text
HOSTILE = st.text(
    alphabet=st.one_of(st.sampled_from(list("\"'\\\n\t<>&#{}[]:;|%@`$")), st.characters()),
    max_size=40,
)


def _load(tmp: Path, name: str, description: str) -> compiler.Graph | SpecError:
    spec = tmp / "net.yaml"
    spec.write_text(NET.format(name=json.dumps(name), description=json.dumps(description)))
    try:
        return compiler.load_spec(spec)
    except SpecError as e:
        assert all(d.loc.file == str(spec) and d.loc.line >= 1 for d in e.diagnostics)
        return e


@fuzz(150)
@given(description=HOSTILE)
def test_any_description_is_refused_or_written_back_exactly(
    tmp_path_factory: pytest.TempPathFactory, description: str
) -> None:
    count("hostile text: emit")
    graph = _load(tmp_path_factory.mktemp("d"), "net", description)
    if isinstance(graph, SpecError):
        # a hidden character, or an escape YAML itself refuses (a lone surrogate)
        rendered = graph.render()
        assert "text holds the character U+" in rendered or "invalid Unicode" in rendered
        return
    assert graph.description == description
    tree = ast.parse(emit(graph))
    assert ast.get_docstring(tree, clean=False) == (
        f"net: {description or 'a network'}".rstrip()
        + "\n\nWritten by `netc emit` from the spec; it needs only PyTorch. `build(seed=...)` "
        "gives\nthe weights netc's `compile(spec, seed=...)` gives."
    )
    assert not any(isinstance(n, (ast.Import, ast.ImportFrom)) and n.lineno == 1 for n in tree.body)


@fuzz(150)
@given(name=HOSTILE)
def test_any_name_is_refused_or_is_a_plain_name(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    count("hostile names: emit")
    graph = _load(tmp_path_factory.mktemp("n"), name, "d")
    if isinstance(graph, SpecError):
        return
    assert NETWORK_NAME.fullmatch(graph.name)
    tree = ast.parse(emit(graph))
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    assert all(c.isascii() and c.isidentifier() for c in classes)


# one line of printable text (what a title can show as typed: dot breaks lines and trims spaces)
LINE = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("\"'\\<>&#{}[]:;|%@`$ ")),
        st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Zs")),
    ),
    min_size=1,
    max_size=30,
).filter(lambda t: t == t.strip() and "  " not in t)


@fuzz(25)
@given(text=LINE)
def test_any_text_in_a_diagram_is_drawn_as_that_text(text: str) -> None:
    # past the spec's checks: the diagram escapes whatever reaches it
    if shutil.which("dot") is None and not require_dot():
        pytest.skip("Graphviz's dot is not installed")
    count("hostile text: DOT")
    graph = compiler.load_spec("tests/specs/tiny.yaml")
    graph.name = text
    source = network_diagram(graph, detail="stages").source
    svg = subprocess.run(
        ["dot", "-Tsvg"], input=source.encode(), capture_output=True, timeout=30, check=True
    ).stdout
    root = ET.fromstring(svg)
    texts = ["".join(e.itertext()) for e in root.iter() if e.tag.endswith("text")]
    assert texts[0] == f"{text} · 0.04 M params · 0.01 GMACs"  # the title, as typed
    assert not [e for e in root.iter() if e.tag.endswith(("font", "b", "i", "u"))]


@fuzz(40)
@given(description=HOSTILE)
def test_any_description_is_onnx_data(
    tmp_path_factory: pytest.TempPathFactory, description: str
) -> None:
    import onnx

    from exporters.onnx_native import build

    count("hostile text: ONNX")
    graph = _load(tmp_path_factory.mktemp("o"), "net", description)
    if isinstance(graph, SpecError):
        return
    module = compiler.compile(graph, seed=0).eval()
    model = onnx.load_from_string(build(module, graph, 18).SerializeToString())
    assert model.doc_string == description and model.graph.name == "net"


# ---- file kinds x the roles a file plays -------------------------------------------------------


def _make(kind: str, path: Path, outside: Path) -> socket.socket | None:
    """Put a file of ``kind`` at ``path``; a socket is returned to be closed."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        return server
    elif kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "directory":
        path.mkdir()
    elif kind == "dangling":
        path.symlink_to(path.parent / "nowhere.yaml")
    elif kind == "outside":
        path.symlink_to(outside)
    return None


KINDS = ["fifo", "socket", "device", "directory", "dangling", "outside"]
ROLES = ["spec", "extends", "block", "list"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", KINDS)
def test_each_file_kind_in_each_role_is_refused(tmp_path: Path, kind: str, role: str) -> None:
    outside = tmp_path / "secret.yaml"
    outside.write_text("password: SECRET\n")
    proj = tmp_path / "proj"
    (proj / "blocks").mkdir(parents=True)
    special = {
        "spec": proj / "x.yaml",
        "extends": proj / "x.yaml",
        "block": proj / "blocks" / "pair.yaml",
        "list": proj / "x.yaml",
    }[role]
    count("special files")
    server = _make(kind, special, outside)
    net = proj / "net.yaml"
    if role == "extends":
        net.write_text("extends: x.yaml\nname: net\n")
    elif role == "block":
        net.write_text("name: net\ninput: [3, 8, 8]\nstages:\n  layer1: {block: pair}\n")
    try:
        if role == "list":
            code, out, err = bounded(lambda: run_cli("list", str(proj)))
        else:
            code, out, err = bounded(
                lambda: run_cli("check", str(special if role == "spec" else net))
            )
    finally:
        if server is not None:
            server.close()
    out += err
    assert "Traceback" not in out
    if (role, kind) == ("spec", "outside"):  # the file the user names is read, wherever it is
        assert code == 2 and "unknown key 'password'" in out
        return
    assert "SECRET" not in out and "password" not in out
    if role == "list":  # one entry's error (a folder named x.yaml is walked into: empty)
        assert ("no specs found" if kind == "directory" else "x.yaml") in out
        return
    assert code == 2, out
    expected = {
        "block": "unknown block type 'pair'",
        "extends": "net.yaml:1:10: error: cannot extend: ",
        "spec": "x.yaml",
    }[role]
    assert expected in out
