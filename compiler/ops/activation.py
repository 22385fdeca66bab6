"""Element-wise activations, and the ops that pass their input through in inference
(stochastic_depth, identity, dropout)."""

from __future__ import annotations

import math
from collections.abc import Callable

from .records import Attr, Attrs, LowerContext, Lowered, OnnxWriter, Op, _module, _nn, _same, _unary

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


def _gelu(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    # ONNX's Gelu is opset 20: 0.5 * x * (1 + erf(x / sqrt(2))), as torch computes it
    x = e.inputs[0]
    erf = e.node("Erf", [e.node("Div", [x, e.scalar(math.sqrt(2.0))])])
    half_x = e.node("Mul", [x, e.scalar(0.5)])
    return e.node("Mul", [half_x, e.node("Add", [erf, e.scalar(1.0)])])


GELU_OP = _activation(
    "gelu",
    "x * Phi(x), the exact (erf) form (ConvNeXt, ViT)",
    "GELU",
    onnx=_gelu,
    label="GELU",
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
    attrs={
        "p": Attr(kind="float", default=0.5, min=0, max=1, doc="drop probability"),
        "inplace": Attr(
            kind="bool",
            default=False,
            doc="zero the input in place where no other node reads it (MNASNet)",
        ),
    },
    shape=_same,
    lower=_module(lambda a, ctx: _nn("Dropout", a["p"], inplace=a["inplace"] and ctx.inplace_ok)),
    onnx=_unary("Identity"),  # exported for inference, where dropout passes through
    label=lambda a, o: f"dropout {a['p']}",
    diagram="activation",
    view=True,
    passes_through=True,
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
]
