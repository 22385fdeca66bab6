"""Parameter expressions whose cost could explode from small inputs: each one computes at once or
gives an ExprError with a clear message.

Every evaluation here runs in a worker process that is killed after ``TIME_BOUND_S``: a hang
inside C code (``10 ** 10 ** 18`` in ``round``) holds the GIL, so neither a thread nor a signal
could stop it, and a test of a hang must not hang itself.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from multiprocessing.pool import Pool
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.frontend.expr import FUNCTIONS, MAX_MAGNITUDE, MAX_NODES, ExprError, Value, evaluate

# far above what any of these takes (microseconds) and far below a hang; generous because the
# machine running the tests may be busy
TIME_BOUND_S = 2.0
ENV: dict[str, Value] = {"width": 64, "stride": 2, "flag": True, "mode": "pad"}

Outcome = tuple[str, Any]


def evaluated(text: str) -> Outcome:
    """``("value", v)``, ``("error", message)`` or ``("crash", repr)``: what the worker sends back
    (an ExprError itself would lose its fields on the way)."""
    try:
        return ("value", evaluate(text, ENV))
    except ExprError as e:
        return ("error", e.message)
    except Exception as e:  # the evaluator must never raise anything else
        return ("crash", repr(e))


class Worker:
    """One spawned process evaluating expressions, replaced when one of them overruns."""

    def __init__(self) -> None:
        self.pool = self._start()

    @staticmethod
    def _start() -> Pool:
        pool = multiprocessing.get_context("spawn").Pool(1)
        pool.apply_async(evaluated, ("1",)).get(timeout=60)  # imports done before any timing
        return pool

    def __call__(self, text: str) -> Outcome:
        try:
            return self.pool.apply_async(evaluated, (text,)).get(timeout=TIME_BOUND_S)
        except multiprocessing.TimeoutError:
            self.pool.terminate()  # kills the stuck worker
            self.pool = self._start()
            pytest.fail(f"{text!r} did not finish within {TIME_BOUND_S} s")

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


@pytest.fixture(scope="module")
def run() -> Iterator[Worker]:
    worker = Worker()
    yield worker
    worker.close()


BIG = str(MAX_MAGNITUDE)  # 4611686018427387904, the largest magnitude allowed


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        # round(): an int rounded to -N digits costs 10 ** N
        ("round(10, -2**62)", ("error", "round(): ndigits must be from -20 to 20, got -" + BIG)),
        ("round(10, 2**62)", ("error", "round(): ndigits must be from -20 to 20, got " + BIG)),
        ("round(1.5, -2**62)", ("error", "round(): ndigits must be from -20 to 20, got -" + BIG)),
        ("round(10, -21)", ("error", "round(): ndigits must be from -20 to 20, got -21")),
        ("round(10, 2.0)", ("error", "round(): ndigits must be a whole number, got 2.0")),
        ("round(10, -20)", ("value", 0)),
        ("round(123456, -2)", ("value", 123500)),
        ("round(1.23456, 20)", ("value", 1.23456)),
        ("round(2**62, -18)", ("error", "expression result 5000000000000000000 is too large")),
        ("round(1, 2, 3)", ("error", "round() takes 1 to 2 numbers, got 3")),
        # int(): strings never reach it, floats are bounded before it
        ("int('9' * 5000)", ("error", "expected a number, got '9'")),
        ("int('1' + '0' * 100)", ("error", "expected a number, got '0'")),
        ("int(mode)", ("error", "expected a number, got 'pad'")),
        ("int(1e300)", ("error", "expression result 1e+300 is too large")),
        ("int(4.6e18)", ("value", 4_600_000_000_000_000_000)),
        ("int(7, 10)", ("error", "int() takes 1 number, got 2")),
        # strings are values, but never operands: no 'a' * 10 ** 9
        ("'a' * 10 ** 9", ("error", "expected a number, got 'a'")),
        ("mode * 10 ** 9", ("error", "expected a number, got 'pad'")),
        ("mode + mode", ("error", "expected a number, got 'pad'")),
        # **: the exponent is whole, not negative, and the result bounded before computing it
        ("2 ** 0.5", ("error", "the exponent of ** must be a whole number, got 0.5")),
        ("2 ** -1", ("error", "the exponent of ** must not be negative, got -1")),
        ("2 ** -2**62", ("error", f"the exponent of ** must not be negative, got -{BIG}")),
        ("2 ** 2**62", ("error", f"power 2 ** {BIG} is too large")),
        ("1.0000001 ** 2**62", ("error", f"power 1.0000001 ** {BIG} is too large")),
        ("0.5 ** 2**62", ("value", 0.0)),
        ("1 ** 2**62", ("value", 1)),
        ("(-1) ** 2**62", ("value", 1)),
        ("0 ** 2**62", ("value", 0)),
        ("2 ** 62", ("value", MAX_MAGNITUDE)),
        # % and //: any operands within the bound are cheap, a zero divisor is refused
        ("2**62 % 3", ("value", 1)),
        ("2**62 // -2**62", ("value", -1)),
        ("2**62 % 5e-324", ("value", 0.0)),
        ("4.6e18 % 1e-300", ("value", 4.6e18 % 1e-300)),
        ("2**62 // 5e-324", ("error", "expression result is not finite")),
        ("1 // 0.0", ("error", "division by zero")),
        ("width % 0", ("error", "division by zero")),
        (
            "(-2**62 - 2**62) // 1",
            ("error", f"expression result -{2 * MAX_MAGNITUDE} is too large"),
        ),
        # make_divisible(): bounded operands, a result that is not finite is refused
        ("make_divisible(2**62, 8)", ("value", MAX_MAGNITUDE)),
        ("make_divisible(1, 2**62)", ("value", MAX_MAGNITUDE)),
        ("make_divisible(2**62, 2**62, 2**62)", ("value", MAX_MAGNITUDE)),
        ("make_divisible(2**62, 5e-324)", ("error", "expression result is not finite")),
        ("make_divisible(1, 0)", ("error", "make_divisible(): the divisor must be positive")),
        ("make_divisible(1)", ("error", "make_divisible() takes 2 to 3 numbers, got 1")),
        # min/max: any count the node cap lets through; none is an error, one is that one
        ("min()", ("error", "min() takes at least 1 number, got 0")),
        ("max(7)", ("value", 7)),
        ("max(" + ", ".join(["width"] * 20) + ")", ("value", 64)),
        (
            "max(" + ",".join(["1"] * 97) + ")",
            ("error", f"expression has more than {MAX_NODES} parts"),
        ),
        ("ceil(1, 2)", ("error", "ceil() takes 1 number, got 2")),
        # chains, nesting and unary runs stop at the node cap or the parser
        (" < ".join(["1"] * 40), ("value", False)),
        ("<".join(["1"] * 99), ("error", f"expression has more than {MAX_NODES} parts")),
        ("(" * 90 + "1" + ")" * 90, ("value", 1)),
        ("-" * 150 + "1", ("error", f"expression has more than {MAX_NODES} parts")),
        ("not " * 41 + "mode", ("value", False)),
    ],
)
def test_costly_expressions_compute_at_once_or_are_refused(
    run: Worker, text: str, outcome: Outcome
) -> None:
    assert run(text) == outcome


LEAVES = st.sampled_from(
    [
        "0",
        "1",
        "-1",
        "2",
        "10",
        "-21",
        "64",
        "0.5",
        "1.5",
        "-2.5",
        "1e-300",
        "5e-324",
        "4.6e18",
        BIG,
        "-" + BIG,
        str(MAX_MAGNITUDE - 1),
        "'a'",
        "width",
        "stride",
        "flag",
        "mode",
    ]
)
BINARY = st.sampled_from(["+", "-", "*", "/", "//", "%", "**"])
COMPARE = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])


def _grammar(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """One construct of the expression grammar around smaller expressions."""
    binary = st.tuples(inner, BINARY, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
    unary = st.tuples(st.sampled_from(["-", "+", "not "]), inner).map(lambda t: f"{t[0]}({t[1]})")
    compare = st.lists(inner, min_size=2, max_size=4).flatmap(
        lambda parts: st.lists(COMPARE, min_size=len(parts) - 1, max_size=len(parts) - 1).map(
            lambda ops: parts[0] + "".join(f" {o} {p}" for o, p in zip(ops, parts[1:], strict=True))
        )
    )
    boolean = st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    )
    choice = st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})")
    call = st.tuples(st.sampled_from(sorted(FUNCTIONS)), st.lists(inner, max_size=3)).map(
        lambda t: f"{t[0]}({', '.join(t[1])})"
    )
    return st.one_of(binary, unary, compare, boolean, choice, call)


EXPRESSIONS = st.recursive(LEAVES, _grammar, max_leaves=10)


@settings(
    max_examples=1000,
    deadline=None,  # the worker's timeout is the bound; hypothesis' deadline cannot stop a hang
    suppress_health_check=[HealthCheck.too_slow],
)
@given(EXPRESSIONS)
@pytest.mark.fuzz
def test_expressions_from_the_grammar_finish_with_a_value_or_an_expr_error(
    run: Worker, text: str
) -> None:
    kind, result = run(text)
    assert kind in ("value", "error"), result
    if kind == "value":
        assert isinstance(result, (int, float, bool, str))
        if isinstance(result, (int, float)) and not isinstance(result, bool):
            assert abs(result) <= MAX_MAGNITUDE
