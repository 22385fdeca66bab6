"""An attribute's value as the expansion gives it to a node: a literal or an expression of the
block's names, checked against the op's schema (whole numbers, one size per side, a padding
rule's name, a choice of words, a range), each mistake a located error."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import Loc
from ..ops import Attr
from .context import Context, Failed
from .expr import Value

if TYPE_CHECKING:
    from .expand import Expander


def _padding_words(attr: Attr) -> str:
    """What a 'padding' attribute takes, in words for an error."""
    return f"a whole number, [height, width] or one of {', '.join(attr.choices)}"


def typed(
    ex: Expander, raw: Any, attr: Attr, env: dict[str, Value], loc: Loc, ctx: Context, what: str
) -> Any:
    """An attribute value, evaluated and checked against the op's schema."""
    if raw is None:
        if attr.default is None:  # an optional attribute (conv padding): null means default
            return None
        ex.error(ctx, loc, f"{what} needs a value")
        raise Failed
    if attr.kind == "str":
        if isinstance(raw, str) and attr.choices and raw[:1] == "{" and raw[-1:] == "}":
            # a word chosen by the block's parameters: "{'a' if x else 'b'}"
            raw = ex.value(raw[1:-1], env, loc, ctx, what)
        if not isinstance(raw, str) or (attr.choices and raw not in attr.choices):
            ex.error(ctx, loc, f"{what} must be one of {', '.join(attr.choices)}, got {raw!r}")
            raise Failed
        return raw
    if attr.kind == "ints":
        if not isinstance(raw, list) or not raw:
            ex.error(ctx, loc, f"{what} must be a list of whole numbers, got {raw!r}")
            raise Failed
        items = [ex.value(r, env, loc, ctx, what) for r in raw]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            ex.error(ctx, loc, f"{what} must be a list of whole numbers, got {raw!r}")
            raise Failed
        return tuple(items)
    if attr.kind == "padding" and isinstance(raw, str):
        if raw in attr.choices:  # a rule by name (same); any other text is an expression
            return raw
        if raw.isidentifier() and raw not in env:
            ex.error(ctx, loc, f"{what} must be {_padding_words(attr)}, got {raw!r}")
            raise Failed
    if attr.kind in ("size", "padding") and isinstance(raw, list):  # one int per side
        if not 1 <= len(raw) <= 3:
            ex.error(
                ctx,
                loc,
                f"{what} must be n or one size per side ([length], [height, width] or "
                f"[time, height, width]), got {raw!r}",
            )
            raise Failed
        side = Attr(
            kind="int",
            min=attr.min,
            max=attr.max,
            min_open=attr.min_open,
            max_open=attr.max_open,
        )
        return tuple(typed(ex, r, side, env, loc, ctx, what) for r in raw)
    value = ex.value(raw, env, loc, ctx, what)
    if attr.kind == "padding" and value in attr.choices:  # a block parameter's word
        return value
    whole = isinstance(value, int) and not isinstance(value, bool)
    ok = {
        "int": whole,
        "size": whole,
        "padding": whole,
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
    }[attr.kind]
    if not ok:
        kind = {
            "int": "a whole number",
            "size": "a whole number or one per side, [height, width]",
            "padding": _padding_words(attr),
            "float": "a number",
            "bool": "true or false",
        }
        ex.error(ctx, loc, f"{what} must be {kind[attr.kind]}, got {value!r}")
        raise Failed
    if attr.kind != "bool" and (problem := attr.range_error(value)):  # type: ignore[arg-type]
        ex.error(ctx, loc, f"{what} {problem}, got {value}")
        raise Failed
    # a float attribute written as a whole number (eps: 1) is still a float downstream
    return float(value) if attr.kind == "float" else value
