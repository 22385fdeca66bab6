"""Ops over chosen dimensions of a value: softmax, log_softmax, and the reductions reduce_mean,
reduce_max and reduce_sum.

Dimensions are counted as shapes are, without the batch: 0 is the channels of a [C, H, W] map
(the tensor's dimension 1), 0 the tokens of a [L, D] sequence, and a negative one counts from the
end as in PyTorch (-1: the last). A dimension outside the value is a located error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .records import (
    Attr,
    Attrs,
    ChannelsLast,
    LowerContext,
    Lowered,
    OnnxWriter,
    Op,
    Shape,
    ShapeError,
    _nn,
    axis_of,
)

# ---- dimensions ----------------------------------------------------------------------------


def _axis(dim: int, shape: Shape, attr: str) -> int:
    return axis_of(dim, shape, attr)


def _axes(a: Attrs, shape: Shape) -> list[int]:
    """The tensor's axes the reduction's ``dims`` name, in order; refuses one named twice."""
    axes = [_axis(d, shape, "dims") for d in a["dims"]]
    if len(set(axes)) < len(axes):
        raise ShapeError(f"dims {list(a['dims'])} names a dimension twice", "dims")
    return sorted(axes)


# ---- softmax, log_softmax ------------------------------------------------------------------


_DIM = Attr(
    kind="int",
    default=-1,
    doc="the dimension, without the batch (0: the channels of a [C, H, W] map); negative "
    "from the end",
)


def _softmax_shape(a: Attrs, ins: list[Shape]) -> Shape:
    _axis(a["dim"], ins[0], "dim")
    return ins[0]


def _softmax(name: str, doc: str, module: str, onnx_type: str, label: str) -> Op:
    """Softmax or its logarithm along ``dim``: a torch.nn module, one ONNX node (opset 13's
    Softmax normalises along the one axis, as PyTorch does)."""

    def lower(a: Attrs, ctx: LowerContext) -> Lowered:
        return Lowered(_nn(module, dim=_axis(a["dim"], ctx.in_shapes[0], "dim")))

    def onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
        return e.node(onnx_type, e.inputs, axis=_axis(a["dim"], ctx.in_shapes[0], "dim"))

    return Op(
        name=name,
        doc=doc,
        attrs={"dim": _DIM},
        shape=_softmax_shape,
        lower=lower,
        onnx=onnx,
        label=lambda a, o: f"{label} over {a['dim']}",
        diagram="activation",
        # no fresh_output: PyTorch's backward of both reads their output
    )


SOFTMAX_OP = _softmax(
    "softmax",
    "exp(x) / sum(exp(x)) along one dimension (attention weights, class probabilities)",
    "Softmax",
    "Softmax",
    "softmax",
)


LOG_SOFTMAX_OP = _softmax(
    "log_softmax",
    "log(softmax(x)) along one dimension, computed stably (a classifier's log-probabilities)",
    "LogSoftmax",
    "LogSoftmax",
    "log-softmax",
)


# ---- reduce_mean, reduce_max, reduce_sum ---------------------------------------------------


def _reduce_shape(a: Attrs, ins: list[Shape]) -> Shape:
    shape = ins[0]
    axes = _axes(a, shape)
    if a["keepdim"]:  # the same layout, the reduced dimensions of size 1
        kept = tuple(1 if k + 1 in axes else s for k, s in enumerate(shape))
        return type(shape)(kept) if isinstance(shape, ChannelsLast) else kept
    left = tuple(s for k, s in enumerate(shape) if k + 1 not in axes)
    if not left:
        raise ShapeError(
            f"dims {list(a['dims'])} reduce every dimension of {list(shape)}, leaving one "
            "number per sample",
            "dims",
            "keepdim: true keeps them, of size 1",
        )
    return left


def _reduce(
    name: str,
    doc: str,
    pick: Callable[[Any], Callable[..., Any]],
    onnx_type: str,
    word: str,
    fresh: bool,
) -> Op:
    """A reduction over ``dims``: the torch function ``pick(torch)`` called as
    ``(x, dims, keepdim)`` (torch is imported only when the network is built), one ONNX node."""

    def lower(a: Attrs, ctx: LowerContext) -> Lowered:
        import torch

        axes = tuple(_axes(a, ctx.in_shapes[0]))
        return Lowered(function=pick(torch), extra_args=(axes, a["keepdim"]))

    def onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
        axes, keep = _axes(a, ctx.in_shapes[0]), int(a["keepdim"])
        # the axes are an input from opset 13 for ReduceSum, from 18 for the others
        if e.opset >= (13 if onnx_type == "ReduceSum" else 18):
            return e.node(onnx_type, [e.inputs[0], e.ints(axes)], keepdims=keep)
        return e.node(onnx_type, e.inputs, axes=axes, keepdims=keep)

    def label(a: Attrs, o: Shape) -> str:
        return f"{word} over {', '.join(map(str, a['dims']))}"

    return Op(
        name=name,
        doc=doc,
        attrs={
            "dims": Attr(
                kind="ints",
                doc="the dimensions reduced, without the batch (0: the channels of a [C, H, W] "
                "map); negative from the end",
            ),
            "keepdim": Attr(
                kind="bool", default=False, doc="keep the reduced dimensions, of size 1"
            ),
        },
        shape=_reduce_shape,
        lower=lower,
        onnx=onnx,
        label=label,
        diagram="pool",
        fresh_output=fresh,
    )


REDUCE_MEAN_OP = _reduce(
    "reduce_mean",
    "the mean over the chosen dimensions (torch.mean; dims [1, 2] of a [C, H, W] map is a "
    "global average pool)",
    lambda torch: torch.mean,
    "ReduceMean",
    "mean",
    fresh=True,  # its backward reads nothing
)


REDUCE_MAX_OP = _reduce(
    "reduce_max",
    "the maximum over the chosen dimensions (torch.amax; the gradient is shared between ties)",
    lambda torch: torch.amax,
    "ReduceMax",
    "max",
    fresh=False,  # its backward reads its output, to find the maxima
)


REDUCE_SUM_OP = _reduce(
    "reduce_sum",
    "the sum over the chosen dimensions (torch.sum)",
    lambda torch: torch.sum,
    "ReduceSum",
    "sum",
    fresh=True,  # its backward reads nothing
)


OPS_REDUCE: list[Op] = [
    SOFTMAX_OP,
    LOG_SOFTMAX_OP,
    REDUCE_MEAN_OP,
    REDUCE_MAX_OP,
    REDUCE_SUM_OP,
]
