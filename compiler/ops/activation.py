"""Element-wise activations, the ops that pass their input through in inference
(stochastic_depth, identity, dropout), and element-wise arithmetic of one input (neg, abs, clamp,
scale)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .records import (
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
    _module,
    _nn,
    _same,
    _unary,
    bare,
    dropout_attrs,
    spatial_rank,
)

# ---- relu ----------------------------------------------------------------------------------


_INPLACE = Attr(
    kind="bool",
    default=True,
    doc="overwrite the input where no other node reads it; false keeps a separate output "
    "(torchvision's squeeze-excitation activations)",
)


RELU_OP = Op(
    name="relu",
    doc="rectified linear unit (in place where no other node reads its input)",
    attrs={"inplace": _INPLACE},
    shape=_same,
    lower=_module(lambda a, ctx: _nn("ReLU", inplace=a["inplace"] and ctx.inplace_ok)),
    onnx=_unary("Relu"),
    label=lambda a, o: "ReLU",
    diagram="activation",
    overwrites=lambda a, n: bool(a["inplace"]),
)


# ---- relu6, hardswish, hardsigmoid, silu, gelu: torch.nn activations -----------------------


def _activation(
    name: str,
    doc: str,
    module: str,
    *,
    onnx: Callable[[Attrs, LowerContext, OnnxWriter], str],
    label: str,
    inplace: bool = False,
) -> Op:
    """An activation: a torch.nn module (in place, where the module can be and no other node
    reads its input), written to ONNX by ``onnx``."""

    def lower(a: Attrs, ctx: LowerContext) -> Lowered:
        in_place = inplace and a["inplace"] and ctx.inplace_ok
        return Lowered(_nn(module, inplace=True) if in_place else _nn(module))

    return Op(
        name=name,
        doc=doc,
        attrs={"inplace": _INPLACE} if inplace else {},
        shape=_same,
        lower=lower,
        onnx=onnx,
        label=lambda a, o: label,
        diagram="activation",
        # PyTorch's backward of these reads the input, not the output (ReLU's and sigmoid's
        # read the output): the next op may overwrite it, as torchvision's `result += input`
        fresh_output=True,
        overwrites=(lambda a, n: bool(a["inplace"])) if inplace else None,
    )


def _relu6_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    return e.node("Clip", [e.inputs[0], e.scalar(0.0), e.scalar(6.0)])


RELU6_OP = _activation(
    "relu6",
    "min(max(x, 0), 6) (MobileNetV2)",
    "ReLU6",
    inplace=True,
    onnx=_relu6_onnx,
    label="ReLU6",
)


def _hardswish_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    # HardSwish is opset 14; x * HardSigmoid(x) is the same function from opset 6 on
    gate = e.node("HardSigmoid", e.inputs, alpha=1 / 6, beta=0.5)
    return e.node("Mul", [e.inputs[0], gate])


HARDSWISH_OP = _activation(
    "hardswish",
    "x * relu6(x + 3) / 6 (MobileNetV3)",
    "Hardswish",
    inplace=True,
    onnx=_hardswish_onnx,
    label="h-swish",
)


def _hsig_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    return e.node("HardSigmoid", e.inputs, alpha=1 / 6, beta=0.5)


HARDSIGMOID_OP = _activation(
    "hardsigmoid",
    "relu6(x + 3) / 6 (MobileNetV3's gates)",
    "Hardsigmoid",
    onnx=_hsig_onnx,
    label="h-sigmoid",
)


def _silu(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    return e.node("Mul", [e.inputs[0], e.node("Sigmoid", e.inputs)])


SILU_OP = _activation(
    "silu",
    "x * sigmoid(x), a.k.a. swish (EfficientNet)",
    "SiLU",
    inplace=True,
    onnx=_silu,
    label="SiLU",
)


def _gelu_erf(x: str, e: OnnxWriter) -> str:
    # ONNX's Gelu is opset 20: 0.5 * x * (1 + erf(x / sqrt(2))), as torch computes it
    erf = e.node("Erf", [e.node("Div", [x, e.scalar(math.sqrt(2.0))])])
    half_x = e.node("Mul", [x, e.scalar(0.5)])
    return e.node("Mul", [half_x, e.node("Add", [erf, e.scalar(1.0)])])


def _gelu_tanh(x: str, e: OnnxWriter) -> str:
    # 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))), torch's approximate='tanh'
    cube = e.node("Mul", [e.node("Mul", [x, x]), x])
    inner = e.node("Add", [x, e.node("Mul", [cube, e.scalar(0.044715)])])
    tanh = e.node("Tanh", [e.node("Mul", [inner, e.scalar(math.sqrt(2.0 / math.pi))])])
    half_x = e.node("Mul", [x, e.scalar(0.5)])
    return e.node("Mul", [half_x, e.node("Add", [tanh, e.scalar(1.0)])])


def _gelu(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    return (_gelu_tanh if a["approximate"] == "tanh" else _gelu_erf)(e.inputs[0], e)


GELU_OP = Op(
    name="gelu",
    doc="x * Phi(x), the exact (erf) form (ConvNeXt, ViT); approximate: tanh is PyTorch's "
    "tanh approximation (GPT-2)",
    attrs={
        "approximate": Attr(
            kind="str",
            default="none",
            choices=("none", "tanh"),
            doc="'none': the erf form; 'tanh': the tanh approximation",
        )
    },
    shape=_same,
    lower=_module(lambda a, ctx: _nn("GELU", approximate=a["approximate"])),
    onnx=_gelu,
    label=lambda a, o: "GELU" if a["approximate"] == "none" else "GELU (tanh)",
    diagram="activation",
    fresh_output=True,  # its backward reads the input
)


# ---- leaky_relu ----------------------------------------------------------------------------


def _leaky_in_place(a: Attrs) -> bool:
    # in place, PyTorch's backward reads the output, which it cannot do for a slope <= 0
    return bool(a["inplace"]) and a["negative_slope"] > 0


def _leaky_relu_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    in_place = _leaky_in_place(a) and ctx.inplace_ok
    return Lowered(_nn("LeakyReLU", a["negative_slope"], inplace=in_place))


LEAKY_RELU_OP = Op(
    name="leaky_relu",
    doc="x for x >= 0, negative_slope * x below (in place as relu, where the slope is positive)",
    attrs={
        "negative_slope": Attr(kind="float", default=0.01, doc="the slope below 0"),
        "inplace": _INPLACE,
    },
    shape=_same,
    lower=_leaky_relu_lower,
    onnx=lambda a, ctx, e: e.node("LeakyRelu", e.inputs, alpha=a["negative_slope"]),
    label=lambda a, o: f"LeakyReLU {a['negative_slope']:g}",
    diagram="activation",
    overwrites=lambda a, n: _leaky_in_place(a),
)


# ---- prelu ---------------------------------------------------------------------------------


def _prelu_slopes(a: Attrs, shape: Shape) -> int:
    """One slope, or one per channel: torch's PReLU takes the dimension after the batch."""
    return shape[0] if a["per_channel"] else 1


def _prelu_shape(a: Attrs, ins: list[Shape]) -> Shape:
    shape = ins[0]
    if a["per_channel"] and len(shape) != 1 and spatial_rank(shape) is None:
        what = (
            _layout(shape)
            if isinstance(shape, ChannelsLast)
            else f"a value of {len(shape)} dimensions"
        )
        raise ShapeError(
            f"per_channel needs a channels-first map or a [C] vector (PyTorch's channels "
            f"follow the batch), got {what} {list(shape)}",
            "per_channel",
            "one slope for all (per_channel: false) fits any value",
        )
    return shape


def _prelu_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from torch import nn

    return Lowered(bare(nn.PReLU, num_parameters=_prelu_slopes(a, ctx.in_shapes[0])))


def _prelu_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    slope, shape = e.param("weight"), ctx.in_shapes[0]
    if a["per_channel"] and len(shape) > 1:  # ONNX broadcasts from the last dimension
        slope = e.node("Reshape", [slope, e.ints([shape[0], *[1] * (len(shape) - 1)])])
    return e.node("PRelu", [e.inputs[0], slope])


def _init_prelu(m: Any, a: Attrs, ctx: InitContext) -> None:
    """Every slope 0.25, as PyTorch's PReLU."""
    m.reset_parameters()


PRELU_OP = Op(
    name="prelu",
    doc="leaky ReLU with a learned slope below 0, starting at 0.25 (PyTorch's PReLU): one "
    "slope, or one per channel of a [C, H, W] map or a [C] vector",
    attrs={
        "per_channel": Attr(
            kind="bool", default=False, doc="one slope per channel (num_parameters C), not one"
        )
    },
    shape=_prelu_shape,
    lower=_prelu_lower,
    bare=True,
    onnx=_prelu_onnx,
    label=lambda a, o: "PReLU",
    diagram="activation",
    params=lambda a, ins, o: _prelu_slopes(a, ins[0]),
    init=_init_prelu,
    fresh_output=True,  # its backward reads the input and the slopes
)


# ---- elu, selu, mish -----------------------------------------------------------------------


ELU_OP = Op(
    name="elu",
    doc="x for x > 0, alpha * (exp(x) - 1) below",
    attrs={"alpha": Attr(kind="float", default=1.0, doc="far below 0 it tends to -alpha")},
    shape=_same,
    lower=_module(lambda a, ctx: _nn("ELU", a["alpha"])),
    onnx=lambda a, ctx, e: e.node("Elu", e.inputs, alpha=a["alpha"]),
    label=lambda a, o: "ELU",
    diagram="activation",
    fresh_output=True,  # its backward reads the input (out of place)
)


SELU_OP = _activation(
    "selu",
    "scale * elu(x, alpha) with the self-normalising constants (Klambauer et al. 2017)",
    "SELU",
    onnx=_unary("Selu"),  # ONNX's default alpha and gamma are torch's, in float32
    label="SELU",
)


def _mish(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    if e.opset >= 18:
        return e.node("Mish", e.inputs)
    x = e.inputs[0]
    return e.node("Mul", [x, e.node("Tanh", [e.node("Softplus", [x])])])


MISH_OP = _activation("mish", "x * tanh(softplus(x)) (YOLOv4)", "Mish", onnx=_mish, label="Mish")


# ---- softplus ------------------------------------------------------------------------------


def _softplus_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    # torch: x where beta * x > threshold, else log(1 + exp(beta * x)) / beta
    x, beta = e.inputs[0], a["beta"]
    bx = x if beta == 1 else e.node("Mul", [x, e.scalar(beta)])
    soft = e.node("Softplus", [bx])
    if beta != 1:
        soft = e.node("Div", [soft, e.scalar(beta)])
    linear = e.node("Greater", [bx, e.scalar(a["threshold"])])
    return e.node("Where", [linear, x, soft])


SOFTPLUS_OP = Op(
    name="softplus",
    doc="log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold (PyTorch's "
    "Softplus)",
    attrs={
        "beta": Attr(kind="float", default=1.0, min=0, min_open=True, doc="larger: closer to relu"),
        "threshold": Attr(
            kind="float", default=20.0, doc="above it (times beta) the op is the identity"
        ),
    },
    shape=_same,
    lower=_module(lambda a, ctx: _nn("Softplus", a["beta"], a["threshold"])),
    onnx=_softplus_onnx,
    label=lambda a, o: "Softplus",
    diagram="activation",
    fresh_output=True,  # its backward reads the input
)


# ---- hardtanh ------------------------------------------------------------------------------


def _hardtanh_shape(a: Attrs, ins: list[Shape]) -> Shape:
    low, high = a["min_val"], a["max_val"]
    if not low < high:  # PyTorch asserts it when the module is made
        raise ShapeError(f"min_val {low:g} must be below max_val {high:g}", "max_val")
    return ins[0]


HARDTANH_OP = Op(
    name="hardtanh",
    doc="x clipped to [min_val, max_val] (PyTorch's Hardtanh); min_val below max_val",
    attrs={
        "min_val": Attr(kind="float", default=-1.0, doc="the lower bound; below max_val"),
        "max_val": Attr(kind="float", default=1.0, doc="the upper bound"),
    },
    shape=_hardtanh_shape,
    lower=_module(lambda a, ctx: _nn("Hardtanh", a["min_val"], a["max_val"])),
    onnx=lambda a, ctx, e: e.node(
        "Clip", [e.inputs[0], e.scalar(a["min_val"]), e.scalar(a["max_val"])]
    ),
    label=lambda a, o: f"hardtanh [{a['min_val']:g}, {a['max_val']:g}]",
    diagram="activation",
    fresh_output=True,  # its backward reads the input
)


# ---- sigmoid, tanh: parameter-free modules (as identity below) -----------------------------


def _elementwise(name: str, doc: str, module: str, onnx_type: str, view: bool = False) -> Op:
    """A parameter-free element-wise op: a torch.nn module of no arguments, one ONNX node."""
    return Op(
        view=view,
        name=name,
        doc=doc,
        attrs={},
        shape=_same,
        lower=_module(lambda a, ctx: _nn(module)),
        onnx=_unary(onnx_type),
        label=lambda a, o: name,
        diagram="activation",
    )


SIGMOID_OP = _elementwise("sigmoid", "logistic sigmoid", "Sigmoid", "Sigmoid")


TANH_OP = _elementwise("tanh", "hyperbolic tangent (MaxViT's classifier)", "Tanh", "Tanh")


# ---- stochastic_depth ----------------------------------------------------------------------


def _stochastic_depth_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering import modules

    return Lowered(modules.StochasticDepth(a["p"], a["mode"]))


STOCHASTIC_DEPTH_OP = Op(
    name="stochastic_depth",
    doc="drops the whole branch for a random share p of the samples in training "
    "('row'; 'batch': for the whole batch), as torchvision's StochasticDepth",
    attrs={
        "p": Attr(kind="float", min=0, max=1, doc="drop probability"),
        "mode": Attr(kind="str", default="row", choices=("row", "batch")),
    },
    shape=_same,
    lower=_stochastic_depth_lower,
    onnx=_unary("Identity"),  # exported for inference, where it passes through
    label=lambda a, o: f"stochastic depth {a['p']:.3g}",
    diagram="activation",
    view=True,
    passes_through=True,
)


# ---- identity ------------------------------------------------------------------------------


IDENTITY_OP = _elementwise(
    "identity", "passes its input through", "Identity", "Identity", view=True
)


# ---- dropout -------------------------------------------------------------------------------


DROPOUT_OP = Op(
    name="dropout",
    doc="dropout (active in training mode only)",
    attrs=dropout_attrs("MNASNet"),
    shape=_same,
    lower=_module(lambda a, ctx: _nn("Dropout", a["p"], inplace=a["inplace"] and ctx.inplace_ok)),
    onnx=_unary("Identity"),  # exported for inference, where dropout passes through
    label=lambda a, o: f"dropout {a['p']}",
    diagram="activation",
    view=True,
    passes_through=True,
)


# ---- neg, abs, clamp, scale: element-wise arithmetic of one input --------------------------


def _torch_function(
    pick: Callable[[Any], Callable[..., Any]], *extra: Callable[[Attrs], Any]
) -> Callable[[Attrs, LowerContext], Lowered]:
    """A call of the torch function ``pick(torch)`` on the input, then the values ``extra``
    reads from the attributes (a function, not a module: ``netc emit`` writes
    ``torch.clamp(x, None, 1.0)``); torch is imported only when the network is built."""

    def lower(a: Attrs, ctx: LowerContext) -> Lowered:
        import torch

        return Lowered(function=pick(torch), extra_args=tuple(f(a) for f in extra))

    return lower


NEG_OP = Op(
    name="neg",
    doc="-x",
    attrs={},
    shape=_same,
    lower=_torch_function(lambda torch: torch.neg),
    onnx=_unary("Neg"),
    label=lambda a, o: "−x",
    diagram="activation",
    fresh_output=True,  # its backward reads nothing
)


ABS_OP = Op(
    name="abs",
    doc="|x|",
    attrs={},
    shape=_same,
    lower=_torch_function(lambda torch: torch.abs),
    onnx=_unary("Abs"),
    label=lambda a, o: "|x|",
    diagram="activation",
    fresh_output=True,  # its backward reads the input
)


def _clamp_shape(a: Attrs, ins: list[Shape]) -> Shape:
    low, high = a["min"], a["max"]
    if low is None and high is None:
        raise ShapeError("neither min nor max is given", None, "min: 0 alone is max(x, 0)")
    if low is not None and high is not None and not low <= high:
        raise ShapeError(f"min {low:g} is above max {high:g}", "max")
    return ins[0]


def _clamp_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    x, low, high = e.inputs[0], a["min"], a["max"]
    if low is None:
        return e.node("Min", [x, e.scalar(high)])
    if high is None:
        return e.node("Max", [x, e.scalar(low)])
    return e.node("Clip", [x, e.scalar(low), e.scalar(high)])


def _clamp_label(a: Attrs, o: Shape) -> str:
    low = "-inf" if a["min"] is None else f"{a['min']:g}"
    high = "inf" if a["max"] is None else f"{a['max']:g}"
    return f"clamp [{low}, {high}]"


# a bound left out is null (the attribute's default), as conv's padding: no sentinel number
# that a real bound could collide with, and torch.clamp takes None for a missing side
_BOUND = "a bound on this side; null (the default): none"


CLAMP_OP = Op(
    name="clamp",
    doc="min(max(x, min), max) (torch.clamp); a bound left out (null, the default) clamps "
    "that side not at all, so min alone is max(x, min); one of them is required, and min "
    "may not exceed max",
    attrs={
        "min": Attr(kind="float", default=None, doc="the lower " + _BOUND),
        "max": Attr(kind="float", default=None, doc="the upper " + _BOUND),
    },
    shape=_clamp_shape,
    lower=_torch_function(lambda torch: torch.clamp, lambda a: a["min"], lambda a: a["max"]),
    onnx=_clamp_onnx,
    label=_clamp_label,
    diagram="activation",
    fresh_output=True,  # its backward reads the input
)


SCALE_OP = Op(
    name="scale",
    doc="multiplies by a constant factor (fixed; layer_scale learns one per channel)",
    attrs={"factor": Attr(kind="float", doc="the constant")},
    shape=_same,
    lower=_torch_function(lambda torch: torch.mul, lambda a: a["factor"]),
    onnx=lambda a, ctx, e: e.node("Mul", [e.inputs[0], e.scalar(a["factor"])]),
    label=lambda a, o: f"× {a['factor']:g}",
    diagram="activation",
    fresh_output=True,  # its backward reads nothing
)


OPS_ACTIVATION: list[Op] = [
    RELU_OP,
    RELU6_OP,
    HARDSWISH_OP,
    HARDSIGMOID_OP,
    SILU_OP,
    GELU_OP,
    SIGMOID_OP,
    TANH_OP,
    STOCHASTIC_DEPTH_OP,
    IDENTITY_OP,
    DROPOUT_OP,
    LEAKY_RELU_OP,
    PRELU_OP,
    ELU_OP,
    SELU_OP,
    MISH_OP,
    SOFTPLUS_OP,
    HARDTANH_OP,
    NEG_OP,
    ABS_OP,
    CLAMP_OP,
    SCALE_OP,
]
