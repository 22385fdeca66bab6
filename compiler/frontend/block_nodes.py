"""Blocks inside blocks: a block type's node ``name: {block: <type>, <param>: <value>, ...}`` made
as an instance of that type at the node's path, inside the block being expanded.

Its ``input`` is its first input and ``input.1``, ``input.2``, ... the others (``input_count``
says how many). ``block: "{expression}"`` chooses the type by the enclosing block's names, so a
type may hold itself (DLA's tree): each key then goes to the chosen types that take it, and a key
no block type of the network takes is reported once every instance is made. Nesting deeper than
:data:`~compiler.frontend.nodes.MAX_NESTING` is a located error, so a recursion that never stops
ends there.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ..errors import Loc, suffix_hint
from ..ir.graph import INPUT
from ..ops import REQUIRED, channels
from .context import Context, Failed, Local
from .expr import Value
from .lookup import available_blocks
from .nodes import MAX_NESTING, NodeSpec
from .spec import BlockType, nested_block

if TYPE_CHECKING:
    from .expand import Expander


def nested(
    ex: Expander, ns: NodeSpec, env: dict[str, Value], inputs: list[str | None], ctx: Context
) -> str:
    """A block node: an instance of a block type inside the block being made, at the node's
    path, its ``input`` the node's first input and ``input.1``, ``input.2``, ... the rest
    (``input_count`` says how many); its parameters are the node's other keys, evaluated
    with the enclosing block's names."""
    where = ns.attr_locs["block"]
    name = ns.block
    if name.startswith("{"):
        value = ex.value(name[1:-1], env, where, ctx, f"'block' of '{ns.name}'")
        if not isinstance(value, str):
            ex.error(ctx, where, f"'block' of '{ns.name}' gives {value!r}, not a name")
            raise Failed
        name = value
    if len(ctx.nesting) >= MAX_NESTING:
        ex.error(
            ctx,
            ns.loc,
            f"block node '{ns.name}' would nest blocks {len(ctx.nesting) + 1} deep; the cap "
            f"is {MAX_NESTING}",
            "blocks inside: " + " > ".join(ctx.nesting[:3]) + " > ... > " + ctx.nesting[-1],
            "a block that names itself must stop by a parameter, with 'when:' or by choosing "
            "another block type",
        )
        raise Failed
    bt = nested_type(ex, name, where, ctx)
    path = ctx.prefix + ex.rendered(ns.name, env, ns.loc, ctx)
    if path in ex.block_params or path in ex.nodes:
        ex.error(ctx, ns.loc, f"duplicate node name '{path}'")
        raise Failed
    present = [i for i in inputs if i is not None]
    if not present:
        ex.error(ctx, ns.loc, f"block node '{ns.name}' reads a removed shortcut")
        raise Failed
    in_shape = ex.shapes[present[0]]
    if any(ex.shapes[i] is None for i in present) or in_shape is None:
        raise Failed
    inner: dict[str, Value] = {
        "in_channels": channels(in_shape),
        # each further input's channels: in_channels_1, in_channels_2, ...
        **{f"in_channels_{k}": channels(ex.shapes[i]) for k, i in enumerate(present[1:], 1)},  # type: ignore[arg-type]
        "input_count": len(present),
        "index": 0,
        "repeat": 1,
        "block_index": env.get("block_index", ex.blocks_done),
        "block_count": ex.block_count,
    }
    chosen = ns.block.startswith("{")
    if chosen:  # each key goes where the chosen type takes it; some type must take it
        ex.offered.setdefault(id(ns), (ns, ctx))
    for key in ns.attrs:
        if key not in bt.params and not chosen:
            ex.error(
                ctx,
                ns.attr_locs.get(key, ns.loc),
                f"block '{bt.name}' has no parameter '{key}'{suffix_hint(key, bt.params)}",
                "parameters: " + (", ".join(bt.params) or "none"),
            )
            raise Failed
    for key, default in bt.params.items():
        if key in ns.attrs:
            inner[key] = ex.value(ns.attrs[key], env, ns.attr_locs[key], ctx, f"parameter '{key}'")
        elif default is REQUIRED:
            ex.error(ctx, ns.loc, f"block '{bt.name}' needs parameter '{key}'")
            raise Failed
        else:
            inner[key] = ex.value(default, inner, bt.param_locs[key], ctx, f"default of '{key}'")
    for key, raw in bt.let.items():
        inner[key] = ex.value(raw, inner, bt.let_locs[key], ctx, f"'{key}'")
    outer = ctx.outer_where if ctx.nesting else ctx.where
    nctx = dataclasses.replace(
        ctx,
        prefix=path + ".",
        block=path,
        where=f"{outer}'{path}' ({bt.name}): ",
        outer_where=outer,
        numbered="",
        inputs=(),
        nesting=(*ctx.nesting, bt.name),
    )
    local: Local = {INPUT: present[0], **{f"input.{k}": v for k, v in enumerate(present)}}
    out = ex.block_body(bt, inner, local, present[0], nctx)
    ex.block_made(bt, path, inner, out)
    ex.nested_blocks[path] = bt.name
    return out


def nested_type(ex: Expander, name: str, loc: Loc, ctx: Context) -> BlockType:
    """The block type a block node names (its file read once)."""
    if name not in ex.loaded:
        before = len(ex.diags.items)
        ex.loaded[name] = nested_block(ex.spec, name, ex.diags)
        if ex.loaded[name] is None and len(ex.diags.items) == before:
            known = set(ex.spec.block_types) | available_blocks(ex.spec.block_folders)
            ex.error(
                ctx,
                loc,
                f"unknown block type '{name}'{suffix_hint(name, known)}",
                "block types: " + (", ".join(sorted(known)) or "none found"),
            )
    bt = ex.loaded[name]
    if bt is None:
        raise Failed
    if bt.flat:
        ex.error(ctx, loc, f"block '{bt.name}' is flat (not a module): it cannot be nested")
        raise Failed
    return bt


def unoffered(ex: Expander) -> None:
    """A key of a block node whose type an expression chooses goes to the types that take
    it; one that no block type of the network takes is a typo (as for a node of one type)."""
    taken = {p for bt in ex.spec.block_types.values() for p in bt.params}
    for ns, ctx in ex.offered.values():
        for key in ns.attrs:
            if key not in taken:
                ex.error(
                    ctx,
                    ns.attr_locs.get(key, ns.loc),
                    f"no block type of the network has a parameter '{key}' for "
                    f"'{ns.name}'{suffix_hint(key, taken)}",
                    'with block: "{expression}", each key goes to the block types that take it',
                )
