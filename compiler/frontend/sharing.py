"""Nodes and blocks that run another's modules: a node's or a stage row's ``share:``.

    cls_p4: {block: retinanet_cls_level, in: fpn.p4, share: head.classification_head,
             path: head.classification_head.p4}

makes the block's nodes as usual (their values, shapes and MACs are this block's) but gives them
no modules: each runs the module of the node at the same place in the shared instance
(``head.classification_head.p4.conv.0.0`` runs ``head.classification_head.conv.0.0``), as
torchvision's RetinaNet head and ultralytics' Detect build one tower and call it on every level.
The state_dict and the parameter count hold the shared instance's weights once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import Loc, suffix_hint
from ..ir.graph import Node
from ..ops import channels
from .context import Context, Failed

if TYPE_CHECKING:
    from .expand import Expander
    from .spec import StageSpec


def share_modules(ex: Expander, st: StageSpec, path: str, names: list[str], ctx: Context) -> None:
    """Mark the nodes ``names`` of the block instance at ``path`` as running the modules of
    the instance ``st.share``: the same op, attributes and input channels, or a located error."""
    assert st.share is not None
    target, loc = st.share, st.locs["share"]
    if target not in ex.block_params:
        known = [p for p in ex.block_params if p != path]
        listing = [f"block instances so far: {', '.join(known[-8:])}"] if known else []
        ex.error(
            ctx,
            loc,
            f"'share' names '{target}', which is no earlier block instance"
            f"{suffix_hint(target, known)}",
            *listing,
        )
        raise Failed
    for name in names:
        relative = name[len(path) + 1 :] if name.startswith(path + ".") else ""
        owner = ex.nodes.get(f"{target}.{relative}") if relative else None
        if owner is None:
            ex.error(
                ctx,
                loc,
                f"node '{name}' has no counterpart '{target}.{relative}' in the shared block",
                "a shared block is an instance of the same block type with the same parameters",
            )
            raise Failed
        share_module(ex, ex.nodes[name], owner.name, loc, ctx)


def share_module(ex: Expander, node: Node, owner_name: str | None, loc: Loc, ctx: Context) -> None:
    """Mark ``node`` as running the module of the earlier node ``owner_name`` (a node's
    ``share:``): the same op, attributes and input channels, or a located error."""
    owner = ex.nodes.get(owner_name or "")
    if owner is None or owner is node:
        ex.error(ctx, loc, f"node '{node.name}' cannot share the module of '{owner_name}'")
        raise Failed
    ins = [_channels(ex, i) for i in node.inputs]
    owner_ins = [_channels(ex, i) for i in owner.inputs]
    if node.op != owner.op or node.attrs != owner.attrs or ins != owner_ins:
        ex.error(
            ctx,
            loc,
            f"node '{node.name}' ({node.op}, inputs of {ins} channels) cannot run the module of "
            f"'{owner.name}' ({owner.op}, inputs of {owner_ins} channels): a shared module "
            "needs the same op, attributes and input channels",
        )
        raise Failed
    node.shares = owner.shares or owner.name


def _channels(ex: Expander, value: str) -> int | None:
    shape = ex.shapes.get(value)
    return channels(shape) if shape else None
