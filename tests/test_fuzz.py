"""Fuzzing: arbitrary text, random YAML documents and random mutations of library specs either
load or give a located SpecError, never another exception, never a hang (hypothesis deadline).
Valid mutants of the small nets are also built and run: what the checker accepts, torch builds,
with the shape the IR predicted."""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import compiler
from compiler.errors import SpecError
from compiler.frontend.library import spec_files
from compiler.frontend.resolve import load_resolved
from compiler.frontend.source import parse
from tests.conftest import SPECS
from tests.fuzz_counter import count

pytestmark = pytest.mark.fuzz

DEADLINE_MS = 5000  # "never more than a few seconds" per case


SCALE = float(os.environ.get("NETC_FUZZ_SCALE", "1"))  # e.g. 10 for a longer local run


def fuzz(cases: int) -> settings:
    """Settings: ``cases`` examples (times NETC_FUZZ_SCALE), each within the deadline."""
    cases = max(1, int(cases * SCALE))
    return settings(
        max_examples=cases, deadline=DEADLINE_MS, suppress_health_check=list(HealthCheck)
    )


# every network of the library is mutated: a spec added to specs/ joins the fuzzers by being there
BASES = [os.path.relpath(p, SPECS) for p in spec_files(str(SPECS))]
BUILDABLE = {"cifar/resnet20.yaml", "paper/resnet18_a.yaml"}


def _self_contained(name: str) -> dict[str, Any]:
    """The resolved spec with its block types inlined, so a mutant is one standalone file."""
    data = copy.deepcopy(load_resolved(str(SPECS / name)).data)
    blocks = {}
    for stage in data.get("stages", {}).values():
        block = stage.get("block")  # loose nodes between stages (ConvNeXt's downsampling) have none
        if block is not None and block not in data.get("block_types", {}):
            blocks[block] = yaml.safe_load((SPECS / "blocks" / f"{block}.yaml").read_text())
    data["block_types"] = {**blocks, **data.get("block_types", {})}
    return data


TEMPLATES = {name: _self_contained(name) for name in BASES}
WORKDIR = Path(tempfile.mkdtemp(prefix="netc-fuzz-"))
VALUES = [
    0,
    -1,
    -64,
    1,
    2,
    3,
    0.5,
    1e-9,
    10**6,
    10**12,
    10**30,
    1e308,
    float("nan"),
    "",
    "x",
    "layer9",
    "width *",
    "2 ** 100",
    "10 ** 10 ** 10",
    "identity",
    "A",
    "C",
    "none",
    "bottelneck",
    "cnov",
    None,
    [],
    {},
    [1, 2],
    {"op": "relu"},
    True,
    False,
    "input",
    "__import__('os')",
    "layer1.0",
    "max(1, 2)",
]


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        data = data[p]
    return data


@st.composite
def mutants(draw: st.DrawFn, bases: list[str] = BASES) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from(bases))
    data = copy.deepcopy(TEMPLATES[name])
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _get(data, path[:-1]), path[-1]
        kind = draw(st.sampled_from(["delete", "rename", "replace", "cycle", "duplicate"]))
        if kind == "delete" and isinstance(parent, dict):
            del parent[key]
        elif kind == "rename" and isinstance(parent, dict):
            new = draw(st.sampled_from([key + "x", key[:-1], key.upper(), "in", "op", "0", "a.b"]))
            parent[new] = parent.pop(key)
        elif kind == "cycle" and isinstance(parent, dict) and isinstance(parent.get(key), dict):
            later = [k for k in parent if k != key]
            if later:
                parent[key]["in"] = draw(st.sampled_from(later))
        elif kind == "duplicate" and isinstance(parent, dict):
            parent[f"{key}_copy"] = copy.deepcopy(parent[key])
            if isinstance(parent[key], dict) and "in" not in parent[key]:
                parent[f"{key}_copy"]["in"] = key
        else:
            parent[key] = copy.deepcopy(draw(st.sampled_from(VALUES)))  # pool stays pristine
    return name, data


def _load(text: str) -> compiler.Graph | None:
    fd, path = tempfile.mkstemp(suffix=".yaml", dir=WORKDIR)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    try:
        return compiler.load_spec(path)
    except SpecError as e:
        assert e.diagnostics and all(d.message for d in e.diagnostics)
        rendered = e.render()
        assert ": error: " in rendered and "Traceback" not in rendered
        return None
    finally:
        os.remove(path)


@fuzz(4000)
@given(mutants())
def test_fuzz_spec_mutations_give_a_result_or_a_located_error(
    case: tuple[str, dict[str, Any]],
) -> None:
    count("spec mutations")
    _, data = case
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    graph = _load(text)
    if graph is not None:
        assert graph.params >= 0 and graph.nodes


@fuzz(500)
@given(mutants(sorted(BUILDABLE)))
def test_fuzz_valid_mutants_build_and_run(case: tuple[str, dict[str, Any]]) -> None:
    count("built mutants")
    graph = _load(yaml.safe_dump(case[1], sort_keys=False))
    if graph is None or graph.params > 5_000_000 or graph.macs > 2e9:
        return
    count("valid mutants built and run")
    module = compiler.compile(graph, seed=0).eval()
    assert sum(p.numel() for p in module.parameters()) == graph.params
    with torch.no_grad():
        out = module(torch.zeros(1, *graph.input_shape))
    assert tuple(out.shape[1:]) == graph.nodes[graph.output].shape
    module.train()  # and a backward pass: in-place ops must never break autograd
    module(torch.randn(2, *graph.input_shape)).sum().backward()


yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True),
    st.text(max_size=12),
)
yaml_docs = st.recursive(
    yaml_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "name",
                    "input",
                    "stem",
                    "stages",
                    "head",
                    "op",
                    "block",
                    "repeat",
                    "in",
                    "params",
                    "conv1",
                    "layer1",
                    "x",
                    "extends",
                    "shortcut",
                    "nodes",
                    "out",
                    "kernel",
                    "op_defaults",
                    "outputs",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@fuzz(2000)
@given(yaml_docs)
def test_fuzz_random_yaml_documents(doc: Any) -> None:
    count("random YAML documents")
    _load(yaml.safe_dump(doc, allow_unicode=True))


@fuzz(2000)
@given(st.text(max_size=200))
def test_fuzz_arbitrary_text(text: str) -> None:
    count("arbitrary text")
    try:
        parse(text, "fuzz.yaml")
    except SpecError as e:
        assert e.diagnostics[0].loc.file == "fuzz.yaml"


@fuzz(1000)
@given(
    st.sampled_from(BASES),
    st.integers(0, 2000),
    st.sampled_from(
        [
            "",
            ":",
            "- ",
            "{",
            "&a ",
            "*a",
            "!!python/name:os.system",
            "\t",
            "'",
            "\x00",
            "\ufeff",
            "<<: ",
        ]
    ),
)
def test_fuzz_text_level_damage(name: str, at: int, insert: str) -> None:
    count("damaged files")
    text = yaml.safe_dump(TEMPLATES[name], sort_keys=False)
    at = at % max(len(text), 1)
    _load(text[:at] + insert + text[at + 1 :])


@pytest.fixture(autouse=True, scope="module")
def _cleanup() -> Any:
    yield
    for p in WORKDIR.iterdir():
        p.unlink()
    WORKDIR.rmdir()
