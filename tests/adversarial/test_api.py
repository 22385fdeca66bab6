"""The Python API's arguments are untrusted: a wrong type is a TypeError (a wrong value a
ValueError) phrased for Python, raised before anything is read or built, never a silent
misreading (``seed=1.5`` as 1, ``"no"`` as True, a string read one character at a time)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import torch

import compiler
from compiler import Graph, Limits, SpecError
from compiler.frontend.arguments import MAX_ITEMS
from compiler.lowering.features import FeatureInfo
from tests.conftest import TESTS

TINY = TESTS / "specs" / "tiny.yaml"
MISSING = "no/such/spec.yaml"  # a bad argument is reported before this is looked for


class BytesPath(os.PathLike[bytes]):
    def __fspath__(self) -> bytes:
        return os.fsencode(TINY)


class StrPath(os.PathLike[str]):
    def __fspath__(self) -> str:
        return str(TINY)


def _raises(kind: type[Exception], message: str, fn: Any, *args: Any, **kwargs: Any) -> None:
    """``fn(*args, **kwargs)`` raises exactly ``kind`` with exactly ``message``."""
    with pytest.raises(kind) as e:
        fn(*args, **kwargs)
    assert type(e.value) is kind
    assert str(e.value) == message
    assert "<command line>" not in message and "--set" not in message


LOAD_SPEC_WANTS = "a file path (str or os.PathLike) or a library name like 'resnet50'"
COMPILE_WANTS = LOAD_SPEC_WANTS + ", or a Graph from load_spec()"


@pytest.mark.parametrize(
    ("spec", "shown"),
    [
        ({"name": "x"}, "dict {'name': 'x'}"),
        (None, "NoneType None"),
        (5, "int 5"),
        (b"tests/specs/tiny.yaml", "bytes b'tests/specs/tiny.yaml'"),
        (["resnet18"], "list ['resnet18']"),
    ],
)
def test_a_spec_of_the_wrong_type_is_a_type_error(spec: object, shown: str) -> None:
    _raises(
        TypeError,
        f"load_spec(): the spec must be {LOAD_SPEC_WANTS}, got {shown}",
        compiler.load_spec,
        spec,
    )
    _raises(
        TypeError,
        f"compile(): the spec must be {COMPILE_WANTS}, got {shown}",
        compiler.compile,
        spec,
    )


def test_a_bytes_path_like_spec_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"^load_spec\(\): the spec must be a file path"):
        compiler.load_spec(BytesPath())  # type: ignore[arg-type]


def test_a_spec_path_with_a_nul_is_a_value_error() -> None:
    message = "the spec path must not contain a NUL character, got 'tiny\\x00.yaml'"
    _raises(ValueError, "load_spec(): " + message, compiler.load_spec, "tiny\x00.yaml")
    _raises(ValueError, "compile(): " + message, compiler.compile, "tiny\x00.yaml")


def test_a_path_like_spec_is_accepted() -> None:
    by_name = compiler.load_spec(str(TINY))
    assert compiler.load_spec(TINY).params == by_name.params
    assert compiler.load_spec(StrPath()).params == by_name.params


@pytest.mark.parametrize(
    ("overrides", "got"),
    [
        ("params.k=1", "str: did you mean ['params.k=1']?"),
        ({"params.k": 1}, "dict {'params.k': 1}"),
        ({"params.k=1"}, "set {'params.k=1'}"),
        (b"params.k=1", "bytes b'params.k=1'"),
        (5, "int 5"),
        (["params.k=1", 1], "int 1 at [1]"),
        ([b"params.k=1"], "bytes b'params.k=1' at [0]"),
    ],
)
def test_overrides_that_are_not_a_list_of_strings_are_a_type_error(
    overrides: object, got: str
) -> None:
    wanted = "overrides must be a list of 'key.path=value' strings, got " + got
    _raises(TypeError, "load_spec(): " + wanted, compiler.load_spec, MISSING, overrides)
    _raises(TypeError, "compile(): " + wanted, compiler.compile, MISSING, overrides)


def test_overrides_may_be_any_ordered_iterable_of_strings() -> None:
    given = ["head.fc.out=5", "input=[3, 16, 16]"]
    as_list = compiler.load_spec(TINY, given)
    as_tuple = compiler.load_spec(TINY, tuple(given))
    as_generator = compiler.load_spec(TINY, (s for s in given))
    assert as_list.params == as_tuple.params == as_generator.params
    assert as_list.params < compiler.load_spec(TINY).params


def test_endless_overrides_are_refused_after_a_bounded_read() -> None:
    read = 0

    def endless() -> Iterator[str]:
        nonlocal read
        while read <= 2 * MAX_ITEMS:  # bounds this test even if the cap were missing
            read += 1
            yield "head.fc.out=5"
        raise AssertionError("read on past the cap")

    _raises(
        ValueError,
        f"load_spec(): overrides has more than {MAX_ITEMS:,} items",
        compiler.load_spec,
        MISSING,
        endless(),
    )
    assert read == MAX_ITEMS + 1


def test_a_huge_wrong_value_is_shown_in_part() -> None:
    _raises(
        TypeError,
        "compile(): seed must be an int or None, got list [0, 1, 2, 3, 4, 5, ...]",
        compiler.compile,
        MISSING,
        seed=list(range(10**6)),
    )


def test_an_override_without_a_key_stays_a_located_spec_error() -> None:
    """What an override says is checked against the spec, as ``--set`` is."""
    with pytest.raises(SpecError) as e:
        compiler.load_spec(TINY, ["params.k"])
    assert [d.message for d in e.value.diagnostics] == [
        "override 'params.k' must look like key.path=value"
    ]


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"max_nodes": 5}, "load_spec(): limits must be a compiler.Limits or None, got dict"),
        (5, "load_spec(): limits must be a compiler.Limits or None, got int 5"),
    ],
)
def test_limits_of_the_wrong_type_are_a_type_error(limits: object, message: str) -> None:
    with pytest.raises(TypeError) as e:
        compiler.load_spec(MISSING, limits=limits)  # type: ignore[arg-type]
    assert str(e.value).startswith(message)


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("max_nodes", 1.5e6, "float 1500000.0"),
        ("max_nodes", True, "bool True"),
        ("max_params", "1000", "str '1000'"),
        ("max_activation_bytes", None, "NoneType None"),
    ],
)
def test_a_limit_that_is_not_an_int_is_a_type_error(field: str, value: object, shown: str) -> None:
    _raises(TypeError, f"Limits(): {field} must be an int, got {shown}", Limits, **{field: value})


def test_limits_are_applied() -> None:
    with pytest.raises(SpecError, match="the cap is 10"):
        compiler.load_spec(TINY, limits=Limits(max_params=10))


@pytest.mark.parametrize(
    ("value", "shown"), [("no", "str 'no'"), (1, "int 1"), (None, "NoneType None")]
)
def test_published_weights_must_be_a_bool(value: object, shown: str) -> None:
    _raises(
        TypeError,
        f"load_spec(): published_weights must be True or False, got {shown}",
        compiler.load_spec,
        MISSING,
        published_weights=value,
    )


@pytest.mark.parametrize(
    ("seed", "shown"),
    [
        (1.5, "float 1.5"),
        (1.0, "float 1.0"),
        (True, "bool True"),
        (False, "bool False"),
        ("1", "str '1'"),
        (np.float64(2.0), "float64 np.float64(2.0)"),
    ],
)
def test_a_seed_that_is_not_an_int_is_a_type_error(seed: object, shown: str) -> None:
    message = f"compile(): seed must be an int or None, got {shown}"
    if isinstance(seed, np.floating):  # numpy's repr differs between versions
        message = f"compile(): seed must be an int or None, got float64 {seed!r}"
    _raises(TypeError, message, compiler.compile, MISSING, seed=seed)


@pytest.mark.parametrize("seed", [2**64, -(2**63) - 1])
def test_a_seed_outside_torchs_range_is_a_value_error(seed: int) -> None:
    _raises(
        ValueError,
        f"compile(): seed must be from -2**63 to 2**64 - 1, got {seed}",
        compiler.compile,
        MISSING,
        seed=seed,
    )


def test_a_numpy_integer_seed_is_the_same_seed() -> None:
    ours = compiler.compile(TINY, seed=np.int64(3)).state_dict()  # type: ignore[arg-type]
    same = compiler.compile(TINY, seed=3).state_dict()
    assert all(torch.equal(ours[k], same[k]) for k in same)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "zero_init_residual",
            "no",
            "zero_init_residual must be True, False or None, got str 'no'",
        ),
        ("zero_init_residual", 0, "zero_init_residual must be True, False or None, got int 0"),
        ("inference", "yes", "inference must be True or False, got str 'yes'"),
        ("inference", None, "inference must be True or False, got NoneType None"),
        ("partial", 1, "partial must be True or False, got int 1"),
        ("partial", [], "partial must be True or False, got list []"),
    ],
)
def test_flags_must_be_bools(name: str, value: object, message: str) -> None:
    _raises(TypeError, "compile(): " + message, compiler.compile, MISSING, **{name: value})


def test_zero_init_residual_no_is_not_read_as_true() -> None:
    """The hole closed: ``"no"`` used to be truthy and zero the residual BatchNorms."""
    with pytest.raises(TypeError):
        compiler.compile(TINY, zero_init_residual="no")  # type: ignore[arg-type]
    bn = compiler.compile(TINY, seed=0, zero_init_residual=False).state_dict()
    assert bn["layer1.0.bn2.weight"].eq(1).all()


@pytest.mark.parametrize(
    ("weights", "shown"),
    [(5, "int 5"), (b"ckpt.pt", "bytes b'ckpt.pt'"), (BytesPath(), "BytesPath")],
)
def test_weights_of_the_wrong_type_are_a_type_error(weights: object, shown: str) -> None:
    with pytest.raises(TypeError) as e:
        compiler.compile(MISSING, weights=weights)  # type: ignore[arg-type]
    assert str(e.value).startswith(
        "compile(): weights must be a checkpoint path (str or os.PathLike), 'torchvision' or "
        f"'torchvision:NAME', or None, got {shown}"
    )


def test_weights_may_be_a_path_like(tmp_path: Path) -> None:
    source = compiler.compile(TINY, seed=1)
    torch.save(source.state_dict(), tmp_path / "tiny.pt")
    loaded = compiler.compile(TINY, seed=2, weights=tmp_path / "tiny.pt").state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in source.state_dict().items())


@pytest.mark.parametrize(
    ("outputs", "kind", "message"),
    [
        ("layer2", TypeError, "got str: did you mean ['layer2']?"),
        ({"layer2": 1}, TypeError, "got dict {'layer2': 1}"),
        ({"layer2"}, TypeError, "got set {'layer2'}"),
        (["layer1", 2], TypeError, "got int 2 at [1]"),
        ([], ValueError, None),
        (["layer1", " "], ValueError, None),
    ],
)
def test_outputs_must_be_a_list_of_names(
    outputs: object, kind: type[Exception], message: str | None
) -> None:
    if message is not None:
        message = "compile(): outputs must be a list of names, " + message
    elif outputs == []:
        message = "compile(): outputs must list at least one name"
    else:
        message = "compile(): outputs[1] must be a name, got ' '"
    _raises(kind, message, compiler.compile, MISSING, outputs=outputs)


def test_outputs_as_a_tuple_give_those_feature_maps() -> None:
    module = compiler.compile(TINY, outputs=("layer1", "layer2"))
    info = cast(FeatureInfo, module.feature_info)
    assert info.module_name() == ["layer1", "layer2"]


def test_overrides_or_outputs_with_a_loaded_graph_are_refused_not_dropped() -> None:
    graph = compiler.load_spec(TINY)
    assert isinstance(graph, Graph)
    _raises(
        ValueError,
        "compile(): overrides need a spec file or name, not a loaded Graph; pass them to "
        "load_spec() instead",
        compiler.compile,
        graph,
        ["params.k=1"],
    )
    _raises(
        ValueError,
        "compile(): outputs need a spec file or name, not a loaded Graph; load it with "
        """load_spec(..., overrides=['outputs=["layer2"]'])""",
        compiler.compile,
        graph,
        outputs=["layer2"],
    )
    assert compiler.compile(graph, overrides=[]) is not None  # nothing to drop


def test_arguments_are_checked_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad argument beside a good spec: the spec is never read."""

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the spec was read before the arguments were checked")

    monkeypatch.setattr(compiler.frontend.load, "load_resolved", never)
    from compiler.frontend import spec_cache

    spec_cache.clear()
    for bad in (
        {"seed": 1.5},
        {"overrides": "params.k=1"},
        {"outputs": "layer2"},
        {"zero_init_residual": "no"},
        {"weights": 5},
        {"inference": 1},
        {"partial": "yes"},
    ):
        with pytest.raises(TypeError, match=re.escape("compile(): ")):
            compiler.compile(TINY, **bad)
    with pytest.raises(TypeError, match=re.escape("load_spec(): ")):
        compiler.load_spec(TINY, published_weights="yes")  # type: ignore[arg-type]
