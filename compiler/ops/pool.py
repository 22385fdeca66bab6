"""Ops that resample the spatial grid: pooling (max, average, global, adaptive, the
global mean) and upsampling."""

from __future__ import annotations

import math

from .records import (
    Attr,
    Attrs,
    LowerContext,
    Lowered,
    NotExportable,
    OnnxWriter,
    Op,
    Shape,
    ShapeError,
    _chw,
    _module,
    _nn,
    _spatial,
    _unary,
)

# ---- maxpool, avgpool ----------------------------------------------------------------------


def _pool_out(a: Attrs, ins: list[Shape], op: str) -> Shape:
    c, h, w = _chw(ins, op)
    k, s, p = a["kernel"], a["stride"] or a["kernel"], a["padding"]
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
    "padding": Attr(kind="int", default=0, min=0, doc="at most half the kernel"),
    "ceil_mode": Attr(kind="bool", default=False, doc="round the output size up"),
}


def _pool_op(name: str, kind: str, module: str, onnx_type: str, extra: dict[str, Attr]) -> Op:
    """maxpool and avgpool: the same attributes, shape rule and label; a different nn module."""

    def lower(a: Attrs, ctx: LowerContext) -> Lowered:
        kwargs = {k: a[k] for k in extra}
        stride = a["stride"] or a["kernel"]
        return Lowered(
            _nn(module, a["kernel"], stride, a["padding"], ceil_mode=a["ceil_mode"], **kwargs)
        )

    def onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
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

    def label(a: Attrs, out: Shape) -> str:
        short = kind[:3] if kind == "average" else kind
        return f"{a['kernel']}x{a['kernel']} {short} pool, /{a['stride'] or a['kernel']}"

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
    transform = "align_corners" if a["align_corners"] else "pytorch_half_pixel"
    return e.node(
        "Resize",
        [e.inputs[0], "", scales],
        mode="linear",
        coordinate_transformation_mode=transform,
    )


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


OPS_POOL: list[Op] = [
    MAXPOOL_OP,
    AVGPOOL_OP,
    GLOBAL_AVGPOOL_OP,
    ADAPTIVE_AVGPOOL_OP,
    GLOBAL_MEAN_OP,
    UPSAMPLE_OP,
]
