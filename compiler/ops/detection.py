"""Ops of detection heads: what a head computes from its maps before anchors and NMS.

``flatten_anchors`` turns a head's per-position predictions ``[A * K, H, W]`` into rows
``[H * W * A, K]``, one per position and anchor, so the levels of a pyramid concatenate into one
sequence (torchvision's RetinaNet and FCOS heads). ``anchor_points``, ``dfl`` and ``dist2bbox``
decode a YOLO head's boxes (ultralytics' Detect in eval mode): the centres of every level's cells,
the box sides' expectations over their bins, and boxes from the two.
"""

from __future__ import annotations

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
    _chw,
)


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


# ---- dfl -----------------------------------------------------------------------------------


def _dfl_shape(a: Attrs, ins: list[Shape]) -> Shape:
    shape = ins[0]
    if len(shape) != 2 or shape[0] != 4 * a["bins"]:
        raise ShapeError(
            f"dfl needs [4 x {a['bins']} bins, anchors] (a YOLO head's box rows), got "
            f"{list(shape)}",
            "bins",
        )
    return (4, shape[1])


def _dfl_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering.modules import DFL

    return Lowered(DFL(a["bins"]))


def _dfl_init(m: Any, a: Attrs, ctx: InitContext) -> None:
    """The bins' values 0, 1, ..., bins - 1: the expectation's weights (fixed)."""
    import torch

    with torch.no_grad():
        m.conv.weight.copy_(torch.arange(a["bins"], dtype=torch.float).view(1, -1, 1, 1))


def _dfl_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    bins = e.node("Reshape", [e.inputs[0], e.ints([0, 4, a["bins"], -1])])
    bins = e.node("Transpose", [bins], perm=[0, 2, 1, 3])  # [N, bins, 4, anchors]
    soft = e.node("Softmax", [bins], axis=1)
    mean = e.node("Conv", [soft, e.param("conv.weight")], kernel_shape=[1, 1])
    return e.node("Reshape", [mean, e.ints([0, 4, -1])])


DFL_OP = Op(
    name="dfl",
    doc="a YOLO head's box sides from their distributions (Distribution Focal Loss, Li et al. "
    "2020): [4 * bins, anchors] -> [4, anchors], each side the expectation of a softmax over "
    "its bins, a fixed 1x1 convolution by 0 .. bins - 1 (ultralytics' DFL: conv.weight, a "
    "parameter that does not train)",
    attrs={"bins": Attr(kind="int", default=16, min=2, doc="the bins per side (reg_max)")},
    shape=_dfl_shape,
    lower=_dfl_lower,
    onnx=_dfl_onnx,
    label=lambda a, o: f"DFL {a['bins']}",
    diagram="reshape",
    params=lambda a, ins, o: a["bins"],
    macs=lambda a, ins, o: a["bins"] * o[0] * o[1],  # the 1x1 convolution over 4 x anchors
    init=_dfl_init,
)


# ---- anchor_points, dist2bbox -------------------------------------------------------------


def _anchor_points_shape(a: Attrs, ins: list[Shape]) -> Shape:
    if len(a["strides"]) != len(ins):
        raise ShapeError(
            f"anchor_points reads {len(ins)} level maps and has {len(a['strides'])} strides: "
            "one per level",
            "strides",
        )
    cells = sum(h * w for _, h, w in (_chw([level], "anchor_points") for level in ins))
    return (2, cells) if a["index"] == 0 else (1, cells)


def _anchor_points_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering import modules

    extra = (tuple(float(s) for s in a["strides"]), a["offset"])
    return Lowered(function=modules.anchor_points, extra_args=extra, item=a["index"])


def _anchor_points_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    """The cells' centres (index 0) or strides (index 1) from each level's height and width at
    run time (any size)."""

    def side(shape: str, axis: int) -> str:
        return e.node("Gather", [shape, e.ints([axis])], axis=0)  # [1] int64

    def centres(n: str) -> str:  # offset, offset + 1, ... as float32: torch.arange(n) + offset
        end = e.node("Cast", [e.node("Squeeze", [n, e.ints([0])])], to=1)
        offset = e.scalar(a["offset"])
        return e.node("Range", [offset, e.node("Add", [end, offset]), e.scalar(1.0)])

    pieces = []
    for feat, stride in zip(e.inputs, a["strides"], strict=True):
        shape = e.node("Shape", [feat])
        h, w = side(shape, 2), side(shape, 3)
        if a["index"] == 1:  # [h * w, 1] of the stride
            count = e.node("Concat", [e.node("Mul", [h, w]), e.ints([1])], axis=0)
            pieces.append(e.node("Expand", [e.scalar(float(stride)), count]))
            continue
        grid = e.node("Concat", [h, w], axis=0)
        sx = e.node("Expand", [e.node("Unsqueeze", [centres(w), e.ints([0])]), grid])
        sy = e.node("Expand", [e.node("Unsqueeze", [centres(h), e.ints([1])]), grid])
        pair = [e.node("Unsqueeze", [s, e.ints([2])]) for s in (sx, sy)]
        pieces.append(e.node("Reshape", [e.node("Concat", pair, axis=2), e.ints([-1, 2])]))
    joined = e.node("Concat", pieces, axis=0)  # [anchors, 2 or 1]
    return e.node("Transpose", [joined], perm=[1, 0])


ANCHOR_POINTS_OP = Op(
    name="anchor_points",
    doc="the centres of the cells of the level maps it reads, [2, anchors] (x, y in cells: "
    "index 0), or each one's stride [1, anchors] (index 1), from the maps' sizes at run time: "
    "ultralytics' make_anchors; the two pieces share one call",
    attrs={
        "strides": Attr(kind="ints", doc="each level map's stride, like [8, 16, 32]"),
        "offset": Attr(kind="float", default=0.5, doc="an anchor point within its cell"),
        "index": Attr(kind="int", default=0, min=0, max=1, doc="0: the points; 1: the strides"),
    },
    shape=_anchor_points_shape,
    lower=_anchor_points_lower,
    onnx=_anchor_points_onnx,
    label=lambda a, o: "anchor points" if a["index"] == 0 else "strides",
    diagram="reshape",
    inputs=(1, None),
    read_only_by=("dist2bbox",),  # [2, anchors] and [1, anchors]: no batch dimension
)


def _dist2bbox_shape(a: Attrs, ins: list[Shape]) -> Shape:
    distances, anchors, strides = ins
    if len(distances) != 2 or distances[0] != 4:
        raise ShapeError(f"dist2bbox needs [4, anchors] distances first, got {list(distances)}")
    if list(anchors) != [2, distances[1]] or list(strides) != [1, distances[1]]:
        raise ShapeError(
            f"dist2bbox reads [4, A] distances, [2, A] anchor points and [1, A] strides, got "
            f"{list(distances)}, {list(anchors)} and {list(strides)}"
        )
    return distances


def _dist2bbox_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering import modules

    return Lowered(function=modules.dist2bbox, extra_args=(a["xywh"],))


def _dist2bbox_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    d, anchors, strides = e.inputs
    points = e.node("Unsqueeze", [anchors, e.ints([0])])  # [1, 2, anchors]
    lt = e.node("Slice", [d, e.ints([0]), e.ints([2]), e.ints([1])])
    rb = e.node("Slice", [d, e.ints([2]), e.ints([4]), e.ints([1])])
    x1y1, x2y2 = e.node("Sub", [points, lt]), e.node("Add", [points, rb])
    if a["xywh"]:
        centre = e.node("Div", [e.node("Add", [x1y1, x2y2]), e.scalar(2.0)])
        boxes = e.node("Concat", [centre, e.node("Sub", [x2y2, x1y1])], axis=1)
    else:
        boxes = e.node("Concat", [x1y1, x2y2], axis=1)
    return e.node("Mul", [boxes, strides])


DIST2BBOX_OP = Op(
    name="dist2bbox",
    doc="boxes from distances [4, anchors] to each anchor point's sides, as ultralytics' Detect "
    "decodes them: reads the distances, the anchor points [2, anchors] and their strides "
    "[1, anchors] (anchor_points); x, y, w, h (xywh) or the corners, in pixels",
    attrs={"xywh": Attr(kind="bool", default=True, doc="centre and size; false: the corners")},
    shape=_dist2bbox_shape,
    lower=_dist2bbox_lower,
    onnx=_dist2bbox_onnx,
    label=lambda a, o: "boxes",
    diagram="reshape",
    inputs=(3, 3),
)

# ---- psa_attention -------------------------------------------------------------------------


def _psa_dims(a: Attrs, channels: int) -> tuple[int, int, int]:
    """(heads, key_dim, head_dim) of an attention over ``channels`` (ultralytics' Attention)."""
    heads = a["heads"]
    head_dim = channels // heads
    return heads, int(head_dim * a["attn_ratio"]), head_dim


def _psa_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, h, w = _chw(ins, "psa_attention")
    dim = a["dim"]
    heads, key_dim, _ = _psa_dims(a, dim)
    if dim % heads or key_dim < 1:
        raise ShapeError(
            f"psa_attention needs {dim} channels in {heads} heads of at least "
            f"{1 / a['attn_ratio']:g} channels each",
            "heads",
        )
    if c != dim + 2 * key_dim * heads:
        raise ShapeError(
            f"psa_attention over {dim} channels reads its qkv map of {dim + 2 * key_dim * heads} "
            f"channels (values {dim}, queries and keys {key_dim * heads} each), got {c}",
            "dim",
        )
    return (dim, h, w)


def _psa_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering import modules

    return Lowered(
        function=modules.psa_attention, extra_args=_psa_dims(a, a["dim"]), item=a["index"]
    )


def _psa_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    heads, key_dim, head_dim = _psa_dims(a, a["dim"])
    qkv = e.inputs[0]
    sides = e.node("Slice", [e.node("Shape", [qkv]), e.ints([2]), e.ints([4])])
    as_map = e.node("Concat", [e.ints([0, a["dim"]]), sides], axis=0)  # [N, C, H, W]
    grouped = e.node("Reshape", [qkv, e.ints([0, heads, key_dim * 2 + head_dim, -1])])
    bounds = [0, key_dim, 2 * key_dim, 2 * key_dim + head_dim]
    q, k, v = (
        e.node("Slice", [grouped, e.ints([bounds[j]]), e.ints([bounds[j + 1]]), e.ints([2])])
        for j in range(3)
    )
    if a["index"] == 1:
        return e.node("Reshape", [v, as_map])
    scaled = e.node("Mul", [q, e.scalar(key_dim**-0.5)])
    logits = e.node("MatMul", [e.node("Transpose", [scaled], perm=[0, 1, 3, 2]), k])
    attn = e.node("Softmax", [logits], axis=-1)
    mixed = e.node("MatMul", [v, e.node("Transpose", [attn], perm=[0, 1, 3, 2])])
    return e.node("Reshape", [mixed, as_map])


def _psa_macs(a: Attrs, ins: list[Shape], out: Shape) -> int:
    """The two products over every pair of positions, q^T k and v attn^T: the call's, which
    either piece makes (the stats count a call once)."""
    heads, key_dim, head_dim = _psa_dims(a, a["dim"])
    n = out[1] * out[2]
    return heads * n * n * (key_dim + head_dim)


PSA_ATTENTION_OP = Op(
    name="psa_attention",
    doc="ultralytics' Attention (YOLO11's position-sensitive attention) between its qkv and pe "
    "convolutions: a qkv map [dim + 2 * heads * key_dim, H, W] as queries, keys and values per "
    "head, every position attending to every other; index 0 is the attended map [dim, H, W], "
    "index 1 the values as a map (pe's input); the two pieces share one call",
    attrs={
        "dim": Attr(kind="int", min=1, doc="the channels attended over (the values')"),
        "heads": Attr(kind="int", default=1, min=1),
        "attn_ratio": Attr(
            kind="float", default=0.5, min=0, min_open=True, doc="key_dim / head_dim"
        ),
        "index": Attr(kind="int", default=0, min=0, max=1, doc="0: attended; 1: the values"),
    },
    shape=_psa_shape,
    lower=_psa_lower,
    onnx=_psa_onnx,
    label=lambda a, o: f"attention, {a['heads']} heads" if a["index"] == 0 else "values",
    diagram="merge",
    macs=_psa_macs,
    pieces_share_macs=True,
)

OPS_DETECTION: list[Op] = [
    FLATTEN_ANCHORS_OP,
    DFL_OP,
    ANCHOR_POINTS_OP,
    DIST2BBOX_OP,
    PSA_ATTENTION_OP,
]
