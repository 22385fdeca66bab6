"""A tiny arithmetic evaluator for parameter expressions in specs.

``width * base_width // 64 * groups`` or ``2 if stride > 1 else 1`` are parsed with Python's
``ast`` (parsing only; nothing is executed) and walked over a whitelist: numbers, strings, names
bound by the spec, + - * / // % **, comparisons, and/or/not, ``a if c else b`` and a few pure
functions. No attribute access, no subscripts, no other calls. Nothing may cost more than its
text suggests: results beyond 2**62 are refused (a power is judged before it is computed, so
``2 ** 10 ** 10`` fails at once instead of hanging), strings are never operands, each function
takes a fixed count of numbers, and ``round`` at most 20 digits either way.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import did_you_mean

Value = int | float | bool | str

MAX_LENGTH = 200  # characters in one expression
MAX_NODES = 100  # AST nodes in one expression
MAX_MAGNITUDE = 2**62  # any larger intermediate is refused
MAX_NDIGITS = 20  # round()'s digits either way: 10 ** 20 > MAX_MAGNITUDE


class ExprError(Exception):
    """A bad expression; ``col`` is the 0-based offset of the culprit inside the text."""

    def __init__(self, message: str, col: int = 0, note: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.col = col
        self.note = note


def _ceil(x: Any) -> int:
    return math.ceil(x)


def _floor(x: Any) -> int:
    return math.floor(x)


def _least(*values: Any) -> Any:
    return min(values)  # min(7) is 7, not Python's "int object is not iterable"


def _greatest(*values: Any) -> Any:
    return max(values)


def _round(x: Any, ndigits: Any = None) -> Any:
    """Python's round, with ``ndigits`` bounded: an int rounded to -N digits costs 10 ** N
    (``round(10, -2**62)`` would never return); no width needs more than 20 either way."""
    if ndigits is None:
        return round(x)
    if not isinstance(ndigits, int):
        raise ValueError(f"ndigits must be a whole number, got {_short(ndigits)}")
    if abs(ndigits) > MAX_NDIGITS:
        raise ValueError(f"ndigits must be from -{MAX_NDIGITS} to {MAX_NDIGITS}, got {ndigits}")
    return round(x, ndigits)


def make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """torchvision's ``_make_divisible``: ``v`` rounded to a multiple of ``divisor``, at least
    ``min_value`` (default: the divisor), never more than 10% below ``v`` (width multipliers of
    MobileNet and EfficientNet)."""
    if divisor <= 0:
        raise ValueError("the divisor must be positive")
    if v <= 0:  # a width multiplier of 0 or less: torchvision would silently give the divisor
        raise ValueError(f"the width to round must be more than 0, got {v:g}")
    least = divisor if min_value is None else min_value
    new_v = max(least, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


# each function with the numbers it takes (fewest, most): checked before the call, so no
# function ever sees an argument it does not expect (int's base, round's third)
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {
    "min": (_least, 1, MAX_NODES),
    "max": (_greatest, 1, MAX_NODES),
    "abs": (abs, 1, 1),
    "int": (int, 1, 1),
    "ceil": (_ceil, 1, 1),
    "floor": (_floor, 1, 1),
    "round": (_round, 1, 2),  # Python's: halves to even, as numpy's round (RegNet's widths)
    "make_divisible": (make_divisible, 2, 3),
}
CALLABLE = ", ".join(FUNCTIONS)

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMPOPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def evaluate(text: str, env: Mapping[str, Value]) -> Value:
    """Evaluate ``text`` with the names in ``env``; raises ExprError, never anything else."""
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters")
    stripped = text.lstrip()
    lead = len(text) - len(stripped)
    return _Evaluator(env, lead).visit(_parsed(text).body)


def check_syntax(text: str) -> None:
    """Raise the ExprError that evaluating ``text`` would raise for its syntax alone (its names
    are not looked up): lets a checker report a malformed expression beside other errors."""
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters")
    _parsed(text)


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> ast.Expression:
    """The checked syntax tree of ``text`` (an expression of a block type is evaluated once per
    block instance; it is parsed once). Failures are raised, never cached."""
    stripped = text.lstrip()
    lead = len(text) - len(stripped)
    try:
        tree = ast.parse(stripped.rstrip(), mode="eval")
    except SyntaxError as e:
        col = max((e.offset or 1) - 1, 0) + lead
        raise ExprError(f"cannot parse expression '{text.strip()}': {e.msg}", col) from None
    except (ValueError, RecursionError, MemoryError):
        raise ExprError(f"cannot parse expression '{text.strip()}'", lead) from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ExprError(f"expression has more than {MAX_NODES} parts", lead)
    return tree


class _Evaluator:
    def __init__(self, env: Mapping[str, Value], lead: int) -> None:
        self.env = env
        self.lead = lead

    def fail(self, node: ast.AST, message: str, note: str = "") -> ExprError:
        return ExprError(message, getattr(node, "col_offset", 0) + self.lead, note)

    def visit(self, node: ast.AST) -> Value:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise self.fail(
                node,
                f"'{type(node).__name__}' is not allowed in an expression",
                "expressions use numbers, names, + - * / // % **, comparisons, "
                f"'a if c else b' and {CALLABLE}",
            )
        return self.checked(node, method(node))

    def checked(self, node: ast.AST, value: Any) -> Value:
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(node, "expression result is not finite")
        big = isinstance(value, (int, float)) and abs(value) > MAX_MAGNITUDE
        if big and not isinstance(value, bool):
            raise self.fail(node, f"expression result {_short(value)} is too large")
        return value

    def visit_Constant(self, node: ast.Constant) -> Value:
        if isinstance(node.value, (bool, int, float, str)):
            return node.value
        raise self.fail(node, f"constant {node.value!r} is not allowed")

    def visit_Name(self, node: ast.Name) -> Value:
        if node.id in self.env:
            return self.env[node.id]
        raise self.fail(
            node,
            f"unknown name '{node.id}' in expression",
            did_you_mean(node.id, self.env)
            or (
                "known names: " + ", ".join(sorted(self.env))
                if self.env
                else "no names are defined here; write a number"
            ),
        )

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Value:
        value = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return not value
        self.number(node.operand, value)
        if isinstance(node.op, ast.USub):
            return -value  # type: ignore[operator]
        if isinstance(node.op, ast.UAdd):
            return +value  # type: ignore[operator]
        raise self.fail(node, "operator not allowed")

    def visit_BinOp(self, node: ast.BinOp) -> Value:
        left, right = self.visit(node.left), self.visit(node.right)
        fn = _BINOPS.get(type(node.op))
        if fn is None:
            raise self.fail(node, "operator not allowed in an expression")
        self.number(node.left, left)
        self.number(node.right, right)
        if isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)) and right == 0:
            raise self.fail(node, "division by zero")
        if isinstance(node.op, ast.Pow):
            self.check_power(node, left, right)
        try:
            return fn(left, right)
        except ArithmeticError as e:
            raise self.fail(node, f"arithmetic error: {e}") from None

    def check_power(self, node: ast.BinOp, left: Any, right: Any) -> None:
        """Refuse ``left ** right`` unless the exponent is whole and not negative, and the result
        is within MAX_MAGNITUDE: known from the logarithm before anything is computed."""
        if not isinstance(right, int):
            raise self.fail(node, f"the exponent of ** must be a whole number, got {_short(right)}")
        if right < 0:
            raise self.fail(node, f"the exponent of ** must not be negative, got {right}")
        if abs(left) > 1 and right * math.log2(abs(left)) > 62:
            raise self.fail(node, f"power {_short(left)} ** {_short(right)} is too large")

    def visit_BoolOp(self, node: ast.BoolOp) -> Value:
        if isinstance(node.op, ast.And):
            result: Value = True
            for v in node.values:
                result = self.visit(v)
                if not result:
                    return result
            return result
        result = False
        for v in node.values:
            result = self.visit(v)
            if result:
                return result
        return result

    def visit_Compare(self, node: ast.Compare) -> Value:
        left = self.visit(node.left)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = self.visit(comp)
            fn = _CMPOPS.get(type(op))
            if fn is None:
                raise self.fail(node, "comparison not allowed in an expression")
            try:
                ok = fn(left, right)
            except TypeError:
                raise self.fail(node, f"cannot compare {left!r} and {right!r}") from None
            if not ok:
                return False
            left = right
        return True

    def visit_IfExp(self, node: ast.IfExp) -> Value:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_Call(self, node: ast.Call) -> Value:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise self.fail(node, f"only {CALLABLE} may be called")
        name = node.func.id
        if node.keywords:
            raise self.fail(node, f"{name}() takes no keyword arguments")
        fn, fewest, most = FUNCTIONS[name]
        if not fewest <= len(node.args) <= most:
            raise self.fail(node, f"{name}() takes {_count(fewest, most)}, got {len(node.args)}")
        args = [self.visit(a) for a in node.args]
        for a, v in zip(node.args, args, strict=True):
            self.number(a, v)
        try:
            return fn(*args)
        except (TypeError, ValueError, ArithmeticError) as e:
            raise self.fail(node, f"{name}(): {e}") from None

    def number(self, node: ast.AST, value: Value) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(node, f"expected a number, got {value!r}")


def _count(fewest: int, most: int) -> str:
    """How many numbers a function takes, in words: '1 number', '2 to 3 numbers'."""
    if fewest == most:
        return f"{fewest} number" + ("" if fewest == 1 else "s")
    if most >= MAX_NODES:
        return f"at least {fewest} number" + ("" if fewest == 1 else "s")
    return f"{fewest} to {most} numbers"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 24 else text[:20] + "..."
