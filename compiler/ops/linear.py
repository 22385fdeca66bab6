"""The fully connected layer, on a flat vector, a token sequence or a channels-last map."""

from __future__ import annotations

import math
from typing import Any

from .records import (
    _INCEPTION_STDS,
    Attr,
    Attrs,
    ChannelsLast,
    InitContext,
    LowerContext,
    Lowered,
    OnnxWriter,
    Op,
    Shape,
    ShapeError,
    _layout,
    _matmul_nodes,
    _weight_and_bias,
    bare,
    spatial_rank,
)

# ---- linear --------------------------------------------------------------------------------


def _linear_shape(a: Attrs, ins: list[Shape]) -> Shape:
    if isinstance(ins[0], ChannelsLast):  # a map, or groups of tokens: the same kind out
        return type(ins[0])((*ins[0][:-1], a["out"]))
    if spatial_rank(ins[0]) is not None:
        raise ShapeError(
            f"linear acts on the last dimension; {_layout(ins[0])} {list(ins[0])} would mix "
            "its positions",
            None,
            "flatten first (global_avgpool + flatten), or permute to channels-last "
            "(permute, dims: [0, 2, 3, 1]) inside a block",
        )
    return (*ins[0][:-1], a["out"])


def _linear_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from torch import nn

    return Lowered(bare(nn.Linear, ctx.in_shapes[0][-1], a["out"], bias=a["bias"]))


def _linear_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    weights = _weight_and_bias(a, e)
    if len(ctx.in_shapes[0]) == 1:
        return e.node("Gemm", [e.inputs[0], *weights], transB=1)
    return _matmul_nodes(e, e.inputs[0], *weights)


def _linear_macs(a: Attrs, ins: list[Shape], out: Shape) -> int:
    return math.prod(ins[0]) * a["out"]


def _init_linear(m: Any, a: Attrs, ctx: InitContext) -> None:
    """torchvision's rules, by family: 'default' (PyTorch's: ResNet, AlexNet), 'normal' (std 0.01:
    MobileNet, RegNet, VGG), 'uniform' (+-1/sqrt(out): EfficientNet), 'trunc_normal' (std 0.02:
    ConvNeXt), 'kaiming_uniform' (fan_out, gain 1: MNASNet), 'zero_bias' (PyTorch's weight:
    DenseNet), 'xavier_uniform' (bias normal, std 1e-6: ViT's MLP), 'zeros' (ViT's head),
    'trunc_normal_<std>' (GoogLeNet, Inception v3: the bias PyTorch's), 'normal_0.02' (MaxViT);
    the others zero the bias."""
    import math

    from torch import nn

    rule = a["init"]
    if rule.startswith("trunc_normal_"):  # GoogLeNet, Inception v3: the bias stays PyTorch's
        std = float(rule.rpartition("_")[2])
        if m.bias is not None:  # PyTorch's default, without filling the weight first
            bound = 1 / math.sqrt(m.in_features) if m.in_features else 0.0
            nn.init.uniform_(m.bias, -bound, bound)
        nn.init.trunc_normal_(m.weight, mean=0.0, std=std, a=-2, b=2)
        return
    if rule in ("default", "zero_bias"):
        m.reset_parameters()
    elif rule == "normal":
        nn.init.normal_(m.weight, 0.0, 0.01)
    elif rule == "normal_0.02":  # MaxViT
        nn.init.normal_(m.weight, std=0.02)
    elif rule == "uniform":
        bound = 1.0 / math.sqrt(m.out_features)
        nn.init.uniform_(m.weight, -bound, bound)
    elif rule == "kaiming_uniform":
        nn.init.kaiming_uniform_(m.weight, mode="fan_out", nonlinearity="sigmoid")
    elif rule == "xavier_uniform":  # ViT's MLP: the bias a tiny normal, not zero
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.normal_(m.bias, std=1e-6)
        return
    elif rule == "zeros":  # ViT's classifier
        nn.init.zeros_(m.weight)
    else:
        nn.init.trunc_normal_(m.weight, std=0.02)
    if m.bias is not None and rule != "default":
        nn.init.zeros_(m.bias)


LINEAR_OP = Op(
    name="linear",
    doc="fully connected layer over the last dimension: a flat [C] input, or a "
    "channels-last one inside a block (ConvNeXt's MLP)",
    attrs={
        "out": Attr(kind="int", min=1, doc="output features"),
        "bias": Attr(kind="bool", default=True),
        "init": Attr(
            kind="str",
            default="default",
            choices=(
                "default",
                "normal",
                "normal_0.02",
                "uniform",
                "trunc_normal",
                "kaiming_uniform",
                "zero_bias",
                *(f"trunc_normal_{std}" for std in _INCEPTION_STDS),
                "xavier_uniform",
                "zeros",
            ),
            doc="torchvision's rule of the family: default (ResNet, AlexNet), normal "
            "(MobileNet, RegNet, VGG), uniform (EfficientNet), trunc_normal (ConvNeXt), "
            "kaiming_uniform (MNASNet), zero_bias (DenseNet), trunc_normal_0.01 "
            "(GoogLeNet), trunc_normal_0.1 / 0.001 (Inception v3), xavier_uniform and "
            "zeros (ViT), normal_0.02 (MaxViT)",
        ),
    },
    shape=_linear_shape,
    lower=_linear_lower,
    bare=True,
    onnx=_linear_onnx,
    label=lambda a, o: f"fc {a['out']}",
    diagram="weight",
    params=lambda a, ins, o: ins[0][-1] * a["out"] + (a["out"] if a["bias"] else 0),
    macs=_linear_macs,
    init=_init_linear,
    weighted=True,
    fresh_output=True,
)


OPS_LINEAR: list[Op] = [LINEAR_OP]
