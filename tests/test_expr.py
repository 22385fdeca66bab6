"""The parameter-expression evaluator: arithmetic only, errors located, nothing reachable."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.frontend.expr import MAX_MAGNITUDE, ExprError, evaluate
from tests.fuzz_counter import count

ENV = {"width": 64, "base_width": 4, "groups": 32, "stride": 2, "flag": True}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("width * base_width // 64 * groups", 128),
        ("width * 4", 256),
        ("2 if stride > 1 else 1", 2),
        ("stride if flag else 1", 2),
        ("max(width, 100) - min(3, 4)", 97),
        ("abs(-3) + ceil(2.1) + floor(2.9) + int(7.5)", 15),
        ("width / 128", 0.5),
        ("width % 10", 4),
        ("2 ** 10", 1024),
        ("not flag or stride == 2", True),
        ("1 < stride <= 2", True),
    ],
)
def test_values(text: str, value: object) -> None:
    assert evaluate(text, ENV) == value


@pytest.mark.parametrize(
    ("text", "message", "col"),
    [
        ("widht * 2", "unknown name 'widht'", 0),
        ("width * (", "cannot parse", 8),
        ("width.bit_length()", "only min, max", 0),
        ("width.real", "not allowed", 0),
        ("().__class__", "not allowed", 0),
        ("__import__('os')", "only min, max", 0),
        ("open('x')", "only min, max", 0),
        ("[1, 2][0]", "not allowed", 0),
        ("lambda: 1", "not allowed", 0),
        ("width / 0", "division by zero", 0),
        ("2 ** 10 ** 10", "too large", 0),
        ("10 ** 30", "too large", 0),
        ("9 ** 9 ** 9", "too large", 0),
        ("1e308 * 10", "too large", 0),
        ("1e200 * 1e200 - 1e200 * 1e200", "too large", 0),
        ("'a' * 3", "expected a number", 0),
        ("x" * 300, "longer than", 0),
        ("width + 'x'", "expected a number", 8),
    ],
)
def test_errors(text: str, message: str, col: int) -> None:
    with pytest.raises(ExprError) as e:
        evaluate(text, ENV)
    assert message in e.value.message
    assert e.value.col == col


def test_huge_results_are_refused_not_computed() -> None:
    with pytest.raises(ExprError):
        evaluate("width * 2 ** 61", ENV)
    assert evaluate("2 ** 61", ENV) <= MAX_MAGNITUDE


@settings(max_examples=2000, deadline=1000)
@given(st.text(max_size=60))
def test_arbitrary_text_gives_a_value_or_an_expr_error(text: str) -> None:
    count("expressions")
    try:
        value = evaluate(text, ENV)
    except ExprError as e:
        assert 0 <= e.col <= len(text) + 1
    else:
        assert isinstance(value, (int, float, bool, str))


ATOMS = st.sampled_from(["width", "stride", "groups", "2", "0", "-1", "3.5", "64", "1e300"])
OPS = st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "<", "==", " and ", " or "])


@settings(max_examples=2000, deadline=1000)
@given(st.lists(st.tuples(ATOMS, OPS), min_size=1, max_size=12), ATOMS)
@pytest.mark.fuzz
def test_arbitrary_arithmetic_never_escapes(pairs: list[tuple[str, str]], last: str) -> None:
    count("expressions")
    text = "".join(a + o for a, o in pairs) + last
    try:
        value = evaluate(text, ENV)
    except ExprError:
        return
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        assert abs(value) <= MAX_MAGNITUDE


def test_make_divisible_and_round_are_torchvisions() -> None:
    from torchvision.models._utils import _make_divisible

    for v in [1, 7.5, 8, 15.99, 16 * 0.75, 24 * 1.3, 32 * 0.35, 96 * 1.4, 1280 * 0.5, 3.2]:
        for divisor, least in ((8, None), (8, 16), (16, None)):
            args = f"{v}, {divisor}" + (f", {least}" if least is not None else "")
            assert evaluate(f"make_divisible({args})", {}) == _make_divisible(v, divisor, least)
    assert evaluate("round(2.5)", {}) == 2 and evaluate("round(3.5)", {}) == 4  # halves to even
    assert evaluate("round(1.23456, 2)", {}) == 1.23
