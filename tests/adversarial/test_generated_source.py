"""Hostile text in a spec cannot leave its place in `netc emit`'s Python source.

Each case writes a spec whose text tries to end a docstring, a string or an argument list early
and run code on import; the generated file must parse, say the text back exactly, and import
without running anything but the network's definition.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from pathlib import Path

import pytest

import compiler
from compiler.errors import SpecError
from compiler.tools.emit import emit
from tests.conftest import run_cli

NET = """\
name: {name}
description: {description}
input: [3, 16, 16]
stem:
  conv1: {{op: conv, out: 8, kernel: 3}}
  relu: {{op: relu}}
head:
  pool: {{op: global_avgpool}}
  flatten: {{op: flatten}}
  fc: {{op: linear, out: 4}}
"""

# each ends a docstring, string or line early and calls the marker when run
PAYLOADS = [
    '"""; import pathlib; pathlib.Path(MARK).touch(); """',
    "'''\nimport pathlib; pathlib.Path(MARK).touch()\n'''",
    'ends in a quote"',
    "ends in a backslash\\",
    'a \\""" escaped quote; import pathlib; pathlib.Path(MARK).touch() #',
    "tab\tand unicode: ×, ⊕, 日本",
]


def _import(path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    spec = importlib.util.spec_from_file_location("hostile_emitted", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "hostile_emitted", module)  # dataclasses look it up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_description_stays_in_its_docstring(
    tmp_path: Path, payload: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    mark = tmp_path / "ran"
    text = payload.replace("MARK", repr(str(mark)))
    spec = tmp_path / "net.yaml"
    # a YAML double-quoted scalar of the text: json.dumps is one (quotes, backslashes escaped)
    spec.write_text(NET.format(name="net", description=json.dumps(text)))
    out = tmp_path / "net.py"
    code, _, err = run_cli("emit", str(spec), "-o", str(out))
    assert code == 0, err
    source = out.read_text()
    tree = ast.parse(source)
    assert ast.get_docstring(tree, clean=False).startswith(f"net: {text}\n\n")
    module = _import(out, monkeypatch)
    assert not mark.exists()
    model = module.build(seed=0)  # type: ignore[attr-defined]
    assert sum(p.numel() for p in model.parameters()) == compiler.load_spec(spec).params


def test_hostile_graph_text_is_escaped_even_past_the_checks() -> None:
    # the spec checks refuse such a name; the emitter escapes it on its own as well
    graph = compiler.load_spec("tests/specs/tiny.yaml")
    graph.name = 'x"""\nraise SystemExit("ran")\n"""'
    graph.description = "\x1b[31m\u202e back\\slash \"quoted\" '''"
    source = emit(graph)
    tree = ast.parse(source)
    doc = ast.get_docstring(tree, clean=False)
    assert doc is not None and doc.startswith(f"{graph.name}: {graph.description}\n")
    assert "\x1b" not in source and "\u202e" not in source  # written as escapes
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    assert all(name.isascii() and name.isidentifier() for name in classes)
    assert not any(isinstance(n, ast.Raise) for n in tree.body)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ('net"""', "the network's name 'net\"\"\"' must be ASCII letters"),
        ("my net", "the network's name 'my net' must be ASCII letters"),
        ("x" * 129, "at most 128 characters"),
        ("résumé", "the network's name 'résumé' must be ASCII letters"),
    ],
)
def test_a_name_that_could_not_be_written_is_refused(
    tmp_path: Path, name: str, message: str
) -> None:
    spec = tmp_path / "net.yaml"
    spec.write_text(NET.format(name=json.dumps(name), description="plain"))
    with pytest.raises(SpecError) as e:
        compiler.load_spec(spec)
    assert message in e.value.render()
    assert e.value.diagnostics[0].loc.line == 1


def test_a_block_parameter_that_is_no_name_is_refused(tmp_path: Path) -> None:
    # a parameter name is written as a constructor argument: it must be a Python name
    hostile = 'w=__import__("os").system("true"), *_'
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: net\ninput: [3, 16, 16]\nparams: {'bad key': 1}\nblock_types:\n  pair:\n"
        f"    params: {{'{hostile}': null, width: null, class: 1}}\n"
        "    let: {'1x': 2}\n"
        "    nodes:\n      conv1: {op: conv, out: width, kernel: 3}\n"
        "stages:\n  layer1: {block: pair, width: 8}\n  layer2: {block: pair, width: 16}\n"
        "head:\n  pool: {op: global_avgpool}\n"
    )
    with pytest.raises(SpecError) as e:
        compiler.load_spec(spec)
    found = {(d.loc.line, d.message.split(" must ")[0]) for d in e.value.diagnostics}
    assert found == {
        (3, "parameter 'bad key'"),
        (6, f"parameter '{hostile}'"),
        (6, "parameter 'class'"),
        (7, "name '1x'"),
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"a\\e[31mb"', "text holds the character U+001B"),
        ('"\\u202e"', "text holds the character U+202E"),
        ('"line\\u2028separator"', "text holds the character U+2028"),
        ('"\\r"', "text holds the character U+000D"),
        (".nan", "'.nan': spec numbers are finite"),
        ("-.inf", "'-.inf': spec numbers are finite"),
    ],
)
def test_text_that_could_disguise_itself_is_refused(
    tmp_path: Path, value: str, message: str
) -> None:
    spec = tmp_path / "net.yaml"
    spec.write_text(NET.format(name="net", description=value))
    code, out, err = run_cli("check", str(spec))
    assert code == 2 and out == ""
    assert f"net.yaml:2:{15 if value.startswith(chr(34)) else 14}: error: {message}" in err
    assert "\x1b" not in err and "\u202e" not in err and "\r" not in err


def test_a_raw_control_character_is_not_echoed_to_the_terminal(tmp_path: Path) -> None:
    spec = tmp_path / "net.yaml"
    spec.write_bytes(b"name: a\x1b[2Jb\ninput: [3, 8, 8]\n")
    code, _, err = run_cli("check", str(spec))
    assert code == 2 and "control characters are not allowed" in err
    assert "\x1b" not in err and "a\ufffd[2Jb" in err  # the snippet keeps its columns
