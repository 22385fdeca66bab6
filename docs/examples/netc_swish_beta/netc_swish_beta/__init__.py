"""An example netc plugin: ``swish_beta``, x * sigmoid(beta * x) (Ramachandran et al., 2017).

netc reads ``NETC_OPS`` when the user enables this module. The op's rules use no torch, so
``netc check`` stays torch-free with the plugin enabled; the torch module lives in ``layers``,
imported only when a network is built.
"""

from __future__ import annotations

from compiler.ops import Attr, Attrs, LowerContext, Lowered, OnnxWriter, Op, Shape


def _shape(a: Attrs, ins: list[Shape]) -> Shape:
    return ins[0]  # element-wise: any shape in, the same shape out


def _lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from .layers import SwishBeta

    return Lowered(SwishBeta(beta=a["beta"]))


def _onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    x = e.inputs[0]
    gate = e.node("Sigmoid", [e.node("Mul", [x, e.scalar(a["beta"])])])
    return e.node("Mul", [x, gate])


SWISH_BETA = Op(
    name="swish_beta",
    doc="x * sigmoid(beta * x): SiLU at beta = 1, towards ReLU as beta grows",
    attrs={"beta": Attr(kind="float", default=1.0, min=0, min_open=True, doc="the slope")},
    shape=_shape,
    lower=_lower,
    onnx=_onnx,
    label=lambda a, out: f"swish β={a['beta']:g}",
    diagram="activation",
)

NETC_OPS = [SWISH_BETA]
