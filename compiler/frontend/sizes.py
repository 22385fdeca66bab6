"""The spec's ``sizes:``: which input sides the network accepts (compiler/ir/size_rule.py)."""

from __future__ import annotations

from typing import Any

from ..errors import suffix_hint
from ..ir.size_rule import RULE_KEYS, SizeRule
from .nodes import Checker, describe

MAX_SIDE = 1 << 20  # a rule's numbers stay below a million rows: the proof's arithmetic is exact


def size_rule(c: Checker, top: dict[str, Any], shape: list[int]) -> SizeRule | None:
    """The rule ``sizes:`` writes, checked, with the written ``input`` among its sizes; None
    where the spec has none (the network takes its ``input`` size only)."""
    if "sizes" not in top:
        return None
    raw, loc = top["sizes"], c.src.loc(("sizes",))
    if raw == "any":
        raw = {}
    if not isinstance(raw, dict):
        c.diags.error(
            loc,
            f"'sizes' must be 'any' or a mapping like {{multiple: 32}}, got {describe(raw)}",
            "keys: " + "; ".join(f"{k}: {v}" for k, v in RULE_KEYS.items()),
        )
        return None
    values: dict[str, int] = {}
    bad = False
    for key, value in raw.items():
        if key not in RULE_KEYS:
            c.diags.error(
                c.src.key_loc(("sizes", key)),
                f"unknown key '{key}' in 'sizes'{suffix_hint(str(key), RULE_KEYS)}",
                "keys: " + ", ".join(RULE_KEYS),
            )
        elif isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SIDE:
            c.diags.error(
                c.src.loc(("sizes", key)),
                f"'sizes.{key}' must be a whole number from 0 to {MAX_SIDE:,}, "
                f"got {describe(value)}",
            )
            bad = True
        else:
            values[key] = value
    if bad:
        return None
    rule = SizeRule(**values, loc=loc)
    problem = (
        "'multiple' must be 1 or more"
        if rule.multiple < 1
        else f"'remainder' {rule.remainder} must be less than 'multiple' {rule.multiple}"
        if rule.remainder >= rule.multiple
        else f"no side is accepted: {rule.text()}"
        if rule.first(1) is None
        else ""
    )
    if problem or len(values) < len(raw):  # (an unknown key: reported above)
        if problem:
            c.diags.error(loc, problem)
        return None
    sides = shape[1:]
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in sides):
        return rule  # the input is wrong itself: reported by the input's own check
    wrong = [n for n in sides if not rule.accepts(n)]
    if sides and wrong:
        c.diags.error(
            c.src.loc(("input",)),
            f"the input's side {wrong[0]} is not among the sizes the spec accepts: {rule.text()}",
            _nearest(rule, wrong[0]),
        )
        return None
    return rule


def _nearest(rule: SizeRule, n: int) -> str:
    """'the nearest accepted sides are 572 and 588' (or the one there is)."""
    below = n - (n - rule.remainder) % rule.multiple
    found = [m for m in (below if rule.accepts(below) else None, rule.first(n)) if m is not None]
    found = found or [m for m in [rule.first(1)] if m is not None]
    if len(set(found)) == 2:
        return f"the nearest accepted sides are {found[0]} and {found[1]}"
    return f"the nearest accepted side is {found[0]}"
