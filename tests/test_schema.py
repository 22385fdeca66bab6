"""`netc schema`: the JSON Schema editors use is generated from the op table and the spec
keys, every library spec (partial child specs included) validates, and the mistakes an editor
should flag are flagged."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from compiler.frontend.nodes import NODE_KEYS
from compiler.frontend.resolve import PLACES
from compiler.frontend.spec import NETWORK_KEYS
from compiler.ops import OPS, REQUIRED
from compiler.tools.schema import library_schema
from tests.conftest import ROOT, SPECS, TESTS, run_cli

SCHEMA = library_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _errors(data: object) -> list[jsonschema.ValidationError]:
    return list(VALIDATOR.iter_errors(data))


def _messages(errors: list[jsonschema.ValidationError]) -> str:
    """Every message, those inside anyOf branches too (what an editor's tooltip lists)."""
    return " | ".join(m for e in errors for m in (e.message, _messages(list(e.context))) if m)


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


NETWORKS = sorted(
    p
    for p in [*SPECS.rglob("*.yaml"), *(ROOT / "docs" / "examples").glob("*.yaml")]
    if p.parent.name != "blocks"
)


@pytest.mark.parametrize("path", NETWORKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_library_spec_validates(path: Path) -> None:
    errors = _errors(yaml.safe_load(path.read_text()))
    assert not errors, jsonschema.exceptions.best_match(errors).message


def test_the_test_specs_validate() -> None:
    for name in ("every_op.yaml", "tiny.yaml"):
        assert not _errors(yaml.safe_load((TESTS / "specs" / name).read_text())), name


def _net(node: str) -> object:
    return yaml.safe_load(f"name: x\ninput: [3, 8, 8]\nstem:\n  c: {node}\n")


@pytest.mark.parametrize(
    ("node", "flagged"),
    [
        ("{op: conv, out: 4, kernal: 3}", "'kernal' was unexpected"),
        ("{op: convv, out: 4, kernel: 3}", "convv"),
        ("{op: conv, out: [4], kernel: 3}", "[4]"),
        ("{op: conv, out: 4, kernel: 3, stride: 0}", "less than the minimum of 1"),
        ("{op: stochastic_depth, p: 1.5}", "greater than the maximum of 1"),
        ("{op: conv, out: 4, kernel: 3, init: glorot}", "'glorot' is not one of"),
        ("{op: relu, inplace: 3}", "3 is not valid"),
    ],
)
def test_mistakes_are_flagged(node: str, flagged: str) -> None:
    assert flagged in _messages(_errors(_net(node)))


@pytest.mark.parametrize(
    "node",
    [
        '{op: conv, out: "width * 4", kernel: 3}',  # an expression where a number goes
        '{op: "{act}"}',  # an op chosen by an expression
        "{op: permute, dims: [0, 2, 3, 1]}",
    ],
)
def test_what_the_language_allows_is_allowed(node: str) -> None:
    assert not _errors(_net(node))


def test_child_specs_are_partial_but_still_checked() -> None:
    child = {"extends": "resnet50", "name": "y", "stages": {"layer3": {"repeat": 23}}}
    assert not _errors(child)
    assert _errors({"name": "y", "stages": {"layer3": {"repeat": 23}}})  # no base: incomplete
    wrong = {"extends": "resnet50", "stages": {"layer3": {"block": "bottleneck", "widht": 3}}}
    assert "'widht' was unexpected" in _messages(_errors(wrong))
    assert _errors({"extends": "resnet50", "shortcutt": "A"})


def test_the_schema_follows_the_op_table_and_the_spec_keys() -> None:
    """Drift test: every op, every attribute (required ones required), every network key."""
    defs = SCHEMA["$defs"]
    for name, op in OPS.items():
        node = defs[f"op_{name}"]
        # (after/before place an entry of a child spec: read by the merge, not the node)
        assert set(node["properties"]) == {*NODE_KEYS, *PLACES, *op.attrs}, name
        assert set(node["required"]) == {"op"} | {
            k for k, a in op.attrs.items() if a.default is REQUIRED
        }
        for key, attr in op.attrs.items():
            if attr.doc:
                assert node["properties"][key]["description"] == attr.doc
    assert set(SCHEMA["properties"]) == set(NETWORK_KEYS)
    blocks = {p.stem for p in (SPECS / "blocks").glob("*.yaml")}
    assert set(defs["stage"]["properties"]["block"]["examples"]) == blocks


def test_netc_schema_command(tmp_path: Path) -> None:
    out = tmp_path / "netc.schema.json"
    code, stdout, err = run_cli("schema", "-o", str(out))
    assert code == 0, err
    assert json.loads(out.read_text()) == SCHEMA
    code, stdout, _ = run_cli("schema")
    assert code == 0 and json.loads(stdout) == SCHEMA
