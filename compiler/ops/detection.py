"""Ops of detection heads: what a head computes from its maps before anchors and NMS.

``flatten_anchors`` turns a head's per-position predictions ``[A * K, H, W]`` into rows
``[H * W * A, K]``, one per position and anchor, so the levels of a pyramid concatenate into one
sequence (torchvision's RetinaNet and FCOS heads).
"""

from __future__ import annotations

from .records import Attr, Attrs, LowerContext, Lowered, OnnxWriter, Op, Shape, ShapeError, _chw


def _flatten_anchors_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, h, w = _chw(ins, "flatten_anchors")
    if c % a["values"]:
        raise ShapeError(
            f"flatten_anchors needs channels that are anchors x {a['values']} values, got {c}",
            "values",
        )
    return (h * w * (c // a["values"]), a["values"])  # a sequence [L, K]


def _flatten_anchors_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering import modules

    return Lowered(function=modules.flatten_anchors, extra_args=(a["values"],))


def _flatten_anchors_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    # [N, A * K, H, W] -> [N, A, K, H * W] -> [N, H * W, A, K] -> [N, H * W * A, K]: the rows in
    # torch's order, with H and W read from the input (any size)
    k = a["values"]
    grouped = e.node("Reshape", [e.inputs[0], e.ints([0, ctx.in_shapes[0][0] // k, k, -1])])
    rows = e.node("Transpose", [grouped], perm=[0, 3, 1, 2])
    return e.node("Reshape", [rows, e.ints([0, -1, k])])


FLATTEN_ANCHORS_OP = Op(
    name="flatten_anchors",
    doc="a detection head's [A * K, H, W] predictions as [H * W * A, K] rows, one per position "
    "and anchor (view, permute, reshape: torchvision's RetinaNet and FCOS heads); the rows of "
    "each level concat into one sequence",
    attrs={
        "values": Attr(kind="int", min=1, doc="K: the values per anchor (classes, 4 box sides)")
    },
    shape=_flatten_anchors_shape,
    lower=_flatten_anchors_lower,
    onnx=_flatten_anchors_onnx,
    label=lambda a, o: f"rows of {a['values']}",
    diagram="reshape",
)

OPS_DETECTION: list[Op] = [FLATTEN_ANCHORS_OP]
