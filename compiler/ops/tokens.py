"""Token sequences [L, D] of vision transformers (ViT): tokens of a map, the class
token, the position embedding, self-attention, and the selection of one token."""

from __future__ import annotations

import math
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
    _chw,
    _matmul_nodes,
    is_tokens,
)

# ---- tokens --------------------------------------------------------------------------------


# the op that makes a token sequence of a [C, H, W] map: a block of a transformer is drawn
# on its output
TOKENS = "tokens"


def _tokens_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, h, w = _chw(ins, "tokens")
    return (h * w, c)


def _tokens_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering import modules

    return Lowered(function=modules.to_tokens)


def _tokens_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    c, h, w = ctx.in_shapes[0]
    flat = e.node("Reshape", [e.inputs[0], e.ints([0, c, h * w])])
    return e.node("Transpose", [flat], perm=[0, 2, 1])


TOKENS_OP = Op(
    name="tokens",
    doc="a [C, H, W] map as a sequence of H * W tokens of width C, [H * W, C] "
    "(ViT's patch tokens: reshape, permute)",
    attrs={},
    shape=_tokens_shape,
    lower=_tokens_lower,
    onnx=_tokens_onnx,
    label=lambda a, o: "tokens",
    diagram="reshape",
    view=True,
)


# ---- class_token ---------------------------------------------------------------------------


def _sequence(ins: list[Shape], op: str) -> Shape:
    if not is_tokens(ins[0]):
        hint = (
            "permute it back (permute, dims: [0, 3, 1, 2]), then op: tokens"
            if isinstance(ins[0], ChannelsLast)
            else "a [C, H, W] map becomes one with op: tokens"
        )
        raise ShapeError(f"{op} needs a token sequence [L, D], got {list(ins[0])}", None, hint)
    return ins[0]


def _class_token_shape(a: Attrs, ins: list[Shape]) -> Shape:
    length, dim = _sequence(ins, "class_token")
    return (length + 1, dim)


def _class_token_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    import torch

    from ..lowering import modules

    dim = ctx.in_shapes[0][1]
    return Lowered(function=modules.prepend_token, parameter=torch.zeros(1, 1, dim))


def _class_token_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    dim = ctx.in_shapes[0][1]
    batch = e.node("Slice", [e.node("Shape", e.inputs), e.ints([0]), e.ints([1])])
    shape = e.node("Concat", [batch, e.ints([1, dim])], axis=0)
    token = e.node("Expand", [e.param(""), shape])
    return e.node("Concat", [token, e.inputs[0]], axis=1)


def _init_zeros(m: Any, a: Attrs, ctx: InitContext) -> None:
    """Zeros (ViT's class token)."""
    from torch import nn

    nn.init.zeros_(m)


CLASS_TOKEN_OP = Op(
    name="class_token",
    doc="a learned [D] token put before each sequence [L, D] -> [L + 1, D] (ViT's "
    "class_token: a bare parameter named as the node, zeros at first)",
    attrs={},
    shape=_class_token_shape,
    lower=_class_token_lower,
    onnx=_class_token_onnx,
    label=lambda a, o: "class token",
    diagram="weight",  # a learned tensor, drawn as a layer
    params=lambda a, ins, o: ins[0][1],
    init=_init_zeros,
    fresh_output=True,
    sequence_input=True,
)


# ---- pos_embedding -------------------------------------------------------------------------


def _pos_embedding_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    import torch

    from ..lowering import modules

    return Lowered(function=modules.add_embedding, parameter=torch.zeros(1, *ctx.in_shapes[0]))


def _init_pos_embedding(m: Any, a: Attrs, ctx: InitContext) -> None:
    """Normal, std 0.02 (ViT's position embedding, from BERT)."""
    from torch import nn

    nn.init.normal_(m, std=0.02)


POS_EMBEDDING_OP = Op(
    name="pos_embedding",
    doc="a learned [L, D] position embedding added to a token sequence (ViT's "
    "encoder.pos_embedding: a bare parameter named as the node, normal std 0.02)",
    attrs={},
    shape=lambda a, ins: _sequence(ins, "pos_embedding"),
    lower=_pos_embedding_lower,
    onnx=lambda a, ctx, e: e.node("Add", [e.inputs[0], e.param("")]),
    label=lambda a, o: "+ position embedding",
    diagram="weight",  # a learned tensor, drawn as a layer
    params=lambda a, ins, o: math.prod(ins[0]),
    init=_init_pos_embedding,
    fresh_output=True,
    sequence_input=True,
)


# ---- self_attention ------------------------------------------------------------------------


def _attention_shape(a: Attrs, ins: list[Shape]) -> Shape:
    _, dim = _sequence(ins, "self_attention")
    if dim % a["heads"]:
        raise ShapeError(f"{a['heads']} heads do not divide the width {dim}", "heads")
    return ins[0]


def _attention_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering import modules

    dim = ctx.in_shapes[0][1]
    return Lowered(modules.SelfAttention(dim, a["heads"], dropout=a["dropout"]))


def _attention_macs(a: Attrs, ins: list[Shape], out: Shape) -> int:
    # the q, k, v and output projections (4 L D^2), then q k^T and the weights times v (2 L^2 D):
    # torchvision's weights meta counts the same
    length, dim = ins[0]
    return 4 * length * dim * dim + 2 * length * length * dim


def _attention_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    _, dim = ctx.in_shapes[0]
    heads = a["heads"]
    head = dim // heads
    qkv = _matmul_nodes(e, e.inputs[0], e.param("in_proj_weight"), e.param("in_proj_bias"))

    def part(k: int, perm: list[int]) -> str:
        piece = e.node("Slice", [qkv, e.ints([k * dim]), e.ints([(k + 1) * dim]), e.ints([-1])])
        split = e.node("Reshape", [piece, e.ints([0, 0, heads, head])])
        return e.node("Transpose", [split], perm=perm)

    q, k_t, v = part(0, [0, 2, 1, 3]), part(1, [0, 2, 3, 1]), part(2, [0, 2, 1, 3])
    scores = e.node("Mul", [e.node("MatMul", [q, k_t]), e.scalar(1.0 / math.sqrt(head))])
    weights = e.node("Softmax", [scores], axis=-1)
    mixed = e.node("Transpose", [e.node("MatMul", [weights, v])], perm=[0, 2, 1, 3])
    joined = e.node("Reshape", [mixed, e.ints([0, 0, dim])])
    return _matmul_nodes(e, joined, e.param("out_proj.weight"), e.param("out_proj.bias"))


def _init_attention(m: Any, a: Attrs, ctx: InitContext) -> None:
    """nn.MultiheadAttention's own: the output projection as a Linear, then xavier-uniform
    in_proj_weight and zero biases (torchvision's ViT keeps it)."""
    m.out_proj.reset_parameters()
    m._reset_parameters()


SELF_ATTENTION_OP = Op(
    name="self_attention",
    doc="multi-head self-attention over a token sequence [L, D], torchvision's "
    "nn.MultiheadAttention (in_proj_weight, in_proj_bias, out_proj)",
    attrs={
        "heads": Attr(kind="int", min=1, doc="attention heads; divides the width"),
        "dropout": Attr(kind="float", default=0.0, min=0, max=1, doc="on the weights"),
    },
    shape=_attention_shape,
    lower=_attention_lower,
    onnx=_attention_onnx,
    label=lambda a, o: f"self-attention, {a['heads']} heads",
    diagram="weight",
    params=lambda a, ins, o: 4 * ins[0][1] * ins[0][1] + 4 * ins[0][1],
    macs=_attention_macs,
    init=_init_attention,
    weighted=True,
    fresh_output=True,
    sequence_input=True,
)


# ---- select_token --------------------------------------------------------------------------


def _select_token_shape(a: Attrs, ins: list[Shape]) -> Shape:
    length, dim = _sequence(ins, "select_token")
    if a["index"] >= length:
        raise ShapeError(
            f"token {a['index']} is past the end of a sequence of {length} (0 to {length - 1})",
            "index",
        )
    return (dim,)


def _select_token_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering import modules

    return Lowered(function=modules.select_token, extra_args=(a["index"],))


def _select_token_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    token = e.node("Gather", [e.inputs[0], e.ints([a["index"]])], axis=1)  # [N, 1, D]
    return e.node("Squeeze", [token, e.ints([1])])


SELECT_TOKEN_OP = Op(
    name="select_token",
    doc="one token of a sequence, [L, D] -> [D] (ViT's class token: x[:, 0])",
    attrs={"index": Attr(kind="int", default=0, min=0, doc="which token, from 0")},
    shape=_select_token_shape,
    lower=_select_token_lower,
    onnx=_select_token_onnx,
    label=lambda a, o: f"token {a['index']}",
    diagram="reshape",
    view=True,
    sequence_input=True,
    pools=True,
)


OPS_TOKENS: list[Op] = [
    TOKENS_OP,
    CLASS_TOKEN_OP,
    POS_EMBEDDING_OP,
    SELF_ATTENTION_OP,
    SELECT_TOKEN_OP,
]
