"""Normalisations and per-channel scales: batchnorm (which inference folds into the conv
before it), layernorm, layernorm2d, groupnorm, instancenorm, layer_scale, SSD's l2norm, and
GoogLeNet's transform_input."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .records import (
    Attr,
    Attrs,
    InitContext,
    LowerContext,
    Lowered,
    NotExportable,
    OnnxWriter,
    Op,
    Shape,
    ShapeError,
    _chw,
    _map,
    _size_text,
    bare,
    spatial_rank,
)

# ---- batchnorm -----------------------------------------------------------------------------


def _bn_shape(a: Attrs, ins: list[Shape]) -> Shape:
    if a["eps"] == 0 and not a["frozen"]:
        raise ShapeError(
            "eps 0 divides by zero where a channel's batch variance is 0: a BatchNorm that "
            "trains needs eps > 0",
            "eps",
            "only a frozen one may take 0 (frozen: true), as torchvision's detectors load "
            "their published weights",
        )
    if len(ins[0]) >= 3:  # a map of 2 or 3 spatial dimensions, not a channels-last one
        return _map(ins, "batchnorm")
    if len(ins[0]) < 1:
        raise ShapeError("batchnorm needs a channel dimension")
    return ins[0]


def _bn_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from torch import nn

    c = ctx.in_shapes[0][0]
    if a["frozen"]:
        from ..lowering.modules import FrozenBatchNorm

        # the dimensions after the channels (a vector's none, a sequence's one: its width)
        rank = len(ctx.in_shapes[0]) - 1
        return Lowered(bare(FrozenBatchNorm, c, eps=a["eps"], rank=rank))
    # BatchNorm1d for a vector [C], a 1-D map [C, L] (and a sequence, over its L)
    cls = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}.get(spatial_rank(ctx.in_shapes[0]) or 1)
    cls = cls or nn.BatchNorm1d
    return Lowered(bare(cls, c, eps=a["eps"], momentum=a["momentum"]))


def _bn_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    stats = [e.param(k) for k in ("weight", "bias", "running_mean", "running_var")]
    return e.node("BatchNormalization", [e.inputs[0], *stats], epsilon=a["eps"])


def _init_bn(m: Any, a: Attrs, ctx: InitContext) -> None:
    """Weight 1, bias 0, running mean 0 / var 1; weight 0 for a branch end under
    zero_init_residual (each block then starts as the identity, Goyal et al. 2017)."""
    from torch import nn

    m.reset_parameters()
    if ctx.zero_init_residual and a["zero_init"] and not a["frozen"]:
        nn.init.zeros_(m.weight)


def _bn_fold(a: Attrs, state: Callable[[str], Any]) -> tuple[Any, Any]:
    """Eval-mode BN as scale * x + shift: scale = g / sqrt(v + eps), shift = b - m * scale."""
    import torch

    scale = state("weight") / torch.sqrt(state("running_var") + a["eps"])
    return scale, state("bias") - state("running_mean") * scale


BATCHNORM_OP = Op(
    name="batchnorm",
    doc="batch normalisation over channels (affine, running statistics)",
    attrs={
        "eps": Attr(
            kind="float", default=1e-5, min=0, doc="added to the variance (0: frozen only)"
        ),
        "momentum": Attr(kind="float", default=0.1, min=0, max=1),
        "zero_init": Attr(
            kind="bool",
            default=False,
            doc="ends a residual branch: zeroed by zero_init_residual",
        ),
        "frozen": Attr(
            kind="bool",
            default=False,
            doc="statistics and affine fixed, held as buffers (torchvision's FrozenBatchNorm2d, "
            "for a pretrained detection backbone): no parameters, no num_batches_tracked",
        ),
    },
    shape=_bn_shape,
    lower=_bn_lower,
    bare=True,
    onnx=_bn_onnx,
    label=lambda a, o: "FrozenBN" if a["frozen"] else "BN",
    diagram="norm",
    params=lambda a, ins, o: 0 if a["frozen"] else 2 * ins[0][0],
    init=_init_bn,
    fold=_bn_fold,
    fresh_output=True,
)


# ---- transform_input -----------------------------------------------------------------------


# ImageNet's per-channel mean and std, as torchvision's transform_input writes them
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _transform_input_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, _, _ = _chw(ins, "transform_input")
    if c != 3:
        raise ShapeError(f"transform_input renormalises the 3 channels of an RGB image, got {c}")
    return ins[0]


def _transform_input_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering import modules

    return Lowered(function=modules.transform_input)


def _transform_input_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    # x * (std / 0.5) + (mean - 0.5) / 0.5 per channel: one float32 multiply and one add per
    # element, as in torch, so the values are the same
    scale = e.floats([s / 0.5 for s in IMAGENET_STD])
    shift = e.floats([(m - 0.5) / 0.5 for m in IMAGENET_MEAN])
    shape = e.ints([3, 1, 1])
    scaled = e.node("Mul", [e.inputs[0], e.node("Reshape", [scale, shape])])
    return e.node("Add", [scaled, e.node("Reshape", [shift, shape])])


TRANSFORM_INPUT_OP = Op(
    name="transform_input",
    doc="GoogLeNet's and Inception v3's transform_input: an ImageNet-normalised RGB "
    "input renormalised to [-1, 1] per channel, as torchvision does when it loads "
    "their original weights",
    attrs={},
    shape=_transform_input_shape,
    lower=_transform_input_lower,
    onnx=_transform_input_onnx,
    label=lambda a, o: "transform input",
    diagram="norm",
    fresh_output=True,
)


# ---- layernorm -----------------------------------------------------------------------------


# a layer norm over one value divides 0 by sqrt(eps): an eps that float32 rounds to 0 gives NaN
_LN_EPS = Attr(
    kind="float", default=1e-5, min=1.2e-38, doc="added to the variance; a float32 number"
)


def _init_default(m: Any, a: Attrs, ctx: InitContext) -> None:
    """PyTorch's own default (torchvision's ResNet leaves its linear layers so)."""
    m.reset_parameters()


def _normalised(a: Attrs, shape: Shape) -> Shape:
    """The trailing ``dims`` dimensions of ``shape`` that a layer norm normalises (and scales)."""
    n = a["dims"]
    if n > len(shape):
        raise ShapeError(
            f"dims {n}: the value {list(shape)} has {len(shape)} dimensions after the batch",
            "dims",
        )
    return tuple(shape[-n:])


def _layernorm_shape(a: Attrs, ins: list[Shape]) -> Shape:
    _normalised(a, ins[0])
    return ins[0]


def _layernorm_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from torch import nn

    shape = _normalised(a, ctx.in_shapes[0])
    # one dimension as an int, as every spec before 'dims' built it (and as torchvision writes it)
    size: int | Shape = shape[0] if len(shape) == 1 else shape
    return Lowered(bare(nn.LayerNorm, size, eps=a["eps"]))


def _layernorm_nodes(e: OnnxWriter, x: str, eps: float, dims: int = 1) -> str:
    if e.opset < 17:
        raise NotExportable("layer norm needs opset 17 (LayerNormalization) or newer")
    return e.node(
        "LayerNormalization", [x, e.param("weight"), e.param("bias")], axis=-dims, epsilon=eps
    )


LAYERNORM_OP = Op(
    name="layernorm",
    doc="layer normalisation over the last 'dims' dimensions (1, the default: the channels of "
    "a channels-last value or a sequence), affine: a weight and a bias of their shape, as "
    "nn.LayerNorm(normalized_shape)",
    attrs={
        "eps": _LN_EPS,
        "dims": Attr(
            kind="int",
            default=1,
            min=1,
            doc="how many trailing dimensions are normalised together (3: all of a [C, H, W] map)",
        ),
    },
    shape=_layernorm_shape,
    lower=_layernorm_lower,
    bare=True,
    onnx=lambda a, ctx, e: _layernorm_nodes(e, e.inputs[0], a["eps"], a["dims"]),
    label=lambda a, o: "LN" if a["dims"] == 1 else f"LN over {a['dims']} dims",
    diagram="norm",
    params=lambda a, ins, o: 2 * math.prod(_normalised(a, ins[0])),
    init=_init_default,
    fresh_output=True,
)


# ---- layernorm2d ---------------------------------------------------------------------------


def _layernorm2d_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering import modules

    return Lowered(modules.LayerNorm2d(ctx.in_shapes[0][0], eps=a["eps"]))


def _layernorm2d_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    x = e.node("Transpose", e.inputs, perm=[0, 2, 3, 1])
    return e.node("Transpose", [_layernorm_nodes(e, x, a["eps"])], perm=[0, 3, 1, 2])


LAYERNORM2D_OP = Op(
    name="layernorm2d",
    doc="layer normalisation over the channels of a [C, H, W] map, as torchvision's "
    "LayerNorm2d (permute, layer_norm, permute back: ConvNeXt)",
    attrs={"eps": _LN_EPS},
    shape=lambda a, ins: _chw(ins, "layernorm2d"),
    lower=_layernorm2d_lower,
    onnx=_layernorm2d_onnx,
    label=lambda a, o: "LN",
    diagram="norm",
    params=lambda a, ins, o: 2 * ins[0][0],
    init=_init_default,
)


# ---- groupnorm, instancenorm: statistics per sample ----------------------------------------


def _channels_first(ins: list[Shape], op: str) -> Shape:
    """A map of any rank or a [C] vector: torch's norms find the channels after the batch."""
    return ins[0] if len(ins[0]) == 1 else _map(ins, op)


def _per_channel(e: OnnxWriter, value: str, shape: Shape) -> str:
    """A [C] tensor shaped to broadcast over [N, C, H, W] (over [N, C] it does as it is)."""
    if len(shape) == 1:
        return value
    return e.node("Reshape", [value, e.ints([shape[0], *[1] * (len(shape) - 1)])])


def _affine_nodes(e: OnnxWriter, x: str, shape: Shape) -> str:
    scaled = e.node("Mul", [x, _per_channel(e, e.param("weight"), shape)])
    return e.node("Add", [scaled, _per_channel(e, e.param("bias"), shape)])


def _groupnorm_shape(a: Attrs, ins: list[Shape]) -> Shape:
    shape = _channels_first(ins, "groupnorm")
    c, g = shape[0], a["groups"]
    if c % g:
        raise ShapeError(f"groups {g} does not divide the {c} channels", "groups")
    if c // g * math.prod(shape[1:]) == 1:
        raise ShapeError(
            f"groups {g} of {list(shape)} hold one value each, which normalises to 0",
            "groups",
            "PyTorch refuses it for a batch of one sample",
        )
    return ins[0]


def _groupnorm_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from torch import nn

    c = ctx.in_shapes[0][0]
    return Lowered(bare(nn.GroupNorm, a["groups"], c, eps=a["eps"], affine=a["affine"]))


def _groupnorm_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    # GroupNormalization scales per group, not per channel, before opset 21: instead the groups
    # are the channels of an instance norm of [N, G, C / G * H * W], then the per-channel affine
    shape, g = ctx.in_shapes[0], a["groups"]
    grouped = e.node("Reshape", [e.inputs[0], e.ints([0, g, -1])])
    ones, zeros = e.floats([1.0] * g), e.floats([0.0] * g)
    normed = e.node("InstanceNormalization", [grouped, ones, zeros], epsilon=a["eps"])
    # back to the input's shape, read at run time: the file fits any input size
    out = e.node("Reshape", [normed, e.node("Shape", [e.inputs[0]])])
    return _affine_nodes(e, out, shape) if a["affine"] else out


GROUPNORM_OP = Op(
    name="groupnorm",
    doc="group normalisation (Wu & He 2018): each sample's channels in 'groups' groups, each "
    "normalised over its channels and positions, then a per-channel affine (PyTorch's "
    "GroupNorm); a [C, H, W] map or a [C] vector",
    attrs={
        "groups": Attr(kind="int", min=1, doc="divides the channels"),
        "eps": _LN_EPS,
        "affine": Attr(kind="bool", default=True, doc="a learned per-channel weight and bias"),
    },
    shape=_groupnorm_shape,
    lower=_groupnorm_lower,
    bare=True,
    onnx=_groupnorm_onnx,
    label=lambda a, o: f"GN, {a['groups']} groups",
    diagram="norm",
    params=lambda a, ins, o: 2 * ins[0][0] if a["affine"] else 0,
    init=_init_default,
    fresh_output=True,  # its backward reads the input and the statistics
)


def _instancenorm_shape(a: Attrs, ins: list[Shape]) -> Shape:
    _, *sides = _map(ins, "instancenorm")
    if math.prod(sides) == 1:
        raise ShapeError(
            f"a {_size_text(tuple(sides))} map has one value per channel, which normalises to 0",
            None,
            "PyTorch refuses it in training; normalise before the map is pooled",
        )
    return ins[0]


def _instancenorm_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from torch import nn

    c, rank = ctx.in_shapes[0][0], len(ctx.in_shapes[0]) - 1
    tracked = a["track_running_stats"]
    cls = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}[rank]
    return Lowered(bare(cls, c, eps=a["eps"], affine=a["affine"], track_running_stats=tracked))


def _instancenorm_running(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    # in eval mode with running statistics PyTorch calls batch_norm: x * alpha + beta with
    # alpha = w / sqrt(var + eps) and beta = b - mean * alpha, per channel
    shape = ctx.in_shapes[0]
    std = e.node("Sqrt", [e.node("Add", [e.param("running_var"), e.scalar(a["eps"])])])
    weight = e.param("weight") if a["affine"] else e.scalar(1.0)
    alpha = e.node("Div", [weight, std])
    shift = e.node("Mul", [e.param("running_mean"), alpha])
    beta = e.node("Sub", [e.param("bias"), shift]) if a["affine"] else e.node("Neg", [shift])
    scaled = e.node("Mul", [e.inputs[0], _per_channel(e, alpha, shape)])
    return e.node("Add", [scaled, _per_channel(e, beta, shape)])


def _instancenorm_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    if a["track_running_stats"]:
        return _instancenorm_running(a, ctx, e)
    c = ctx.in_shapes[0][0]
    scale, shift = (
        (e.param("weight"), e.param("bias"))
        if a["affine"]
        else (e.floats([1.0] * c), e.floats([0.0] * c))
    )
    return e.node("InstanceNormalization", [e.inputs[0], scale, shift], epsilon=a["eps"])


INSTANCENORM_OP = Op(
    name="instancenorm",
    doc="instance normalisation: each channel of each sample over its positions (PyTorch's "
    "InstanceNorm1d, 2d or 3d, of a map of any rank); with track_running_stats, eval mode uses "
    "running statistics instead",
    attrs={
        "eps": _LN_EPS,
        "affine": Attr(kind="bool", default=False, doc="a learned per-channel weight and bias"),
        "track_running_stats": Attr(
            kind="bool",
            default=False,
            doc="keep running mean and variance (momentum 0.1), and normalise by them in eval",
        ),
    },
    shape=_instancenorm_shape,
    lower=_instancenorm_lower,
    bare=True,
    onnx=_instancenorm_onnx,
    label=lambda a, o: "IN",
    diagram="norm",
    params=lambda a, ins, o: 2 * ins[0][0] if a["affine"] else 0,
    init=_init_default,
    fresh_output=True,  # its backward reads the input and the statistics
)


# ---- layer_scale ---------------------------------------------------------------------------


def _layer_scale_shape(a: Attrs, ins: list[Shape]) -> Shape:
    return _chw(ins, "layer_scale")


def _layer_scale_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    import operator

    import torch

    c = ctx.in_shapes[0][0]
    return Lowered(function=operator.mul, parameter=torch.full((c, 1, 1), a["value"]))


def _init_layer_scale(m: Any, a: Attrs, ctx: InitContext) -> None:
    """The constant it starts at (ConvNeXt: 1e-6)."""
    import torch

    with torch.no_grad():
        m.fill_(a["value"])


LAYER_SCALE_OP = Op(
    name="layer_scale",
    doc="multiplies by a learned per-channel scale, a bare [C, 1, 1] parameter of the "
    "block under the node's name (ConvNeXt's layer_scale)",
    attrs={"value": Attr(kind="float", default=1e-6, doc="the scale it starts at")},
    shape=_layer_scale_shape,
    lower=_layer_scale_lower,
    onnx=lambda a, ctx, e: e.node("Mul", [e.param(""), e.inputs[0]]),
    label=lambda a, o: "layer scale",
    diagram="norm",
    params=lambda a, ins, o: ins[0][0],
    init=_init_layer_scale,
    fresh_output=True,
)


# ---- l2norm --------------------------------------------------------------------------------


def _l2norm_shape(a: Attrs, ins: list[Shape]) -> Shape:
    _chw(ins, "l2norm")
    return ins[0]


def _l2norm_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    import torch

    from ..lowering import modules

    c = ctx.in_shapes[0][0]
    return Lowered(function=modules.scaled_l2_normalize, parameter=torch.full((c,), a["scale"]))


def _init_l2norm(m: Any, a: Attrs, ctx: InitContext) -> None:
    """The scale it starts at (SSD: 20)."""
    import torch

    with torch.no_grad():
        m.fill_(a["scale"])


def _l2norm_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    x = e.inputs[0]
    if e.opset >= 18:  # (ReduceL2 takes its axes as an input from opset 18 on)
        norm = e.node("ReduceL2", [x, e.ints([1])], keepdims=1)
    else:
        norm = e.node("ReduceL2", [x], axes=[1], keepdims=1)
    unit = e.node("Div", [x, e.node("Max", [norm, e.scalar(1e-12)])])
    scale = e.node("Reshape", [e.param(""), e.ints([1, -1, 1, 1])])
    return e.node("Mul", [scale, unit])


L2NORM_OP = Op(
    name="l2norm",
    doc="each position's channel vector scaled to unit length (F.normalize), then by a learned "
    "per-channel weight, a bare [C] parameter under the node's name starting at 'scale' "
    "(SSD's L2Norm on conv4_3: torchvision's scale_weight; Liu et al. 2016)",
    attrs={"scale": Attr(kind="float", default=20.0, doc="the weight it starts at")},
    shape=_l2norm_shape,
    lower=_l2norm_lower,
    onnx=_l2norm_onnx,
    label=lambda a, o: "L2 norm",
    diagram="norm",
    params=lambda a, ins, o: ins[0][0],
    init=_init_l2norm,
)


OPS_NORM: list[Op] = [
    BATCHNORM_OP,
    TRANSFORM_INPUT_OP,
    LAYERNORM_OP,
    LAYERNORM2D_OP,
    LAYER_SCALE_OP,
    GROUPNORM_OP,
    INSTANCENORM_OP,
    L2NORM_OP,
]
