"""Attention within windows of a map: Swin's window attention (V1 and V2) and patch
merging on a channels-last map, and MaxViT's partition into groups of tokens, its
inverse and its relative attention."""

from __future__ import annotations

import math
from typing import Any

from .records import (
    Attr,
    Attrs,
    ChannelsLast,
    Groups,
    InitContext,
    LowerContext,
    Lowered,
    NotExportable,
    OnnxWriter,
    Op,
    Shape,
    ShapeError,
    _layout,
    _matmul_nodes,
    steps,
)

# ---- window_attention, window_attention_v2 (Swin) ------------------------------------------


def _channels_last(ins: list[Shape], op: str) -> Shape:
    if isinstance(ins[0], Groups):
        raise ShapeError(
            f"{op} needs a channels-last [H, W, C] map, got groups of tokens {list(ins[0])}",
            None,
            "op: departition makes them a map again",
        )
    if not isinstance(ins[0], ChannelsLast):
        raise ShapeError(
            f"{op} needs a channels-last [H, W, C] map, got {list(ins[0])}",
            None,
            "permute a [C, H, W] map first (permute, dims: [0, 2, 3, 1])",
        )
    return ins[0]


def _window_attention_shape(a: Attrs, ins: list[Shape]) -> Shape:
    _, _, c = _channels_last(ins, "window attention")
    if c % a["heads"]:
        raise ShapeError(f"{a['heads']} heads do not divide the {c} channels", "heads")
    if a["shift"] >= a["window"]:
        raise ShapeError(f"shift {a['shift']} is not less than the window {a['window']}", "shift")
    return ins[0]


def _padded(size: int, window: int) -> int:
    return -(-size // window) * window


def _window_attention_macs(a: Attrs, ins: list[Shape], out: Shape) -> int:
    # the q, k, v and output projections (4 C^2 per position) and, within each window of
    # N = window^2 positions, q k^T and weights x v (2 N C per position) on the padded map
    h, w, c = ins[0]
    positions = _padded(h, a["window"]) * _padded(w, a["window"])
    return positions * (4 * c * c + 2 * a["window"] ** 2 * c)


def _window_attention_params(a: Attrs, ins: list[Shape], out: Shape) -> int:
    c = ins[0][2]
    return 4 * c * c + 4 * c + (2 * a["window"] - 1) ** 2 * a["heads"]


# Swin V2's continuous position bias: an MLP from a 2-d offset through 512 hidden units
CPB_HIDDEN = 512


def _cpb_rows(window: int) -> int:
    """The relative offsets (dy, dx) of a window: the rows the bias MLP runs on."""
    return (2 * window - 1) ** 2


def _window_attention_v2_macs(a: Attrs, ins: list[Shape], out: Shape) -> int:
    # V1's, plus the bias MLP once per forward on each relative offset
    mlp = _cpb_rows(a["window"]) * (2 * CPB_HIDDEN + CPB_HIDDEN * a["heads"])
    return _window_attention_macs(a, ins, out) + mlp


def _window_attention_v2_params(a: Attrs, ins: list[Shape], out: Shape) -> int:
    c, heads = ins[0][2], a["heads"]
    # qkv and proj, the logit scale per head, the bias MLP (its last linear has no bias)
    return 4 * c * c + 4 * c + heads + 3 * CPB_HIDDEN + CPB_HIDDEN * heads


def _init_window_attention_v2(m: Any, a: Attrs, ctx: InitContext) -> None:
    """torchvision's Swin V2: every linear (qkv, proj, the bias MLP's) trunc_normal std 0.02
    with zero biases, the logit scale log(10); the buffers computed."""
    import torch
    from torch import nn

    for linear in (m.qkv, m.proj, m.cpb_mlp[0], m.cpb_mlp[2]):
        nn.init.trunc_normal_(linear.weight, std=0.02)
        if linear.bias is not None:
            nn.init.zeros_(linear.bias)
    with torch.no_grad():
        m.logit_scale.copy_(torch.log(10 * torch.ones_like(m.logit_scale)))
    m.reset_index()


def _init_window_attention(m: Any, a: Attrs, ctx: InitContext) -> None:
    """torchvision's Swin: the bias table a normal of std 0.02 (truncated at +-2), the
    projections trunc_normal std 0.02 with zero biases; the index buffer computed."""
    from torch import nn

    nn.init.trunc_normal_(m.relative_position_bias_table, std=0.02)
    for linear in (m.qkv, m.proj):
        nn.init.trunc_normal_(linear.weight, std=0.02)
        nn.init.zeros_(linear.bias)
    m.reset_index()


def _roll(e: OnnxWriter, x: str, shift: int, axis: int, size: int) -> str:
    """torch.roll of one axis: the last ``shift`` entries first (a negative shift: the first)."""
    if shift == 0:
        return x
    cut = (size - shift) % size
    tail = e.node("Slice", [x, e.ints([cut]), e.ints([size]), e.ints([axis])])
    head = e.node("Slice", [x, e.ints([0]), e.ints([cut]), e.ints([axis])])
    return e.node("Concat", [tail, head], axis=axis)


def _shift_mask(height: int, width: int, window: int, shift_h: int, shift_w: int) -> list[float]:
    """Swin's attention mask of a shifted map, [windows, N, N] flattened: -100 between positions
    of different regions before the shift, 0 within one (torchvision's rule)."""
    label = [[0] * width for _ in range(height)]
    count = 0
    # Python's slices with torchvision's bounds (a shift of 0 makes the last one the whole side)
    for h0, h1 in ((0, -window), (-window, -shift_h), (-shift_h, None)):
        for w0, w1 in ((0, -window), (-window, -shift_w), (-shift_w, None)):
            for i in range(height)[h0:h1]:
                for j in range(width)[w0:w1]:
                    label[i][j] = count
            count += 1
    out: list[float] = []
    for wy in range(0, height, window):
        for wx in range(0, width, window):
            cells = [label[wy + i][wx + j] for i in range(window) for j in range(window)]
            out += [0.0 if p == q else -100.0 for p in cells for q in cells]
    return out


def _normalize(e: OnnxWriter, x: str) -> str:
    """F.normalize over the last axis: x / max(||x||_2, 1e-12)."""
    squares = e.node("ReduceSum", [e.node("Mul", [x, x]), e.ints([-1])], keepdims=1)
    return e.node("Div", [x, e.node("Max", [e.node("Sqrt", [squares]), e.scalar(1e-12)])])


def _position_bias(e: OnnxWriter, n: int, heads: int, cosine: bool) -> str:
    """The relative position bias [heads, n, n]: rows of the learned table (V1) or of the
    bias MLP's output on the log-spaced offsets, 16 * sigmoid (V2), picked by the index."""
    if cosine:
        hidden = _matmul_nodes(
            e,
            e.param("relative_coords_table"),
            e.param("cpb_mlp.0.weight"),
            e.param("cpb_mlp.0.bias"),
        )
        rows = _matmul_nodes(e, e.node("Relu", [hidden]), e.param("cpb_mlp.2.weight"))
        table = e.node("Reshape", [rows, e.ints([-1, heads])])
    else:
        table = e.param("relative_position_bias_table")
    picked = e.node("Gather", [table, e.param("relative_position_index")])
    bias = e.node("Transpose", [e.node("Reshape", [picked, e.ints([n, n, heads])])], perm=[2, 0, 1])
    if cosine:
        bias = e.node("Mul", [e.node("Sigmoid", [bias]), e.scalar(16.0)])
    return bias


def _windows_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter, cosine: bool) -> str:
    h, w, c = ctx.in_shapes[0]
    win, heads = a["window"], a["heads"]
    ph, pw = _padded(h, win), _padded(w, win)
    sh = a["shift"] if win < ph else 0  # one window covers that side: nothing to shift
    sw = a["shift"] if win < pw else 0
    n, windows = win * win, (ph // win) * (pw // win)
    x = e.inputs[0]
    if (ph, pw) != (h, w):
        x = e.node("Pad", [x, e.ints([0, 0, 0, 0, 0, ph - h, pw - w, 0])])
    x = _roll(e, _roll(e, x, -sh, 1, ph), -sw, 2, pw)
    x = e.node("Reshape", [x, e.ints([-1, ph // win, win, pw // win, win, c])])
    x = e.node("Transpose", [x], perm=[0, 1, 3, 2, 4, 5])
    x = e.node("Reshape", [x, e.ints([-1, n, c])])  # [N * windows, n, C]
    qkv_bias = e.param("qkv.bias")
    if cosine:  # the keys' third of the bias held at zero
        qkv_bias = e.node("Mul", [qkv_bias, e.floats([1.0] * c + [0.0] * c + [1.0] * c)])
    qkv = _matmul_nodes(e, x, e.param("qkv.weight"), qkv_bias)
    qkv = e.node("Reshape", [qkv, e.ints([0, 0, 3, heads, c // heads])])
    qkv = e.node("Transpose", [qkv], perm=[2, 0, 3, 1, 4])  # [3, N * windows, heads, n, d]

    def part(k: int) -> str:
        one = e.node("Slice", [qkv, e.ints([k]), e.ints([k + 1]), e.ints([0])])
        return e.node("Squeeze", [one, e.ints([0])])

    if cosine:
        k_t = e.node("Transpose", [_normalize(e, part(1))], perm=[0, 1, 3, 2])
        attn = e.node("MatMul", [_normalize(e, part(0)), k_t])
        scale = e.node("Min", [e.param("logit_scale"), e.scalar(math.log(100.0))])
        attn = e.node("Mul", [attn, e.node("Exp", [scale])])
    else:
        q = e.node("Mul", [part(0), e.scalar((c // heads) ** -0.5)])
        attn = e.node("MatMul", [q, e.node("Transpose", [part(1)], perm=[0, 1, 3, 2])])
    attn = e.node("Add", [attn, _position_bias(e, n, heads, cosine)])
    if sh or sw:
        mask = e.node(
            "Reshape", [e.floats(_shift_mask(ph, pw, win, sh, sw)), e.ints([1, windows, 1, n, n])]
        )
        attn = e.node("Reshape", [attn, e.ints([-1, windows, heads, n, n])])
        attn = e.node("Reshape", [e.node("Add", [attn, mask]), e.ints([-1, heads, n, n])])
    attn = e.node("Softmax", [attn], axis=-1)
    x = e.node("Transpose", [e.node("MatMul", [attn, part(2)])], perm=[0, 2, 1, 3])
    x = e.node("Reshape", [x, e.ints([-1, n, c])])
    x = _matmul_nodes(e, x, e.param("proj.weight"), e.param("proj.bias"))
    x = e.node("Reshape", [x, e.ints([-1, ph // win, pw // win, win, win, c])])
    x = e.node("Transpose", [x], perm=[0, 1, 3, 2, 4, 5])
    x = e.node("Reshape", [x, e.ints([-1, ph, pw, c])])
    x = _roll(e, _roll(e, x, sh, 1, ph), sw, 2, pw)
    if (ph, pw) != (h, w):
        x = e.node("Slice", [x, e.ints([0, 0]), e.ints([h, w]), e.ints([1, 2])])
    return x


def _window_attention_op(cosine: bool) -> Op:
    """Swin's window attention (torchvision's ShiftedWindowAttention), or with ``cosine`` Swin
    V2's (ShiftedWindowAttentionV2): the same windows, shifts and attributes; V2 scores by
    scaled cosine similarity and computes its position bias with a small MLP."""
    module = "WindowAttentionV2" if cosine else "WindowAttention"

    def lower(a: Attrs, ctx: LowerContext) -> Lowered:
        from ..lowering import modules

        c = ctx.in_shapes[0][2]
        args = (a["window"], a["shift"], a["heads"], a["attention_dropout"], a["dropout"])
        return Lowered(getattr(modules, module)(c, *args))

    def label(a: Attrs, o: Shape) -> str:
        # the paper's names: W-MSA, and SW-MSA for shifted windows
        kind = f"{'SW' if a['shift'] else 'W'}-MSA {a['window']}x{a['window']}, {a['heads']} heads"
        return kind + ", cosine" if cosine else kind

    doc = (
        "Swin V2's window attention over a channels-last map [H, W, C]: as window_attention, "
        "but scaled cosine attention and a continuous relative position bias from a small MLP "
        "(torchvision's ShiftedWindowAttentionV2: logit_scale, the buffers relative_coords_table "
        "and relative_position_index, qkv, proj, cpb_mlp)"
        if cosine
        else "Swin's window attention over a channels-last map [H, W, C]: multi-head attention "
        "within window x window windows, shifted cyclically by shift (SW-MSA), with a learned "
        "relative position bias (torchvision's ShiftedWindowAttention: "
        "relative_position_bias_table, the buffer relative_position_index, qkv, proj)"
    )
    return Op(
        name="window_attention_v2" if cosine else "window_attention",
        doc=doc,
        attrs={
            "heads": Attr(kind="int", min=1, doc="attention heads; divides the channels"),
            # V2's log-spaced offsets divide by window - 1
            "window": Attr(
                kind="int", default=8 if cosine else 7, min=2 if cosine else 1, doc="window side"
            ),
            "shift": Attr(kind="int", default=0, min=0, doc="less than the window"),
            "attention_dropout": Attr(kind="float", default=0.0, min=0, max=1),
            "dropout": Attr(kind="float", default=0.0, min=0, max=1, doc="after proj"),
        },
        shape=_window_attention_shape,
        lower=lower,
        onnx=lambda a, ctx, e: _windows_onnx(a, ctx, e, cosine),
        label=label,
        diagram="weight",
        params=_window_attention_v2_params if cosine else _window_attention_params,
        macs=_window_attention_v2_macs if cosine else _window_attention_macs,
        init=_init_window_attention_v2 if cosine else _init_window_attention,
        weighted=True,
        fresh_output=True,
        channels_last_input=True,
    )


WINDOW_ATTENTION_OP = _window_attention_op(cosine=False)


WINDOW_ATTENTION_V2_OP = _window_attention_op(cosine=True)


# ---- patch_merging (Swin) ------------------------------------------------------------------


def _patch_merging_shape(a: Attrs, ins: list[Shape]) -> Shape:
    h, w, c = _channels_last(ins, "patch_merging")
    return ChannelsLast(((h + 1) // 2, (w + 1) // 2, 2 * c))


def _patch_merging_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering import modules

    kind = modules.PatchMergingV2 if a["norm"] == "after" else modules.PatchMerging
    return Lowered(kind(ctx.in_shapes[0][2], eps=a["eps"]))


def _patch_merging_params(a: Attrs, ins: list[Shape], out: Shape) -> int:
    c = ins[0][2]
    normed = 2 * c if a["norm"] == "after" else 4 * c
    return 4 * c * 2 * c + 2 * normed  # the reduction, the norm's weight and bias


def _init_patch_merging(m: Any, a: Attrs, ctx: InitContext) -> None:
    """torchvision's Swin: the reduction trunc_normal std 0.02, the norm PyTorch's."""
    from torch import nn

    nn.init.trunc_normal_(m.reduction.weight, std=0.02)
    m.norm.reset_parameters()


def _patch_merging_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    if e.opset < 17:
        raise NotExportable("patch merging's layer norm needs opset 17 (LayerNormalization)")
    h, w, _ = ctx.in_shapes[0]
    x = e.inputs[0]
    if h % 2 or w % 2:
        x = e.node("Pad", [x, e.ints([0, 0, 0, 0, 0, h % 2, w % 2, 0])])
    ends = e.ints([h + h % 2, w + w % 2])
    parts = [
        e.node("Slice", [x, e.ints([dy, dx]), ends, e.ints([1, 2]), e.ints([2, 2])])
        for dy, dx in ((0, 0), (1, 0), (0, 1), (1, 1))
    ]
    merged = e.node("Concat", parts, axis=-1)

    def norm(x: str) -> str:
        inputs = [x, e.param("norm.weight"), e.param("norm.bias")]
        return e.node("LayerNormalization", inputs, axis=-1, epsilon=a["eps"])

    if a["norm"] == "after":
        return norm(_matmul_nodes(e, merged, e.param("reduction.weight")))
    return _matmul_nodes(e, norm(merged), e.param("reduction.weight"))


PATCH_MERGING_OP = Op(
    name="patch_merging",
    doc="Swin's patch merging on a channels-last map: each 2x2 patch side by side "
    "[H/2, W/2, 4C], a layer norm and a bias-free linear to 2C (torchvision's "
    "PatchMerging: reduction, norm); norm: after puts the norm after the reduction, "
    "on 2C (Swin V2's PatchMergingV2)",
    attrs={
        "eps": Attr(kind="float", default=1e-5, min=0, min_open=True),
        "norm": Attr(kind="str", default="before", choices=("before", "after")),
    },
    shape=_patch_merging_shape,
    lower=_patch_merging_lower,
    onnx=_patch_merging_onnx,
    label=lambda a, o: f"patch merging, {o[-1]}",
    diagram="weight",
    side_factor=lambda a: steps(2),
    params=_patch_merging_params,
    macs=lambda a, ins, o: math.prod(o) * 4 * ins[0][2],
    init=_init_patch_merging,
    weighted=True,
    fresh_output=True,
    channels_last_input=True,
)


# ---- partition (MaxViT) --------------------------------------------------------------------


def _partition_tokens(a: Attrs, h: int) -> int:
    """The side of the windows a partition cuts (``size``, or H / size for a grid)."""
    return h // a["size"] if a["kind"] == "grid" else a["size"]


def _partition_shape(a: Attrs, ins: list[Shape], op: str = "partition") -> Shape:
    shape = ins[0]
    if isinstance(shape, ChannelsLast) or len(shape) != 3:
        raise ShapeError(f"{op} needs a [C, H, W] map, got {list(shape)}")
    c, h, w = shape
    size = a["size"]
    if h % size or w % size:
        raise ShapeError(f"size {size} does not divide the {h}x{w} map", "size")
    if a["kind"] == "grid" and h != w:
        # torchvision's grid cuts windows of H / size on both axes: size x size tokens only
        # on a square map
        raise ShapeError(f"a grid partition needs a square map, got {h}x{w}", "kind")
    p = _partition_tokens(a, h)
    groups, tokens = (h // p) * (w // p), p * p
    if a["kind"] == "grid":
        groups, tokens = tokens, groups
    return Groups((groups, tokens, c))


def _partition_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering import modules

    return Lowered(function=modules.partition, extra_args=(a["size"], a["kind"] == "grid"))


def _partition_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    c, h, w = ctx.in_shapes[0]
    p = _partition_tokens(a, h)
    x = e.node("Reshape", [e.inputs[0], e.ints([-1, c, h // p, p, w // p, p])])
    x = e.node("Transpose", [x], perm=[0, 2, 4, 3, 5, 1])
    x = e.node("Reshape", [x, e.ints([-1, (h // p) * (w // p), p * p, c])])
    return e.node("Transpose", [x], perm=[0, 2, 1, 3]) if a["kind"] == "grid" else x


PARTITION_OP = Op(
    name="partition",
    doc="MaxViT's partition of a [C, H, W] map into groups of size x size tokens, "
    "channels-last [G, P, C]: contiguous windows (kind: window, block attention) or "
    "tokens H / size apart (kind: grid, grid attention); torchvision's "
    "WindowPartition (and SwapAxes)",
    attrs={
        "size": Attr(kind="int", min=1, doc="the side of a group: divides the height"),
        "kind": Attr(kind="str", default="window", choices=("window", "grid")),
    },
    shape=_partition_shape,
    lower=_partition_lower,
    onnx=_partition_onnx,
    label=lambda a, o: f"{a['kind']} partition {a['size']}x{a['size']}",
    diagram="reshape",
    side_factor=lambda a: steps(a["size"]),
)


# ---- departition (MaxViT) ------------------------------------------------------------------


def _departition_shape(a: Attrs, ins: list[Shape]) -> Shape:
    windows, like = ins
    if not isinstance(windows, Groups):
        raise ShapeError(
            f"departition needs groups of tokens [G, P, C], got {_layout(windows)} {list(windows)}",
            None,
            "op: partition makes them",
        )
    # the groups of `like`, cut the same way
    expected = _partition_shape(a, [like], "departition's second input (the map)")
    if tuple(expected[:2]) != tuple(windows[:2]):
        raise ShapeError(
            f"{list(windows)} are not the {a['kind']} partition of size {a['size']} of a "
            f"{list(like)} map ({list(expected[:2])} groups and tokens)",
            None,
            "the second input is the map the first was partitioned from",
        )
    return (windows[2], like[1], like[2])


def _departition_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering import modules

    return Lowered(function=modules.departition, extra_args=(a["size"], a["kind"] == "grid"))


def _departition_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    c, h, w = ctx.out_shape
    p = _partition_tokens(a, h)
    x = e.inputs[0]
    if a["kind"] == "grid":
        x = e.node("Transpose", [x], perm=[0, 2, 1, 3])
    x = e.node("Reshape", [x, e.ints([-1, h // p, w // p, p, p, c])])
    x = e.node("Transpose", [x], perm=[0, 5, 1, 3, 2, 4])
    return e.node("Reshape", [x, e.ints([-1, c, h, w])])


DEPARTITION_OP = Op(
    name="departition",
    doc="the inverse of partition: groups of tokens [G, P, C] back to a [C, H, W] map; "
    "its second input is the map they were cut from (for H and W)",
    attrs={
        "size": Attr(kind="int", min=1, doc="as the partition's"),
        "kind": Attr(kind="str", default="window", choices=("window", "grid")),
    },
    shape=_departition_shape,
    lower=_departition_lower,
    onnx=_departition_onnx,
    label=lambda a, o: f"{a['kind']} departition",
    diagram="reshape",
    inputs=(2, 2),
    side_factor=lambda a: 1 / steps(a["size"]),
)


# ---- relative_attention (MaxViT) -----------------------------------------------------------


def _relative_attention_shape(a: Attrs, ins: list[Shape]) -> Shape:
    shape = ins[0]
    if not isinstance(shape, Groups):
        raise ShapeError(
            f"relative_attention needs groups of tokens [G, P, C], got {_layout(shape)} "
            f"{list(shape)}",
            None,
            "op: partition cuts a [C, H, W] map into them",
        )
    _, tokens, c = shape
    if math.isqrt(tokens) ** 2 != tokens:
        raise ShapeError(
            f"{tokens} tokens per group are no square window",
            None,
            "op: partition cuts size x size groups",
        )
    if c % a["head_dim"]:
        raise ShapeError(f"head_dim {a['head_dim']} does not divide the {c} channels", "head_dim")
    return shape


def _relative_attention_params(a: Attrs, ins: list[Shape], out: Shape) -> int:
    _, tokens, c = ins[0]
    side = math.isqrt(tokens)
    return 4 * c * c + 4 * c + (2 * side - 1) ** 2 * (c // a["head_dim"])


def _relative_attention_macs(a: Attrs, ins: list[Shape], out: Shape) -> int:
    # to_qkv and merge (4 C^2 per token), q k^T and weights x v (P C per token each); torch's
    # einsum contracts a dimension of size 1 element-wise, without a matmul, which FLOP counters
    # (torchvision's figures among them) do not count, so neither does this
    groups, tokens, c = ins[0]
    products = (a["head_dim"] > 1) + (tokens > 1)
    return groups * tokens * (4 * c * c + products * tokens * c)


def _relative_attention_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering import modules

    _, tokens, c = ctx.in_shapes[0]
    return Lowered(modules.RelativeAttention(c, a["head_dim"], tokens))


def _relative_attention_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    c = ctx.in_shapes[0][2]
    heads, head_dim = c // a["head_dim"], a["head_dim"]
    qkv = _matmul_nodes(e, e.inputs[0], e.param("to_qkv.weight"), e.param("to_qkv.bias"))

    def part(k: int) -> str:
        one = e.node("Slice", [qkv, e.ints([k * c]), e.ints([(k + 1) * c]), e.ints([-1])])
        one = e.node("Reshape", [one, e.ints([0, 0, 0, heads, head_dim])])
        return e.node("Transpose", [one], perm=[0, 1, 3, 2, 4])  # [N, G, heads, P, d]

    k = e.node("Mul", [part(1), e.scalar(c**-0.5)])
    dot = e.node("MatMul", [part(0), e.node("Transpose", [k], perm=[0, 1, 2, 4, 3])])
    picked = e.node(
        "Gather", [e.param("relative_position_bias_table"), e.param("relative_position_index")]
    )
    bias = e.node("Transpose", [picked], perm=[2, 0, 1])  # [heads, P, P]
    weights = e.node("Softmax", [e.node("Add", [dot, bias])], axis=-1)
    out = e.node("Transpose", [e.node("MatMul", [weights, part(2)])], perm=[0, 1, 3, 2, 4])
    out = e.node("Reshape", [out, e.ints([0, 0, 0, c])])
    return _matmul_nodes(e, out, e.param("merge.weight"), e.param("merge.bias"))


def _init_relative_attention(m: Any, a: Attrs, ctx: InitContext) -> None:
    """torchvision's MaxViT: the bias table trunc_normal std 0.02, the linears normal std 0.02
    with zero biases; the index buffer computed."""
    from torch import nn

    nn.init.trunc_normal_(m.relative_position_bias_table, std=0.02)
    for linear in (m.to_qkv, m.merge):
        nn.init.normal_(linear.weight, std=0.02)
        nn.init.zeros_(linear.bias)
    m.reset_index()


RELATIVE_ATTENTION_OP = Op(
    name="relative_attention",
    doc="MaxViT's multi-head attention within each group of tokens [G, P, C] with a "
    "learned relative position bias (torchvision's RelativePositionalMultiHeadAttention: "
    "to_qkv, merge, relative_position_bias_table, the buffer relative_position_index)",
    attrs={
        "head_dim": Attr(kind="int", min=1, doc="channels per head; divides the channels"),
    },
    shape=_relative_attention_shape,
    lower=_relative_attention_lower,
    onnx=_relative_attention_onnx,
    label=lambda a, o: f"rel. MSA, {o[-1] // a['head_dim']} heads",
    diagram="weight",
    params=_relative_attention_params,
    macs=_relative_attention_macs,
    init=_init_relative_attention,
    weighted=True,
    fresh_output=True,
    channels_last_input=True,
)


OPS_WINDOWS: list[Op] = [
    WINDOW_ATTENTION_OP,
    WINDOW_ATTENTION_V2_OP,
    PATCH_MERGING_OP,
    PARTITION_OP,
    DEPARTITION_OP,
    RELATIVE_ATTENTION_OP,
]
