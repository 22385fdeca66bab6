"""Ops that resample the spatial grid: pooling (max, average, global, adaptive, the
global mean), upsampling and resizing."""

from __future__ import annotations

import math
from typing import Any

from .records import (
    PADDING_WORDS,
    Attr,
    Attrs,
    LowerContext,
    Lowered,
    NotExportable,
    OnnxWriter,
    Op,
    Pads,
    Shape,
    ShapeError,
    _chw,
    _module,
    _nn,
    _spatial,
    _torch_pads,
    _unary,
    _word_pads,
)

# ---- maxpool, avgpool ----------------------------------------------------------------------


def _word_pool_pads(a: Attrs, chw: Shape) -> Pads:
    """The pads of a pool whose padding is a word (TensorFlow's SAME pooling) on a [C, H, W]
    input."""
    k = a["kernel"]
    return _word_pads(a["padding"], (chw[1], chw[2]), (k, k), a["stride"] or k)


def _pool_out(a: Attrs, ins: list[Shape], op: str) -> Shape:
    c, h, w = _chw(ins, op)
    k, s, p = a["kernel"], a["stride"] or a["kernel"], a["padding"]
    if isinstance(p, str):  # ceil(size / stride) windows: ceil_mode changes nothing
        top, left, bottom, right = _word_pool_pads(a, ins[0])
        return (c, (h + top + bottom - k) // s + 1, (w + left + right - k) // s + 1)
    if not isinstance(p, int):
        raise ShapeError(
            f"{op}'s windows are square: padding n or a rule, got {list(p)}", "padding"
        )
    if p > k // 2:
        raise ShapeError(f"padding {p} is more than half the kernel {k}", "padding")
    ho = _spatial(h, k, s, p, 1, a["ceil_mode"])
    wo = _spatial(w, k, s, p, 1, a["ceil_mode"])
    if ho < 1 or wo < 1:
        raise ShapeError(f"{op} of {k}x{k} / {s} shrinks {h}x{w} below 1x1", "kernel")
    return (c, ho, wo)


_POOL_ATTRS = {
    "kernel": Attr(kind="int", min=1, doc="window size"),
    "stride": Attr(kind="int", default=0, min=0, doc="step; 0 means the kernel size"),
    "padding": Attr(
        kind="padding",
        default=0,
        min=0,
        choices=PADDING_WORDS,
        doc="n (at most half the kernel) or by rule: same (stride 1, the size kept) or "
        "same_upper (TensorFlow's SAME: ceil(size / stride) out, the odd row and column at the "
        "bottom and right)",
    ),
    "ceil_mode": Attr(
        kind="bool", default=False, doc="round the output size up; no change with a rule"
    ),
}


def _pool_op(name: str, kind: str, module: str, onnx_type: str, extra: dict[str, Attr]) -> Op:
    """maxpool and avgpool: the same attributes, shape rule and label; a different nn module."""

    def lower(a: Attrs, ctx: LowerContext) -> Lowered:
        kwargs = {k: a[k] for k in extra}
        k, stride, padding = a["kernel"], a["stride"] or a["kernel"], a["padding"]
        if isinstance(padding, str):
            pads = _word_pool_pads(a, ctx.in_shapes[0])
            if pads[:2] != pads[2:]:  # more after than before: padded in front of the pool
                return Lowered(_padded_pool(module, k, stride, _torch_pads(pads), kwargs))
            return Lowered(_nn(module, k, stride, pads[:2], **kwargs))
        return Lowered(_nn(module, k, stride, padding, ceil_mode=a["ceil_mode"], **kwargs))

    def onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
        if isinstance(a["padding"], str):  # ONNX's pads may differ before and after: exact
            return word_onnx(a, ctx, e)
        k, s, p = a["kernel"], a["stride"] or a["kernel"], a["padding"]
        sizes, outs = ctx.in_shapes[0][1:], ctx.out_shape[1:]
        ceil = a["ceil_mode"]
        pads = [p] * 4
        if ceil and any(
            math.ceil((n + 2 * p - k) / s) + 1 != o for n, o in zip(sizes, outs, strict=True)
        ):
            # PyTorch drops a last window that starts in the padding; ONNX's ceil mode keeps it.
            # Floor mode with the end padding that gives PyTorch's output size is exact: padding
            # is ignored by a max pool and by an average that does not count it
            pairs = list(zip(sizes, outs, strict=True))
            ends = [max(0, (o - 1) * s + k - n - p) for n, o in pairs]
            exact = all(
                (n + p + e - k) // s + 1 == o for (n, o), e in zip(pairs, ends, strict=True)
            )
            if not exact or (a.get("count_include_pad") and any(end > p for end in ends)):
                raise NotExportable(
                    f"{name} with ceil_mode: PyTorch drops a last window that starts in the "
                    f"padding ({sizes[0]}x{sizes[1]} -> {outs[0]}x{outs[1]}), ONNX keeps it"
                )
            ceil, pads = False, [p, p, *ends]
        kwargs = (
            {"count_include_pad": int(a["count_include_pad"])} if "count_include_pad" in a else {}
        )
        return e.node(
            onnx_type,
            e.inputs,
            kernel_shape=[k, k],
            strides=[s, s],
            pads=pads,
            ceil_mode=int(ceil),
            **kwargs,
        )

    def word_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
        k = a["kernel"]
        kwargs = (
            {"count_include_pad": int(a["count_include_pad"])} if "count_include_pad" in a else {}
        )
        return e.node(
            onnx_type,
            e.inputs,
            kernel_shape=[k, k],
            strides=[a["stride"] or k] * 2,
            pads=list(_word_pool_pads(a, ctx.in_shapes[0])),
            **kwargs,
        )

    def label(a: Attrs, out: Shape) -> str:
        short = kind[:3] if kind == "average" else kind
        rule = f", {a['padding']}" if isinstance(a["padding"], str) else ""
        return f"{a['kernel']}x{a['kernel']} {short} pool, /{a['stride'] or a['kernel']}{rule}"

    return Op(
        name=name,
        doc=f"{kind} pooling",
        attrs={**_POOL_ATTRS, **extra},
        shape=lambda a, ins: _pool_out(a, ins, name),
        lower=lower,
        onnx=onnx,
        label=label,
        diagram="pool",
        fresh_output=True,
    )


def _padded_pool(
    module: str, kernel: int, stride: int, pads: tuple[int, int, int, int], kwargs: Attrs
) -> Any:
    """A pool after an unequal padding (F.pad's order), which torch's pools cannot take."""
    from ..lowering.modules import PaddedAvgPool2d, PaddedMaxPool2d

    padded = {"MaxPool2d": PaddedMaxPool2d, "AvgPool2d": PaddedAvgPool2d}[module]
    return padded(kernel, stride, pads, **kwargs)


MAXPOOL_OP = _pool_op("maxpool", "max", "MaxPool2d", "MaxPool", {})


AVGPOOL_OP = _pool_op(
    "avgpool",
    "average",
    "AvgPool2d",
    "AveragePool",
    {"count_include_pad": Attr(kind="bool", default=True)},
)


# ---- global_avgpool ------------------------------------------------------------------------


def _global_pool_shape(a: Attrs, ins: list[Shape]) -> Shape:
    return (_chw(ins, "global_avgpool")[0], 1, 1)


GLOBAL_AVGPOOL_OP = Op(
    name="global_avgpool",
    doc="average over all positions: [C, H, W] -> [C, 1, 1]",
    attrs={},
    shape=_global_pool_shape,
    lower=_module(lambda a, ctx: _nn("AdaptiveAvgPool2d", (1, 1))),
    onnx=_unary("GlobalAveragePool"),
    label=lambda a, o: "global avg pool",
    diagram="pool",
    fresh_output=True,
)


# ---- adaptive_avgpool ----------------------------------------------------------------------


def _adaptive_shape(a: Attrs, ins: list[Shape]) -> Shape:
    return (_chw(ins, "adaptive_avgpool")[0], a["size"], a["size"])


def _adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling windows along one axis: [floor(i*n/o), ceil((i+1)*n/o))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _adaptive_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    x = e.inputs[0]
    _, h, w = ctx.in_shapes[0]
    out = a["size"]
    if h % out == 0 and w % out == 0:  # equal windows: one average pool
        kernel = [h // out, w // out]
        return e.node("AveragePool", [x], kernel_shape=kernel, strides=kernel)
    # unequal windows: average each band of rows, then each band of columns (the windows are
    # products of the two), joined with Concat; AveragePool keeps it valid from opset 13 on
    for axis, size in ((2, h), (3, w)):
        parts = []
        for start, end in _adaptive_windows(size, out):
            band = e.node("Slice", [x, e.ints([start]), e.ints([end]), e.ints([axis])])
            kernel = [end - start, 1] if axis == 2 else [1, end - start]
            parts.append(e.node("AveragePool", [band], kernel_shape=kernel))
        x = parts[0] if len(parts) == 1 else e.node("Concat", parts, axis=axis)
    if x == e.inputs[0]:
        x = e.node("Identity", [x])
    return x


ADAPTIVE_AVGPOOL_OP = Op(
    name="adaptive_avgpool",
    doc="average pooling to a size x size output (VGG's 7x7, AlexNet's 6x6), PyTorch's windows",
    attrs={"size": Attr(kind="int", min=1, doc="output height and width")},
    shape=_adaptive_shape,
    lower=_module(lambda a, ctx: _nn("AdaptiveAvgPool2d", a["size"])),
    onnx=_adaptive_onnx,
    label=lambda a, o: f"adaptive avg pool {a['size']}x{a['size']}",
    diagram="pool",
    fresh_output=True,
)


# ---- global_mean ---------------------------------------------------------------------------


def _mean_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering import modules

    return Lowered(function=modules.spatial_mean)


def _mean_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    return e.node("Flatten", [e.node("GlobalAveragePool", e.inputs)], axis=1)


GLOBAL_MEAN_OP = Op(
    name="global_mean",
    doc="the mean over all positions, [C, H, W] -> [C] (ShuffleNetV2's and MNASNet's "
    "x.mean([2, 3]): no flatten after it)",
    attrs={},
    shape=lambda a, ins: (_chw(ins, "global_mean")[0],),
    lower=_mean_lower,
    onnx=_mean_onnx,
    label=lambda a, o: "global mean",
    diagram="pool",
    fresh_output=True,
)


# ---- upsample ------------------------------------------------------------------------------


def _upsample_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, h, w = _chw(ins, "upsample")
    if a["align_corners"] and a["mode"] == "nearest":
        raise ShapeError("align_corners applies to bilinear upsampling only", "align_corners")
    return (c, h * a["scale"], w * a["scale"])


def _upsample_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from torch import nn

    corners = a["align_corners"] if a["mode"] == "bilinear" else None
    return Lowered(
        nn.Upsample(scale_factor=float(a["scale"]), mode=a["mode"], align_corners=corners)
    )


def _upsample_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    s = float(a["scale"])
    scales = e.floats([1.0, 1.0, s, s])
    if a["mode"] == "nearest":  # PyTorch's nearest: floor(out_index / scale)
        return e.node(
            "Resize",
            [e.inputs[0], "", scales],
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        )
    return _interpolate_node(e, e.inputs[0], scales, a["mode"], a["align_corners"])


def _interpolate_node(e: OnnxWriter, x: str, scales: str, mode: str, align_corners: bool) -> str:
    """ONNX's Resize as F.interpolate's bilinear and bicubic modes (torch's cubic: a = -0.75)
    place the output's pixels on the input's: by their centres, or their corners. (Centres are
    'half_pixel': 'pytorch_half_pixel' reads pixel 0 for an output of one pixel, torch does not.)"""
    transform = "align_corners" if align_corners else "half_pixel"
    cubic = {"mode": "cubic", "cubic_coeff_a": -0.75} if mode == "bicubic" else {"mode": "linear"}
    return e.node("Resize", [x, "", scales], coordinate_transformation_mode=transform, **cubic)


UPSAMPLE_OP = Op(
    name="upsample",
    doc="upsampling by a whole factor, nearest or bilinear (align_corners as PyTorch's)",
    attrs={
        "scale": Attr(kind="int", default=2, min=1, doc="the factor on height and width"),
        "mode": Attr(kind="str", default="nearest", choices=("nearest", "bilinear")),
        "align_corners": Attr(kind="bool", default=False, doc="bilinear only"),
    },
    shape=_upsample_shape,
    lower=_upsample_lower,
    onnx=_upsample_onnx,
    label=lambda a, o: f"{a['mode']} up x{a['scale']}",
    diagram="pool",
    fresh_output=True,
)


# ---- resize --------------------------------------------------------------------------------


def _resize_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, h, w = _chw(ins, "resize")
    size, scale = a["size"], a["scale"]
    if size is not None and scale is not None:
        raise ShapeError("resize takes a size or a scale, not both", "scale")
    if size is None and scale is None:
        raise ShapeError("resize needs a size or a scale")
    if a["align_corners"] and a["mode"] == "nearest":
        raise ShapeError("align_corners applies to bilinear and bicubic resizing", "align_corners")
    if size is not None:
        return (c, size, size) if isinstance(size, int) else (c, *size)
    ho, wo = math.floor(h * scale), math.floor(w * scale)  # F.interpolate's, in double
    if ho < 1 or wo < 1:
        raise ShapeError(f"scale {scale:g} shrinks {h}x{w} to {ho}x{wo}", "scale")
    return (c, ho, wo)


def _resize_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from torch import nn

    corners = a["align_corners"] if a["mode"] != "nearest" else None
    return Lowered(
        nn.Upsample(size=a["size"], scale_factor=a["scale"], mode=a["mode"], align_corners=corners)
    )


def _nearest_rows(size: int, out: int, scale: float | None) -> list[int]:
    """The input row that torch's nearest resizing reads for each output row, asked of torch:
    its float32 arithmetic decides a row at a boundary, where ONNX's Resize (which divides
    where torch multiplies) may take the next one."""
    import torch
    from torch.nn import functional as F

    rows = torch.arange(size, dtype=torch.float32).view(1, 1, size, 1)
    how: dict[str, Any] = {"size": (out, 1)} if scale is None else {"scale_factor": (scale, 1.0)}
    return [int(r) for r in F.interpolate(rows, mode="nearest", **how).flatten().tolist()]


def _onnx_scale(size: int, out: int, scale: float) -> float:
    """The float32 nearest ``scale`` whose product with ``size`` floors to ``out`` in float32
    and in double: ONNX's Resize takes its output size from the scale, where torch floors a
    double product (float32(0.7) * 10 is 6.99999988: a row lost)."""
    import numpy as np

    s = np.float32(scale)
    for _ in range(64):
        floors = {math.floor(float(s) * size), math.floor(float(s * np.float32(size)))}
        if floors == {out}:
            return float(s)
        s = np.nextafter(s, np.float32(math.inf if min(floors) < out else 0.0))
    raise NotExportable(f"no float32 scale resizes {size} to {out} in ONNX's Resize")


def _weights(size: int, out: int, a: Attrs) -> list[float]:
    """torch's [out, size] interpolation weights along one side, row by row, asked of torch:
    F.interpolate of the identity (input row j is channel j)."""
    import torch
    from torch.nn import functional as F

    eye = torch.eye(size).view(1, size, size, 1)
    scale = a["scale"]
    how: dict[str, Any] = {"size": (out, 1)} if scale is None else {"scale_factor": (scale, 1.0)}
    moved = F.interpolate(eye, mode=a["mode"], align_corners=a["align_corners"], **how)
    return [float(v) for v in moved[0, :, :, 0].T.flatten().tolist()]


def _matmul_resize(a: Attrs, sides: list[tuple[int, int]], e: OnnxWriter) -> str:
    """The resize as two products with torch's weights: rows (A_h @ x), then columns."""
    (h, ho), (w, wo) = sides
    rows = e.node("Reshape", [e.floats(_weights(h, ho, a)), e.ints([ho, h])])
    cols = e.node("Reshape", [e.floats(_weights(w, wo, a)), e.ints([wo, w])])
    x = e.node("MatMul", [rows, e.inputs[0]])
    return e.node("MatMul", [x, e.node("Transpose", [cols], perm=[1, 0])])


def _resize_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    (_, h, w), (_, ho, wo), scale = ctx.in_shapes[0], ctx.out_shape, a["scale"]
    if a["mode"] == "nearest":  # the rows and columns torch reads, gathered
        rows = e.node("Gather", [e.inputs[0], e.ints(_nearest_rows(h, ho, scale))], axis=2)
        return e.node("Gather", [rows, e.ints(_nearest_rows(w, wo, scale))], axis=3)
    sides = [(h, ho), (w, wo)]
    if a["mode"] == "bicubic" and h == ho and w == wo and not a["align_corners"]:
        # onnxruntime copies a Resize that keeps the shape; torch's bicubic still interpolates
        # by 1 / scale (a scale of 1.25 on 3 rows)
        return _matmul_resize(a, sides, e)
    # torch maps by 1 / scale when given one, else by in / out: Resize by its scale does the
    # same; its bilinear leaves a side whose size does not change as it is (scale 1)
    scales = [
        1.0 if n == out and a["mode"] == "bilinear" else _onnx_scale(n, out, scale or out / n)
        for n, out in sides
    ]
    return _interpolate_node(
        e, e.inputs[0], e.floats([1.0, 1.0, *scales]), a["mode"], a["align_corners"]
    )


RESIZE_OP = Op(
    name="resize",
    doc="resizing to a size or by a scale, as F.interpolate: nearest (PyTorch's: the row at "
    "floor(i / scale)), bilinear or bicubic (align_corners as PyTorch's)",
    attrs={
        "size": Attr(kind="size", default=None, min=1, doc="the output's n or [h, w]; or scale"),
        "scale": Attr(
            kind="float",
            default=None,
            min=0,
            min_open=True,
            doc="the factor on height and width, floor(size * scale) out; or size",
        ),
        "mode": Attr(kind="str", default="nearest", choices=("nearest", "bilinear", "bicubic")),
        "align_corners": Attr(kind="bool", default=False, doc="bilinear and bicubic only"),
    },
    shape=_resize_shape,
    lower=_resize_lower,
    onnx=_resize_onnx,
    label=lambda a, o: f"{a['mode']} resize to {o[1]}x{o[2]}",
    diagram="pool",
    fresh_output=True,
)


OPS_POOL: list[Op] = [
    MAXPOOL_OP,
    AVGPOOL_OP,
    GLOBAL_AVGPOOL_OP,
    ADAPTIVE_AVGPOOL_OP,
    GLOBAL_MEAN_OP,
    UPSAMPLE_OP,
    RESIZE_OP,
]
