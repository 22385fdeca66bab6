"""Ops that join several values: add (the residual join), mul, sub, div, concat (the dense
join), stack, weighted_sum (a feature pyramid's learned fusion)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from .records import (
    Attr,
    Attrs,
    InitContext,
    LowerContext,
    Lowered,
    OnnxWriter,
    Op,
    Shape,
    ShapeError,
    _layout,
    _map,
    _map_shape,
    _unary,
    axis_of,
    is_tokens,
    spatial_rank,
)

# ---- add -----------------------------------------------------------------------------------


def _same_layout(ins: list[Shape], op: str) -> None:
    layouts = list(dict.fromkeys(_layout(s) for s in ins))
    if len(layouts) > 1:
        raise ShapeError(f"{op} of {layouts[0]} and {layouts[1]}")


def _equal_shapes(op: str) -> Callable[[Attrs, list[Shape]], Shape]:
    """The shape rule of an op that joins maps of one shape (add, weighted_sum)."""

    def shape(a: Attrs, ins: list[Shape]) -> Shape:
        _same_layout(ins, op)
        if any(s != ins[0] for s in ins[1:]):
            got = " and ".join(str(list(s)) for s in ins)
            raise ShapeError(f"{op} needs equal shapes, got {got}")
        return ins[0]

    return shape


def _add_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    import operator

    from ..lowering import modules

    if len(ctx.in_shapes) > 2:
        return Lowered(function=modules.add_all)
    # in place (torchvision's `out += identity`) when nothing else reads the first input
    return Lowered(function=operator.iadd if a["inplace"] and ctx.inplace_ok else operator.add)


def _add_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    return e.node("Add" if len(e.inputs) == 2 else "Sum", e.inputs)


ADD_OP = Op(
    name="add",
    doc="element-wise sum of two or more equal shapes (the residual addition)",
    attrs={
        "inplace": Attr(
            kind="bool",
            default=True,
            doc="add into the first input where no other node reads it (torchvision's "
            "`out += identity`); false: a new tensor (MobileNetV2's `x + conv(x)`)",
        )
    },
    shape=_equal_shapes("add"),
    lower=_add_lower,
    onnx=_add_onnx,
    label=lambda a, o: "+",
    diagram="merge",
    inputs=(2, None),
    joins_shortcut=True,
    fresh_output=True,
    overwrites=lambda a, n: bool(a["inplace"]) and n == 2,
)


# ---- mul -----------------------------------------------------------------------------------


def _broadcast(op: str) -> Callable[[Attrs, list[Shape]], Shape]:
    """The shape rule of a binary element-wise op: the second input's shape is the first's, or
    broadcasts onto it (size-1 dimensions), so the output has the first input's shape."""

    def shape(a: Attrs, ins: list[Shape]) -> Shape:
        _same_layout(ins, op)
        x, y = ins
        if len(x) != len(y) or any(p != q and q != 1 for p, q in zip(x, y, strict=True)):
            raise ShapeError(f"{op} cannot broadcast {list(y)} onto {list(x)}")
        return x

    return shape


def _mul_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    import operator

    return Lowered(function=operator.mul)


MUL_OP = Op(
    name="mul",
    doc="element-wise product; the second input may broadcast (size-1 dims)",
    attrs={},
    shape=_broadcast("mul"),
    lower=_mul_lower,
    onnx=_unary("Mul"),
    label=lambda a, o: "×",
    diagram="merge",
    inputs=(2, 2),
    fresh_output=True,
)


# ---- concat --------------------------------------------------------------------------------


# the op a dense stage (connect: dense) ends in: its input and every block's output, joined
DENSE_JOIN = "concat"


def _concat_shape(a: Attrs, ins: list[Shape]) -> Shape:
    if a["dim"] != 0:  # any other dimension: the rest equal (a detector's [C, anchors] rows)
        axis = axis_of(a["dim"], ins[0], "dim") - 1
        if any(len(s) != len(ins[0]) for s in ins):
            got = ", ".join(_layout(s) for s in ins)
            raise ShapeError(f"concat needs values of one rank, got {got}")
        rest = {tuple(s[:axis]) + tuple(s[axis + 1 :]) for s in ins}
        if len(rest) > 1:
            got = ", ".join("x".join(map(str, s)) for s in ins)
            raise ShapeError(f"concat along dimension {a['dim']} needs the others equal, got {got}")
        out = list(ins[0])
        out[axis] = sum(s[axis] for s in ins)
        return type(ins[0])(out)  # (a mark, channels-last or 1-D map, kept)
    if all(is_tokens(s) for s in ins):  # [L, D] rows: a detector's levels, end to end
        widths = {s[1] for s in ins}
        if len(widths) > 1:
            raise ShapeError(f"concat needs sequences of one width, got {sorted(widths)}")
        return (sum(s[0] for s in ins), ins[0][1])
    ranks = {spatial_rank(_map([s], "concat")) for s in ins}
    if len(ranks) > 1:
        got = ", ".join(_layout(s) for s in ins)
        raise ShapeError(f"concat needs maps of one rank, got {got}")
    sizes = {tuple(s[1:]) for s in ins}
    if len(sizes) > 1:
        got = ", ".join("x".join(map(str, s[1:])) for s in ins)
        raise ShapeError(
            f"concat needs inputs of one spatial size, got {got}",
            None,
            "crop or pool the larger ones first",
        )
    return _map_shape(sum(s[0] for s in ins), ins[0][1:])


def _concat_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering import modules

    if a["dim"] == 0:
        return Lowered(function=modules.concat)
    return Lowered(function=modules.concat_at, extra_args=(_concat_axis(a, ctx),))


def _concat_axis(a: Attrs, ctx: LowerContext) -> int:
    return axis_of(a["dim"], ctx.in_shapes[0], "dim")


CONCAT_OP = Op(
    name="concat",
    doc="concatenation along channels of one or more maps of one spatial size "
    "(DenseNet, Inception, SqueezeNet's Fire, the U-Net's skips), or of token sequences "
    "[L, D] of one width end to end (a detector's levels); 'dim' another dimension",
    attrs={
        "dim": Attr(
            kind="int",
            default=0,
            doc="the dimension after the batch: 0, the channels (or a sequence's length); -1 "
            "the last (a YOLO head's anchors)",
        )
    },
    shape=_concat_shape,
    lower=_concat_lower,
    onnx=lambda a, ctx, e: e.node("Concat", e.inputs, axis=_concat_axis(a, ctx)),
    label=lambda a, o: "C",  # the papers' circled C (U-Net, DenseNet figures)
    diagram="merge",
    inputs=(1, None),
    fresh_output=True,
)


# ---- sub, div ------------------------------------------------------------------------------


def _binary(
    name: str, doc: str, function: Callable[[Any, Any], Any], onnx_type: str, label: str
) -> Op:
    """A binary element-wise op as mul: ``function`` (from :mod:`operator`) of two inputs, the
    second of which may broadcast; one ONNX node."""

    def lower(a: Attrs, ctx: LowerContext) -> Lowered:
        return Lowered(function=function)

    return Op(
        name=name,
        doc=doc,
        attrs={},
        shape=_broadcast(name),
        lower=lower,
        onnx=_unary(onnx_type),
        label=lambda a, o: label,
        diagram="merge",
        inputs=(2, 2),
        fresh_output=True,  # their backward reads the inputs, not the output
    )


SUB_OP = _binary(
    "sub",
    "element-wise difference, first minus second; the second may broadcast (size-1 dims)",
    operator.sub,
    "Sub",
    "−",
)


DIV_OP = _binary(
    "div",
    "element-wise quotient, first over second; the second may broadcast (size-1 dims)",
    operator.truediv,
    "Div",
    "÷",
)


# ---- stack ---------------------------------------------------------------------------------


def _stack_axis(a: Attrs, shape: Shape) -> int:
    """The tensor's axis (the batch is 0) of the new dimension ``dim`` of the output."""
    return axis_of(a["dim"], shape, "dim", extra=1)


def _stack_shape(a: Attrs, ins: list[Shape]) -> Shape:
    if any(s != ins[0] for s in ins[1:]):
        got = ", ".join(str(list(s)) for s in ins)
        raise ShapeError(f"stack needs equal shapes, got {got}")
    axis = _stack_axis(a, ins[0]) - 1
    shape = tuple(ins[0])
    return (*shape[:axis], len(ins), *shape[axis:])


def _stack_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering import modules

    return Lowered(function=modules.stack, extra_args=(_stack_axis(a, ctx.in_shapes[0]),))


def _stack_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    axis = _stack_axis(a, ctx.in_shapes[0])
    pieces = [e.node("Unsqueeze", [x, e.ints([axis])]) for x in e.inputs]
    return e.node("Concat", pieces, axis=axis)


STACK_OP = Op(
    name="stack",
    doc="values of one shape stacked along a new dimension (torch.stack; SKNet's branches "
    "[paths, C, H, W]); a stack of maps is 4-D, read as a video map by the ops after it",
    attrs={
        "dim": Attr(
            kind="int",
            default=0,
            doc="where the new dimension goes in the output, without the batch; negative from "
            "the end",
        )
    },
    shape=_stack_shape,
    lower=_stack_lower,
    onnx=_stack_onnx,
    label=lambda a, o: f"stack on {a['dim']}",
    diagram="merge",
    inputs=(1, None),
    fresh_output=True,
)


# ---- weighted_sum --------------------------------------------------------------------------


def _weighted_sum_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    import torch

    from ..lowering import modules

    n = len(ctx.in_shapes)
    if a["method"] == "sum":
        return Lowered(function=modules.stacked_sum)
    if a["method"] == "softmax":
        return Lowered(function=modules.softmax_fusion, parameter=torch.ones(n))
    return Lowered(function=modules.fast_fusion, parameter=torch.ones(n), extra_args=(a["eps"],))


def _init_weighted_sum(m: Any, a: Attrs, ctx: InitContext) -> None:
    """Every input weighs the same at first (EfficientDet: ones)."""
    import torch

    with torch.no_grad():
        m.fill_(1.0)


def _weighted_sum_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    xs = e.inputs
    if a["method"] == "sum":
        return e.node("Sum", xs)
    w = e.param("")
    if a["method"] == "fast":
        w = e.node("Relu", [w])
        total = e.node("Add", [e.node("ReduceSum", [w], keepdims=0), e.scalar(a["eps"])])
        w = e.node("Div", [w, total])
    else:
        w = e.node("Softmax", [w], axis=0)
    terms = [e.node("Mul", [x, e.node("Gather", [w, e.ints([k])])]) for k, x in enumerate(xs)]
    return e.node("Sum", terms)


WEIGHTED_SUM_OP = Op(
    name="weighted_sum",
    doc="a learned weighting of one or more equal shapes, summed: EfficientDet's BiFPN fusion "
    "(Tan et al. 2020). Its weights are a bare [inputs] parameter under the node's name, "
    "starting at ones (effdet's edge_weights)",
    attrs={
        "method": Attr(
            kind="str",
            default="fast",
            choices=("fast", "softmax", "sum"),
            doc="fast: relu(w) / (sum(relu(w)) + eps), the fast normalised fusion; softmax: "
            "softmax(w); sum: no weights",
        ),
        "eps": Attr(
            kind="float",
            default=1e-4,
            min=0,
            min_open=True,  # (every weight at or below 0 would divide 0 by it)
            doc="the fast fusion's guard",
        ),
    },
    shape=_equal_shapes("weighted_sum"),
    lower=_weighted_sum_lower,
    onnx=_weighted_sum_onnx,
    label=lambda a, o: "w+" if a["method"] != "sum" else "+",  # (a merge circle's symbol)
    diagram="merge",
    inputs=(1, None),  # (a PAN's end nodes weigh one input: effdet's FpnCombine of one)
    params=lambda a, ins, o: 0 if a["method"] == "sum" else len(ins),
    init=_init_weighted_sum,
    fresh_output=True,
)


OPS_MERGE: list[Op] = [ADD_OP, MUL_OP, CONCAT_OP, SUB_OP, DIV_OP, STACK_OP, WEIGHTED_SUM_OP]
