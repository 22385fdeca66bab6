"""Convolutions: conv, and the transposed conv (conv_transpose), which shares its
initialisation rule and parameter count."""

from __future__ import annotations

import math
from typing import Any

from .records import (
    _INCEPTION_STDS,
    PADDING_WORDS,
    Attr,
    Attrs,
    InitContext,
    LowerContext,
    Lowered,
    OnnxWriter,
    Op,
    Pads,
    Shape,
    ShapeError,
    _map,
    _map_shape,
    _sides,
    _size_text,
    _torch_pads,
    _weight_and_bias,
    _word_pads,
    bare,
    spatial_rank,
    steps,
)

# ---- conv ----------------------------------------------------------------------------------


def _conv_pads(a: Attrs, sizes: tuple[int, ...]) -> Pads:
    """The conv's padding of a map of these spatial sizes: the attribute's numbers, a word's
    rule, or dilation * (kernel - 1) // 2 (null)."""
    rank, padding, d = len(sizes), a["padding"], a["dilation"]
    kernel = _sides(a["kernel"], rank, "kernel")
    if isinstance(padding, str):
        return _word_pads(padding, sizes, kernel, _sides(a["stride"], rank, "stride"), d)
    each = (
        _sides(padding, rank, "padding")
        if padding is not None
        else tuple((k - 1) // 2 * d for k in kernel)
    )
    return each + each


def _mode_error(mode: str, pads: Pads, sizes: tuple[int, ...]) -> ShapeError | None:
    """torch's limits on a padding mode: a reflection pads less than the side it reflects (it
    never repeats the edge), a circular padding wraps around at most once."""
    if mode not in ("reflect", "circular"):
        return None
    rank = len(sizes)
    for i, side in enumerate(sizes):
        pad = max(pads[i], pads[rank + i])
        if pad >= side if mode == "reflect" else pad > side:
            need = f"more than {pad}" if mode == "reflect" else f"at least {pad}"
            return ShapeError(
                f"{mode} padding of {pad} needs a side of {need}, the input is {_size_text(sizes)}",
                "padding_mode",
            )
    return None


def _rank(ins: list[Shape]) -> int:
    """The spatial rank of a conv's input (its rules run after the shape rule accepted it)."""
    return spatial_rank(ins[0]) or 2


def _conv_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, *sides = _map(ins, "conv")
    sizes = tuple(sides)
    g = a["groups"]
    if c % g:
        raise ShapeError(f"groups {g} does not divide the {c} input channels", "groups")
    if a["out"] % g:
        raise ShapeError(f"groups {g} does not divide the {a['out']} output channels", "groups")
    rank, d = len(sizes), a["dilation"]
    kernel, stride = _sides(a["kernel"], rank, "kernel"), _sides(a["stride"], rank, "stride")
    pads = _conv_pads(a, sizes)
    if problem := _mode_error(a["padding_mode"], pads, sizes):
        raise problem
    padded = tuple(n + pads[i] + pads[rank + i] for i, n in enumerate(sizes))
    outs = tuple(
        (n - d * (k - 1) - 1) // s + 1 for n, k, s in zip(padded, kernel, stride, strict=True)
    )
    if min(outs) < 1:  # whatever the stride: the (dilated) kernel outgrows the padded input
        shown = a["stride"] if isinstance(a["stride"], int) else list(a["stride"])
        strided = f" with stride {shown}" if max(stride) > 1 else ""
        raise ShapeError(
            f"{_size_text(a['kernel'], rank)} conv{strided} shrinks {_size_text(sizes)} to "
            f"{_size_text(outs)}",
            "kernel",
            f"the kernel must fit the {_size_text(padded)} padded input: the input is too "
            "small for this many downsamplings, or the kernel too large",
        )
    return _map_shape(a["out"], outs)


def _conv_params(a: Attrs, ins: list[Shape], out: Shape) -> int:
    kernel = _sides(a["kernel"], _rank(ins), "kernel")
    weight = a["out"] * ins[0][0] // a["groups"] * math.prod(kernel)
    return weight + (a["out"] if a["bias"] else 0)


def _conv_macs(a: Attrs, ins: list[Shape], out: Shape) -> int:
    kernel = _sides(a["kernel"], _rank(ins), "kernel")
    return math.prod(out) * ins[0][0] // a["groups"] * math.prod(kernel)


def _conv_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from torch import nn

    from ..lowering import modules

    c, *sides = ctx.in_shapes[0]
    rank = len(sides)
    pads = _conv_pads(a, tuple(sides))
    common = {
        "stride": a["stride"],
        "dilation": a["dilation"],
        "groups": a["groups"],
        "bias": a["bias"],
        "padding_mode": a["padding_mode"],
    }
    # a word's padding as numbers, not torch's padding='same': torch's exporters write that as
    # auto_pad SAME_UPPER, which onnxruntime refuses with a dilation
    if pads[:rank] != pads[rank:]:  # one more after than before: nn.Conv2d's padding cannot
        padded = {1: modules.PaddedConv1d, 2: modules.PaddedConv2d, 3: modules.PaddedConv3d}
        layer = bare(padded[rank], c, a["out"], a["kernel"], pads=_torch_pads(pads), **common)
        return Lowered(layer)
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[rank]
    return Lowered(bare(conv, c, a["out"], a["kernel"], padding=pads[:rank], **common))


# F.pad's modes as ONNX's Pad names them; circular is slices joined on (Pad's 'wrap' is opset 19)
_ONNX_PAD_MODES = {"reflect": "reflect", "replicate": "edge"}


def _pad_nodes(e: OnnxWriter, x: str, pads: Pads, mode: str, sizes: tuple[int, ...]) -> str:
    """``x`` padded as ``F.pad(x, pads, mode)``."""
    rank = len(sizes)
    if mode != "circular":
        zeros = [0, 0]  # the batch and the channels
        both = [*zeros, *pads[:rank], *zeros, *pads[rank:]]
        return e.node("Pad", [x, e.ints(both)], mode=_ONNX_PAD_MODES[mode])
    # the far rows (then columns) before, the near ones after: F.pad's circular padding
    for i, size in enumerate(sizes):
        axis, before, after = i + 2, pads[i], pads[rank + i]
        parts = [x]
        if before:
            parts.insert(
                0, e.node("Slice", [x, e.ints([size - before]), e.ints([size]), e.ints([axis])])
            )
        if after:
            parts.append(e.node("Slice", [x, e.ints([0]), e.ints([after]), e.ints([axis])]))
        x = e.node("Concat", parts, axis=axis) if len(parts) > 1 else x
    return x


def _conv_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    sizes = tuple(ctx.in_shapes[0][1:])
    rank, d, pads, x = len(sizes), a["dilation"], _conv_pads(a, sizes), e.inputs[0]
    if a["padding_mode"] != "zeros" and any(pads):  # Conv's own pads are zeros
        x, pads = _pad_nodes(e, x, pads, a["padding_mode"], sizes), (0,) * (2 * rank)
    return e.node(
        "Conv",
        [x, *_weight_and_bias(a, e)],
        kernel_shape=list(_sides(a["kernel"], rank, "kernel")),
        strides=list(_sides(a["stride"], rank, "stride")),
        pads=list(pads),  # ONNX's may differ before and after: TensorFlow's SAME is exact
        dilations=[d] * rank,
        group=a["groups"],
    )


def _stride_text(stride: int | tuple[int, ...]) -> str:
    """', /2' for a stride; ', /1x2x2' for one that differs by side; '' for none."""
    if isinstance(stride, int):
        return f", /{stride}" if stride > 1 else ""
    return f", /{_size_text(stride)}" if max(stride) > 1 else ""


def _conv_label(a: Attrs, out: Shape) -> str:
    rank = spatial_rank(out) or 2
    extra = _stride_text(a["stride"])
    extra += f", g{a['groups']}" if a["groups"] > 1 else ""
    extra += f", d{a['dilation']}" if a["dilation"] > 1 else ""
    extra += f", {a['padding']}" if isinstance(a["padding"], str) else ""
    extra += f", {a['padding_mode']}" if a["padding_mode"] != "zeros" else ""
    return f"{_size_text(a['kernel'], rank)} conv, {a['out']}{extra}"


def _init_conv(m: Any, a: Attrs, ctx: InitContext) -> None:
    """torchvision's rules, by family: 'kaiming' normal (fan_out, relu) with the bias at PyTorch's
    default (ResNet, RegNet); 'kaiming_zero_bias' (MobileNet, EfficientNet, VGG, MNASNet);
    'kaiming_fan_in' (normal, fan_in: DenseNet); 'kaiming_uniform' (fan_in, zero bias:
    SqueezeNet); 'normal' (std 0.01, zero bias: SqueezeNet's last conv); 'normal_0.02' (zero
    bias: MaxViT); 'trunc_normal' (std 0.02, zero bias: ConvNeXt); 'trunc_normal_<std>'
    (truncated at +-2, the bias PyTorch's: GoogLeNet, Inception v3); 'lecun_trunc_normal' (std
    sqrt(1 / fan_in), zero bias: ViT's patch embedding); 'default' (PyTorch's own: AlexNet,
    ShuffleNet)."""
    from torch import nn

    rule = a["init"]
    if rule == "default":
        m.reset_parameters()
        return
    std = float(rule.rpartition("_")[2]) if rule.startswith("trunc_normal_") else 0.0
    if m.bias is not None and (std or rule == "kaiming"):
        # PyTorch's default bias, uniform in +-1 / sqrt(fan_in), without filling the weight
        fan_in = m.weight[0].numel()
        bound = 1 / fan_in**0.5 if fan_in else 0.0
        nn.init.uniform_(m.bias, -bound, bound)
    if std:  # GoogLeNet, Inception v3: the bias stays PyTorch's
        nn.init.trunc_normal_(m.weight, mean=0.0, std=std, a=-2, b=2)
        return
    if rule == "trunc_normal":
        nn.init.trunc_normal_(m.weight, std=0.02)
    elif rule == "lecun_trunc_normal":  # ViT's patch embedding: std sqrt(1 / fan_in)
        fan_in = m.weight[0].numel()  # in_channels / groups * the kernel
        nn.init.trunc_normal_(m.weight, std=(1 / fan_in) ** 0.5)
    elif rule == "normal":
        nn.init.normal_(m.weight, 0.0, 0.01)
    elif rule == "normal_0.03":  # SSDLite's extra layers and heads
        nn.init.normal_(m.weight, 0.0, 0.03)
    elif rule == "normal_0.02":  # MaxViT
        nn.init.normal_(m.weight, std=0.02)
    elif rule == "kaiming_uniform":
        nn.init.kaiming_uniform_(m.weight)
    elif rule == "kaiming_uniform_a1":  # torchvision's FPN and its extra levels
        nn.init.kaiming_uniform_(m.weight, a=1)
    elif rule.startswith("yolo_"):  # ultralytics' Detect.bias_init, weights PyTorch's default
        import math  # (here: `netc emit` copies this rule alone)

        m.reset_parameters()
        if m.bias is not None:
            # boxes 2.0; classes log(5 / nc / cells at 640): 0.01 objects per image, 80 classes
            if rule == "yolo_box":
                nn.init.constant_(m.bias, 2.0)
            else:
                cells = (640 / float(rule.rpartition("_")[2])) ** 2
                nn.init.constant_(m.bias, math.log(5 / m.out_channels / cells))
        return
    elif rule == "xavier":  # SSD's extra layers and heads
        nn.init.xavier_uniform_(m.weight)
    elif rule == "glorot_grouped":  # effdet's BiFPN: xavier with fan_out / groups
        fan_in = m.weight[0].numel()
        fan_out = m.weight.shape[0] * m.weight[0, 0].numel() // m.groups
        limit = (3.0 / max(1.0, (fan_in + fan_out) / 2.0)) ** 0.5
        nn.init.uniform_(m.weight, -limit, limit)
    elif rule.startswith("variance_scaling"):  # effdet's heads: normal, std sqrt(1 / fan_in)
        nn.init.normal_(m.weight, std=(1.0 / max(1.0, m.weight[0].numel())) ** 0.5)
        if m.bias is not None and rule == "variance_scaling_prior":
            nn.init.constant_(m.bias, -4.59511985013459)  # -log(99): classes start at p = 0.01
            return
    elif rule == "normal_prior":  # RetinaNet's classifier: every class starts at p = 0.01
        nn.init.normal_(m.weight, 0.0, 0.01)
        if m.bias is not None:
            # -log((1 - p) / p) for p = 0.01, torchvision's value (a literal: `netc emit`
            # copies this rule alone)
            nn.init.constant_(m.bias, -4.59511985013459)
        return
    elif rule == "kaiming_fan_in":
        nn.init.kaiming_normal_(m.weight)
    else:
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    if m.bias is not None and rule != "kaiming":
        nn.init.zeros_(m.bias)


CONV_OP = Op(
    name="conv",
    doc="convolution of a [C, L], [C, H, W] or [C, T, H, W] map; padding defaults to "
    "dilation * (kernel - 1) // 2, or by rule: 'same' (PyTorch's, stride 1) or 'same_upper' "
    "(TensorFlow's SAME, any stride)",
    attrs={
        "out": Attr(kind="int", min=1, doc="output channels"),
        "kernel": Attr(
            kind="size", min=1, doc="kernel size: n (every side) or one per side, [h, w]"
        ),
        "stride": Attr(kind="size", default=1, min=1, doc="n or one per side, [t, h, w]"),
        "padding": Attr(
            kind="padding",
            default=None,
            min=0,
            choices=PADDING_WORDS,
            doc="n or one per side; same: PyTorch's padding='same' (stride 1: the size kept); "
            "same_upper: TensorFlow's SAME (ceil(size / stride) out); both pad an odd total "
            "one more at the bottom and right; null: dilation * (kernel - 1) // 2",
        ),
        "padding_mode": Attr(
            kind="str",
            default="zeros",
            choices=("zeros", "reflect", "replicate", "circular"),
            doc="what the padding holds, as torch's convs' padding_mode",
        ),
        "dilation": Attr(kind="int", default=1, min=1),
        "groups": Attr(kind="int", default=1, min=1, doc="divides both channel counts"),
        "bias": Attr(kind="bool", default=False),
        "init": Attr(
            kind="str",
            default="kaiming",
            choices=(
                "kaiming",
                "kaiming_zero_bias",
                "kaiming_fan_in",
                "kaiming_uniform",
                "kaiming_uniform_a1",
                "normal",
                "normal_prior",
                "xavier",
                "glorot_grouped",
                "variance_scaling",
                "variance_scaling_prior",
                "yolo_box",
                *(f"yolo_cls_{stride}" for stride in (8, 16, 32, 64)),
                "normal_0.02",
                "normal_0.03",
                "trunc_normal",
                *(f"trunc_normal_{std}" for std in _INCEPTION_STDS),
                "lecun_trunc_normal",
                "default",
            ),
            doc="torchvision's rule of the family: kaiming (ResNet, RegNet), "
            "kaiming_zero_bias (MobileNet, EfficientNet, VGG, MNASNet), kaiming_fan_in "
            "(DenseNet), kaiming_uniform and normal (SqueezeNet), kaiming_uniform_a1 (zero "
            "bias: torchvision's FPN), normal_prior (std 0.01, the bias -log(99): RetinaNet's "
            "classifier starts every class at probability 0.01), xavier (uniform, zero bias: "
            "SSD), glorot_grouped (xavier with fan_out / groups, zero bias: effdet's BiFPN), "
            "variance_scaling and variance_scaling_prior (normal, std sqrt(1 / fan_in), the bias "
            "0 or -log(99): effdet's heads), yolo_box and yolo_cls_<stride> "
            "(PyTorch's weights, ultralytics' Detect biases: 2.0, and log(5 / classes / cells "
            "at 640)), trunc_normal "
            "(ConvNeXt), default (PyTorch's: AlexNet, ShuffleNet), trunc_normal_0.01 "
            "(GoogLeNet), trunc_normal_0.1 (Inception v3), lecun_trunc_normal (ViT), "
            "normal_0.02 (MaxViT), normal_0.03 (zero bias: SSDLite)",
        ),
    },
    shape=_conv_shape,
    lower=_conv_lower,
    bare=True,
    onnx=_conv_onnx,
    label=_conv_label,
    side_factor=lambda a: steps(a["stride"]),
    # a word's pads depend on the size (TensorFlow's SAME with a stride): the module fits one
    built_for=lambda a, ins: (
        _conv_pads(a, tuple(ins[0][1:])) if isinstance(a["padding"], str) else None
    ),
    diagram="weight",
    params=_conv_params,
    macs=_conv_macs,
    init=_init_conv,
    absorbs=lambda a: {**a, "bias": True},
    weighted=True,
    fresh_output=True,
)


# ---- conv_transpose ------------------------------------------------------------------------


def _tconv_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, *sides = _map(ins, "conv_transpose")
    g, k, s, p = a["groups"], a["kernel"], a["stride"], a["padding"]
    if c % g or a["out"] % g:
        raise ShapeError(f"groups {g} does not divide {c} in and {a['out']} out channels", "groups")
    outs = tuple((n - 1) * s - 2 * p + k for n in sides)
    if min(outs) < 1:
        raise ShapeError(
            f"padding {p} leaves {_size_text(outs)} of {_size_text(tuple(sides))}", "padding"
        )
    return _map_shape(a["out"], outs)


def _tconv_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from torch import nn

    rank = _rank(ctx.in_shapes)
    layer = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[rank]
    return Lowered(
        bare(
            layer,
            ctx.in_shapes[0][0],
            a["out"],
            a["kernel"],
            stride=a["stride"],
            padding=a["padding"],
            groups=a["groups"],
            bias=a["bias"],
        )
    )


def _tconv_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    k, s, p, rank = a["kernel"], a["stride"], a["padding"], _rank(ctx.in_shapes)
    return e.node(
        "ConvTranspose",
        [e.inputs[0], *_weight_and_bias(a, e)],
        kernel_shape=[k] * rank,
        strides=[s] * rank,
        pads=[p] * (2 * rank),
        group=a["groups"],
    )


def _tconv_macs(a: Attrs, ins: list[Shape], out: Shape) -> int:
    # every input position scatters its kernel: PyTorch's FlopCounterMode counts the same
    return math.prod(ins[0]) * a["out"] // a["groups"] * a["kernel"] ** _rank(ins)


CONV_TRANSPOSE_OP = Op(
    name="conv_transpose",
    doc="transposed convolution of a map of any rank, "
    "out = (in - 1) * stride - 2 * padding + kernel (the U-Net's 2x2 up-convolution)",
    attrs={
        "out": Attr(kind="int", min=1, doc="output channels"),
        "kernel": Attr(kind="int", min=1, doc="kernel size, the same on every side"),
        "stride": Attr(kind="int", default=1, min=1),
        "padding": Attr(kind="int", default=0, min=0),
        "groups": Attr(kind="int", default=1, min=1, doc="divides both channel counts"),
        "bias": Attr(kind="bool", default=True),
        "init": Attr(
            kind="str",
            default="default",
            choices=("default", "kaiming_fan_in"),
            doc="default (PyTorch's) or kaiming_fan_in (the U-Net paper's sqrt(2/N))",
        ),
    },
    shape=_tconv_shape,
    lower=_tconv_lower,
    bare=True,
    onnx=_tconv_onnx,
    side_factor=lambda a: 1 / steps(a["stride"]),
    label=lambda a, o: (
        f"{_size_text(a['kernel'], spatial_rank(o) or 2)} up-conv, {a['out']}, x{a['stride']}"
    ),
    diagram="weight",
    params=_conv_params,  # [in, out / groups, k, k] holds as many as a conv's
    macs=_tconv_macs,
    init=_init_conv,
    weighted=True,
    fresh_output=True,
)


OPS_CONV: list[Op] = [CONV_OP, CONV_TRANSPOSE_OP]
