"""Ops that resample the spatial grid: pooling (max, average, global, adaptive, the
global mean), upsampling and resizing."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from .records import (
    _RANK_WORDS,
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
    _layout,
    _map,
    _map_shape,
    _sides,
    _size_text,
    _spatial,
    _torch_pads,
    _unary,
    _word_pads,
    spatial_rank,
    steps,
)

# ---- maxpool, avgpool ----------------------------------------------------------------------


def _windows(a: Attrs, shape: Shape) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A pool's kernel and stride along each spatial side of a map of this shape (a stride of 0
    is the kernel's)."""
    rank = spatial_rank(shape) or 2
    kernel = _sides(a["kernel"], rank, "kernel")
    if a["stride"] == 0:
        return kernel, kernel
    stride = _sides(a["stride"], rank, "stride")
    if 0 in stride:
        raise ShapeError(
            f"stride {list(stride)}: a stride of 0 (the kernel's) is 0 alone", "stride"
        )
    return kernel, stride


def _pool_pads(a: Attrs, shape: Shape) -> Pads:
    """A pool's pads on a map of this shape (ONNX's order): the attribute's numbers on both
    sides, or a word's rule (TensorFlow's SAME pooling)."""
    sizes, (kernel, stride) = tuple(shape[1:]), _windows(a, shape)
    if isinstance(a["padding"], str):
        return _word_pads(a["padding"], sizes, kernel, stride)
    each = _sides(a["padding"], len(sizes), "padding")
    return each + each


def _pool_out(a: Attrs, ins: list[Shape], op: str) -> Shape:
    c, *sides = _map(ins, op)
    sizes, rank = tuple(sides), len(sides)
    (kernel, stride), pads = _windows(a, ins[0]), _pool_pads(a, ins[0])
    if isinstance(a["padding"], str):  # ceil(size / stride) windows: ceil_mode changes nothing
        if rank != 2 and pads[:rank] != pads[rank:]:
            raise ShapeError(
                f"padding {a['padding']} pads {list(pads)} here, more after than before, which "
                f"netc's pools do on [C, H, W] maps only",
                "padding",
            )
        outs = tuple(
            (n + pads[i] + pads[rank + i] - k) // s + 1
            for i, (n, k, s) in enumerate(zip(sizes, kernel, stride, strict=True))
        )
        return _map_shape(c, outs)
    for p, k in zip(pads, kernel, strict=False):
        if p > k // 2:
            raise ShapeError(f"padding {p} is more than half the kernel {k}", "padding")
    outs = tuple(
        _spatial(n, k, s, p, 1, a["ceil_mode"])
        for n, k, s, p in zip(sizes, kernel, stride, pads, strict=False)
    )
    if min(outs) < 1:
        raise ShapeError(
            f"{op} of {_size_text(kernel)} / {_size_text(stride)} shrinks {_size_text(sizes)} "
            f"below {_size_text((1,) * rank)}",
            "kernel",
        )
    return _map_shape(c, outs)


_POOL_ATTRS = {
    "kernel": Attr(kind="size", min=1, doc="window size: n or one per side, [t, h, w]"),
    "stride": Attr(
        kind="size", default=0, min=0, doc="step, n or one per side; 0 means the kernel"
    ),
    "padding": Attr(
        kind="padding",
        default=0,
        min=0,
        choices=PADDING_WORDS,
        doc="n or one per side (at most half the kernel) or by rule: same (stride 1, the size "
        "kept) or same_upper (TensorFlow's SAME: ceil(size / stride) out, the odd row and "
        "column at the bottom and right)",
    ),
    "ceil_mode": Attr(
        kind="bool", default=False, doc="round the output size up; no change with a rule"
    ),
}


def _layer(kind: str, rank: int) -> Any:
    """torch.nn's pooling layer of this kind for a map of ``rank`` spatial dimensions."""
    from torch import nn

    layers = {
        "MaxPool": (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d),
        "AvgPool": (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d),
        "AdaptiveAvgPool": (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d),
    }
    return layers[kind][rank - 1]


def _pool_op(name: str, kind: str, module: str, onnx_type: str, extra: dict[str, Attr]) -> Op:
    """maxpool and avgpool: the same attributes, shape rule and label; a different nn module
    (``module`` without its rank: 'MaxPool' is nn.MaxPool1d, 2d or 3d)."""

    def lower(a: Attrs, ctx: LowerContext) -> Lowered:
        kwargs = {k: a[k] for k in extra}
        shape = ctx.in_shapes[0]
        layer, rank = f"{module}{len(shape) - 1}d", len(shape) - 1
        k, stride = a["kernel"], a["stride"] or a["kernel"]
        if isinstance(a["padding"], str):
            pads = _pool_pads(a, shape)
            if pads[:rank] != pads[rank:]:  # more after than before: padded in front of the pool
                return Lowered(_padded_pool(layer, k, stride, _torch_pads(pads), kwargs))
            return Lowered(_layer(module, rank)(k, stride, pads[:rank], **kwargs))
        pool = _layer(module, rank)
        return Lowered(pool(k, stride, a["padding"], ceil_mode=a["ceil_mode"], **kwargs))

    def onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
        shape = ctx.in_shapes[0]
        (kernel, stride), pads = _windows(a, shape), list(_pool_pads(a, shape))
        kwargs = (
            {"count_include_pad": int(a["count_include_pad"])} if "count_include_pad" in a else {}
        )
        # a rule's pads may differ before and after: ONNX's are exact
        ceil = a["ceil_mode"] and not isinstance(a["padding"], str)
        sizes, outs, rank = shape[1:], ctx.out_shape[1:], len(kernel)
        if ceil and any(
            math.ceil((n + 2 * p - k) / s) + 1 != o
            for n, o, k, s, p in zip(sizes, outs, kernel, stride, pads, strict=False)
        ):
            # PyTorch drops a last window that starts in the padding; ONNX's ceil mode keeps it.
            # Floor mode with the end padding that gives PyTorch's output size is exact: padding
            # is ignored by a max pool and by an average that does not count it
            sides = list(zip(sizes, outs, kernel, stride, pads, strict=False))
            ends = [max(0, (o - 1) * s + k - n - p) for n, o, k, s, p in sides]
            exact = all(
                (n + p + end - k) // s + 1 == o
                for (n, o, k, s, p), end in zip(sides, ends, strict=True)
            )
            if not exact or (
                a.get("count_include_pad") and any(x > p for x, p in zip(ends, pads, strict=False))
            ):
                raise NotExportable(
                    f"{name} with ceil_mode: PyTorch drops a last window that starts in the "
                    f"padding ({_size_text(tuple(sizes))} -> {_size_text(tuple(outs))}), ONNX "
                    "keeps it"
                )
            ceil, pads = False, [*pads[:rank], *ends]
        return e.node(
            onnx_type,
            e.inputs,
            kernel_shape=list(kernel),
            strides=list(stride),
            pads=pads,
            **({"ceil_mode": int(ceil)} if not isinstance(a["padding"], str) else {}),
            **kwargs,
        )

    def label(a: Attrs, out: Shape) -> str:
        short = kind[:3] if kind == "average" else kind
        rule = f", {a['padding']}" if isinstance(a["padding"], str) else ""
        kernel, stride = _size_text(a["kernel"], spatial_rank(out) or 2), a["stride"] or a["kernel"]
        return f"{kernel} {short} pool, /{_size_text(stride, 1)}{rule}"

    return Op(
        name=name,
        doc=f"{kind} pooling of a [C, L], [C, H, W] or [C, T, H, W] map",
        attrs={**_POOL_ATTRS, **extra},
        shape=lambda a, ins: _pool_out(a, ins, name),
        lower=lower,
        onnx=onnx,
        label=label,
        diagram="pool",
        fresh_output=True,
        side_factor=lambda a: steps(a["stride"] or a["kernel"]),
        # a word's pads depend on the size (TensorFlow's SAME): the module fits that size only
        built_for=lambda a, ins: _pool_pads(a, ins[0]) if isinstance(a["padding"], str) else None,
    )


def _padded_pool(
    module: str, kernel: Any, stride: Any, pads: tuple[int, ...], kwargs: Attrs
) -> Any:
    """A pool after an unequal padding (F.pad's order), which torch's pools cannot take."""
    from ..lowering.modules import PaddedAvgPool2d, PaddedMaxPool2d

    padded = {"MaxPool2d": PaddedMaxPool2d, "AvgPool2d": PaddedAvgPool2d}[module]
    return padded(kernel, stride, pads, **kwargs)


MAXPOOL_OP = _pool_op("maxpool", "max", "MaxPool", "MaxPool", {})


AVGPOOL_OP = _pool_op(
    "avgpool",
    "average",
    "AvgPool",
    "AveragePool",
    {"count_include_pad": Attr(kind="bool", default=True)},
)


# ---- global_avgpool ------------------------------------------------------------------------


def _global_pool_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, *sides = _map(ins, "global_avgpool")
    return _map_shape(c, [1] * len(sides))


def _global_pool_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    rank = len(ctx.in_shapes[0]) - 1
    return Lowered(_layer("AdaptiveAvgPool", rank)((1,) * rank))


GLOBAL_AVGPOOL_OP = Op(
    name="global_avgpool",
    doc="average over all positions: [C, H, W] -> [C, 1, 1] (any rank: [C, T, H, W] -> "
    "[C, 1, 1, 1])",
    attrs={},
    shape=_global_pool_shape,
    lower=_global_pool_lower,
    onnx=_unary("GlobalAveragePool"),
    label=lambda a, o: "global avg pool",
    diagram="pool",
    fresh_output=True,
    pools=True,
)


# ---- adaptive_avgpool ----------------------------------------------------------------------


def _adaptive_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, *sides = _map(ins, "adaptive_avgpool")
    return _map_shape(c, [a["size"]] * len(sides))


def _adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling windows along one axis: [floor(i*n/o), ceil((i+1)*n/o))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _adaptive_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    x, sizes, out = e.inputs[0], ctx.in_shapes[0][1:], a["size"]
    if out == 1:  # the mean of each map: any input size
        return e.node("GlobalAveragePool", [x])
    if all(n % out == 0 for n in sizes):  # equal windows: one average pool
        kernel = [n // out for n in sizes]
        return e.node("AveragePool", [x], kernel_shape=kernel, strides=kernel)
    # unequal windows: average each band along one axis, then the next (the windows are
    # products of the bands), joined with Concat; AveragePool keeps it valid from opset 13 on
    for i, size in enumerate(sizes):
        parts = []
        for start, end in _adaptive_windows(size, out):
            band = e.node("Slice", [x, e.ints([start]), e.ints([end]), e.ints([i + 2])])
            kernel = [end - start if j == i else 1 for j in range(len(sizes))]
            parts.append(e.node("AveragePool", [band], kernel_shape=kernel))
        x = parts[0] if len(parts) == 1 else e.node("Concat", parts, axis=i + 2)
    if x == e.inputs[0]:
        x = e.node("Identity", [x])
    return x


def _adaptive_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    return Lowered(_layer("AdaptiveAvgPool", len(ctx.in_shapes[0]) - 1)(a["size"]))


ADAPTIVE_AVGPOOL_OP = Op(
    name="adaptive_avgpool",
    doc="average pooling to a size x size output (VGG's 7x7, AlexNet's 6x6), PyTorch's windows",
    attrs={"size": Attr(kind="int", min=1, doc="the output's size on every side")},
    shape=_adaptive_shape,
    lower=_adaptive_lower,
    onnx=_adaptive_onnx,
    label=lambda a, o: f"adaptive avg pool {_size_text(a['size'], spatial_rank(o) or 2)}",
    diagram="pool",
    fresh_output=True,
    pools=True,
)


# ---- global_mean ---------------------------------------------------------------------------


def _mean_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering import modules

    rank = len(ctx.in_shapes[0]) - 1
    means = {1: modules.spatial_mean_1d, 2: modules.spatial_mean, 3: modules.spatial_mean_3d}
    return Lowered(function=means[rank])


def _mean_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    return e.node("Flatten", [e.node("GlobalAveragePool", e.inputs)], axis=1)


GLOBAL_MEAN_OP = Op(
    name="global_mean",
    doc="the mean over all positions, [C, H, W] -> [C] (ShuffleNetV2's and MNASNet's "
    "x.mean([2, 3]): no flatten after it; S3D's x.mean([2, 3, 4]) of a [C, T, H, W] map)",
    attrs={},
    shape=lambda a, ins: (_map(ins, "global_mean")[0],),
    lower=_mean_lower,
    onnx=_mean_onnx,
    label=lambda a, o: "global mean",
    diagram="pool",
    fresh_output=True,
    pools=True,
)


# ---- upsample ------------------------------------------------------------------------------


# F.interpolate's interpolating modes and the rank of map each is for
_MODE_RANKS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


def _interpolated(a: Attrs, ins: list[Shape], op: str) -> Shape:
    """The input of upsample or resize, a map whose rank its mode fits."""
    shape = _map(ins, op)
    rank, mode = spatial_rank(shape), a["mode"]
    if a["align_corners"] and mode == "nearest":
        raise ShapeError(
            "align_corners applies to the interpolating modes (linear, bilinear, bicubic, "
            "trilinear)",
            "align_corners",
        )
    if _MODE_RANKS.get(mode, rank) != rank:
        fits = [m for m, r in _MODE_RANKS.items() if r == rank]
        raise ShapeError(
            f"{mode} interpolates {_RANK_WORDS[_MODE_RANKS[mode]]} maps, got {_layout(shape)}",
            "mode",
            f"on this map: nearest or {' or '.join(fits)}",
        )
    return shape


def _upsample_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, *sides = _interpolated(a, ins, "upsample")
    return _map_shape(c, [n * a["scale"] for n in sides])


def _upsample_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from torch import nn

    corners = a["align_corners"] if a["mode"] != "nearest" else None
    return Lowered(
        nn.Upsample(scale_factor=float(a["scale"]), mode=a["mode"], align_corners=corners)
    )


def _upsample_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    s = float(a["scale"])
    scales = e.floats([1.0, 1.0, *[s] * (len(ctx.in_shapes[0]) - 1)])
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


UPSAMPLE = "upsample"  # the name other modules use (block drawings make larger maps with it)
MAXPOOL = "maxpool"  # (block drawings make a pyramid's smaller maps with it)

UPSAMPLE_OP = Op(
    name=UPSAMPLE,
    doc="upsampling by a whole factor, nearest or interpolated (linear on [C, L], bilinear "
    "on [C, H, W], trilinear on [C, T, H, W]; align_corners as PyTorch's)",
    attrs={
        "scale": Attr(kind="int", default=2, min=1, doc="the factor on every spatial side"),
        "mode": Attr(
            kind="str",
            default="nearest",
            choices=("nearest", "linear", "bilinear", "trilinear"),
        ),
        "align_corners": Attr(kind="bool", default=False, doc="interpolating modes only"),
    },
    shape=_upsample_shape,
    lower=_upsample_lower,
    onnx=_upsample_onnx,
    label=lambda a, o: f"{a['mode']} up x{a['scale']}",
    diagram="pool",
    fresh_output=True,
    side_factor=lambda a: 1 / steps(a["scale"]),
)


# ---- resize --------------------------------------------------------------------------------


def _resize_shape(a: Attrs, ins: list[Shape]) -> Shape:
    size, scale = a["size"], a["scale"]
    c, *sides = _interpolated(a, ins, "resize")
    if len(ins) == 2:  # like: the other's spatial size
        if size is not None or scale is not None:
            raise ShapeError(
                "resize like another node takes no size or scale",
                "size" if size is not None else "scale",
            )
        like = ins[1]
        if spatial_rank(like) != len(sides):
            raise ShapeError(f"resize of {_layout(ins[0])} like {_layout(like)}: one rank for both")
        return _map_shape(c, list(like[1:]))
    if size is not None and scale is not None:
        raise ShapeError("resize takes a size or a scale, not both", "scale")
    if size is None and scale is None:
        raise ShapeError("resize needs a size, a scale, or a node to take the size of (like:)")
    if size is not None:
        return _map_shape(c, _sides(size, len(sides), "size"))
    outs = [math.floor(n * scale) for n in sides]  # F.interpolate's, in double
    if min(outs) < 1:
        raise ShapeError(
            f"scale {scale:g} shrinks {_size_text(tuple(sides))} to {_size_text(tuple(outs))}",
            "scale",
        )
    return _map_shape(c, outs)


def _resize_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from torch import nn

    from ..lowering import modules

    corners = a["align_corners"] if a["mode"] != "nearest" else None
    if len(ctx.in_shapes) == 2:  # F.interpolate(x, size=like.shape[2:]), as torchvision's heads
        return Lowered(function=modules.resize_like, extra_args=(a["mode"], corners))
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


def _resize_like_onnx(a: Attrs, e: OnnxWriter) -> str:
    """Resize to the second input's spatial size, read at run time (Shape): any input size."""
    batch_channels = e.node("Slice", [e.node("Shape", [e.inputs[0]]), e.ints([0]), e.ints([2])])
    sides = e.node("Slice", [e.node("Shape", [e.inputs[1]]), e.ints([2]), e.ints([1 << 30])])
    sizes = e.node("Concat", [batch_channels, sides], axis=0)
    if a["mode"] == "nearest":  # PyTorch's nearest: floor(out_index * in / out)
        how: dict[str, Any] = {
            "mode": "nearest",
            "coordinate_transformation_mode": "asymmetric",
            "nearest_mode": "floor",
        }
    else:
        how = {
            "coordinate_transformation_mode": "align_corners"
            if a["align_corners"]
            else "half_pixel",
            **({"mode": "cubic", "cubic_coeff_a": -0.75} if a["mode"] == "bicubic" else {}),
            **({"mode": "linear"} if a["mode"] != "bicubic" else {}),
        }
    return e.node("Resize", [e.inputs[0], "", "", sizes], **how)


def _resize_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    if len(ctx.in_shapes) == 2:
        return _resize_like_onnx(a, e)
    scale = a["scale"]
    sides = list(zip(ctx.in_shapes[0][1:], ctx.out_shape[1:], strict=True))
    if a["mode"] == "nearest":  # the rows (columns, ...) torch reads, gathered side by side
        x = e.inputs[0]
        for axis, (n, out) in enumerate(sides, start=2):
            x = e.node("Gather", [x, e.ints(_nearest_rows(n, out, scale))], axis=axis)
        return x
    if a["mode"] == "bicubic" and all(n == out for n, out in sides) and not a["align_corners"]:
        # onnxruntime copies a Resize that keeps the shape; torch's bicubic still interpolates
        # by 1 / scale (a scale of 1.25 on 3 rows)
        return _matmul_resize(a, sides, e)
    # torch maps by 1 / scale when given one, else by in / out: Resize by its scale does the
    # same; its linear modes leave a side whose size does not change as it is (scale 1)
    scales = [
        1.0 if n == out and a["mode"] != "bicubic" else _onnx_scale(n, out, scale or out / n)
        for n, out in sides
    ]
    return _interpolate_node(
        e, e.inputs[0], e.floats([1.0, 1.0, *scales]), a["mode"], a["align_corners"]
    )


RESIZE_OP = Op(
    name="resize",
    doc="resizing to a size, by a scale, or to the size of a second input (like: node, "
    "F.interpolate(x, size=like.shape[2:]): any input size), as F.interpolate: nearest "
    "(PyTorch's: the row at floor(i / scale)), linear ([C, L]), bilinear or bicubic "
    "([C, H, W]), trilinear ([C, T, H, W]); align_corners as PyTorch's",
    attrs={
        "size": Attr(
            kind="size", default=None, min=1, doc="the output's n or one per side; or scale"
        ),
        "scale": Attr(
            kind="float",
            default=None,
            min=0,
            min_open=True,
            doc="the factor on every spatial side, floor(size * scale) out; or size",
        ),
        "mode": Attr(
            kind="str",
            default="nearest",
            choices=("nearest", "linear", "bilinear", "bicubic", "trilinear"),
        ),
        "align_corners": Attr(kind="bool", default=False, doc="interpolating modes only"),
    },
    shape=_resize_shape,
    lower=_resize_lower,
    onnx=_resize_onnx,
    label=lambda a, o: f"{a['mode']} resize to {_size_text(tuple(o[1:]))}",
    diagram="pool",
    inputs=(1, 2),
    fresh_output=True,
    sides_of_last=True,
    # by a scale: floor(n * scale) steps by one every 1/scale rows (a size: a constant)
    side_factor=lambda a: (
        1 / Fraction(a["scale"]).limit_denominator(1 << 16)
        if a["scale"] is not None
        else Fraction(1)
    ),
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
