"""Safe loading: plain YAML only, located refusals for everything else, nothing ever executed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from compiler.errors import SpecError
from compiler.frontend.source import MAX_FILE_BYTES, load_file, parse


def error_of(text: str) -> str:
    with pytest.raises(SpecError) as e:
        parse(text, "t.yaml")
    return e.value.render()


def test_values_and_keys_are_located() -> None:
    src = parse("name: x\nstem:\n  conv1: {op: conv, out: 64}\n", "t.yaml")
    assert src.data == {"name": "x", "stem": {"conv1": {"op": "conv", "out": 64}}}
    loc = src.loc(("stem", "conv1", "out"))
    assert (loc.line, loc.col) == (3, 26)
    assert src.key_loc(("stem", "conv1")).col == 3
    assert src.loc(("stem", "conv1", "missing")) == src.loc(("stem", "conv1"))


def test_quoted_values_point_inside_the_quotes() -> None:
    src = parse('a: "x + 1"\n', "t.yaml")
    assert src.loc(("a",)).col == 5


@pytest.mark.parametrize(
    "text",
    [
        "a: !!python/object/apply:os.system ['true']\n",
        "a: !!python/name:os.system\n",
        "a: !custom 3\n",
        "a: !!binary aGVsbG8=\n",
        "a: !!set {x, y}\n",
    ],
)
def test_tags_are_refused(text: str) -> None:
    assert "unsupported YAML tag" in error_of(text)


def test_duplicate_keys_are_refused_with_both_lines() -> None:
    msg = error_of("a: 1\nb: 2\na: 3\n")
    assert "t.yaml:3:1: error: duplicate key 'a' (first defined at line 1)" in msg


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    start = time.perf_counter()
    msg = error_of("\n".join(lines) + "\n")
    assert "alias bomb" in msg
    assert time.perf_counter() - start < 5


def test_deep_nesting_is_refused() -> None:
    msg = error_of("a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested deeper than" in msg or "maximum nesting depth" in msg  # ours or libyaml's
    assert len(max(msg.splitlines(), key=len)) < 200  # the snippet is cut around the caret


def test_merge_keys_are_refused() -> None:
    assert "merge keys" in error_of("a: &x {b: 1}\nc:\n  <<: *x\n")


def test_invalid_yaml_is_located() -> None:
    assert "t.yaml:2:" in error_of("a: [1, 2\nb: 3\n")


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_empty_file(text: str) -> None:
    assert "the spec is empty" in error_of(text)


def test_file_refusals(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * MAX_FILE_BYTES + "\n")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: x\ndescription: caf\xe9\n")
    cases = {
        str(big): "the cap for a spec is",
        str(bad): "bad.yaml:2:17: error: file is not valid UTF-8",
        str(tmp_path): "is a directory",
        str(tmp_path / "missing.yaml"): "no such file",
    }
    for path, expected in cases.items():
        with pytest.raises(SpecError) as e:
            load_file(path)
        assert expected in e.value.render(), path
