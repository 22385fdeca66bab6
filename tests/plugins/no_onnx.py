"""A plugin op with a parameter, an init rule and no ONNX rule: ``stretch``, x * w per channel."""

from __future__ import annotations

from typing import Any

from compiler.ops import Attrs, InitContext, LowerContext, Lowered, Op, Shape


def _lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from .layers import Stretch

    return Lowered(Stretch(ctx.in_shapes[0][0]))


def init_stretch(module: Any, a: Attrs, ctx: InitContext) -> None:
    import torch

    with torch.no_grad():
        module.weight.fill_(2.0)


def _shape(a: Attrs, ins: list[Shape]) -> Shape:
    return ins[0]


STRETCH = Op(
    name="stretch",
    doc="x times a learned weight per channel, first 2",
    attrs={},
    shape=_shape,
    lower=_lower,
    onnx=None,
    label=lambda a, out: "stretch",
    diagram="norm",
    params=lambda a, ins, out: ins[0][0],
    init=init_stretch,
)

NETC_OPS = [STRETCH]
