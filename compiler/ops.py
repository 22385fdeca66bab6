"""The primitive ops: every op is declared once, here, in :data:`OPS`.

An entry holds the attribute schema, how many inputs the op takes, its shape rule, its parameter
and multiply-accumulate counts, its torch lowering, its ONNX nodes and its diagram label. Shapes
exclude the batch dimension: ``[C, H, W]`` for feature maps, ``[C]`` for vectors. Lowerings
import torch lazily and ONNX rules write through an :class:`Emitter`, so this table can be read
by ``netc check`` without importing torch or onnx.

Adding an op is adding one :class:`Op` entry; nothing else in the compiler names ops.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

Shape = tuple[int, ...]


class ChannelsLast(tuple):
    """The shape of a value permuted to channels-last, ``[H, W, C]`` (``permute [0, 2, 3, 1]``):
    a linear or a layer norm acts on its channels; an op that needs ``[C, H, W]`` refuses it
    until a permute turns it back. Shape rules that return their input's shape keep the mark."""

    __slots__ = ()


class Groups(ChannelsLast):
    """Groups of tokens ``[G, P, C]`` (MaxViT's partitions of a map): channels-last, so a linear,
    a layer norm or an add acts on their channels as on any channels-last value, but no map:
    window attention, patch merging and permute refuse them; departition makes a map again."""

    __slots__ = ()


def _layout(shape: Shape) -> str:
    """What kind of value ``shape`` is, in words for an error."""
    if isinstance(shape, Groups):
        return "groups of tokens"
    return "a channels-last value" if isinstance(shape, ChannelsLast) else "a [C, H, W] value"


def channels(shape: Shape) -> int:
    """The channels of a value: C of a map [C, H, W] or a vector [C]; the last dimension of a
    channels-last map [H, W, C] or of a token sequence [L, D]."""
    return shape[-1] if isinstance(shape, ChannelsLast) or len(shape) == 2 else shape[0]


Attrs = dict[str, Any]
REQUIRED = object()  # marks an attribute without a default


class ShapeError(Exception):
    """An op cannot accept its inputs; ``attr`` names the attribute to blame, if any."""

    def __init__(self, message: str, attr: str | None = None, note: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.attr = attr
        self.note = note


@dataclass(frozen=True, kw_only=True)
class Attr:
    """One attribute: its type ('int', 'float', 'bool', 'str', 'ints': a list of whole numbers,
    'size': a whole number or a [height, width] pair of them), default and allowed values.

    Numbers may have a lower and an upper bound, each closed (``min=0``: at least 0) or open
    (``min=0, min_open=True``: more than 0); the expansion reports a value outside as a located
    error, so torch never sees it.
    """

    kind: str
    default: Any = REQUIRED
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False
    choices: tuple[str, ...] = ()
    doc: str = ""

    def range_error(self, value: float) -> str | None:
        """Why ``value`` is out of range ('must be at most 1'), or None when it is allowed."""
        low = self.min is not None and (value <= self.min if self.min_open else value < self.min)
        high = self.max is not None and (value >= self.max if self.max_open else value > self.max)
        if not (low or high):
            return None
        return f"must be {self.range_text()}"

    def range_text(self) -> str:
        """The allowed range in words: 'in [0, 1]', 'more than 0', 'at least 1'."""
        if self.min is not None and self.max is not None:
            left, right = "(" if self.min_open else "[", ")" if self.max_open else "]"
            return f"in {left}{self.min:g}, {self.max:g}{right}"
        if self.min is not None:
            return f"{'more than' if self.min_open else 'at least'} {self.min:g}"
        if self.max is not None:
            return f"{'less than' if self.max_open else 'at most'} {self.max:g}"
        return "any number"


@dataclass(frozen=True)
class Lowered:
    """What an op becomes in torch: a module (``call_module``) or a function (``call_function``).

    With ``parameter`` (a tensor), the node owns a bare parameter registered on its enclosing
    module under the node's own name (ConvNeXt's ``features.1.0.layer_scale``), passed to
    ``function`` before the inputs."""

    module: Any = None
    function: Callable[..., Any] | None = None
    extra_args: tuple[Any, ...] = ()
    parameter: Any = None
    # with ``item``, ``function`` returns several values and this node is the item-th: nodes that
    # call the same function on the same input share one call (ShuffleNet's x.chunk(2, dim=1))
    item: int | None = None


@dataclass(frozen=True)
class LowerContext:
    """Facts the lowering needs beyond attributes: input and output shapes, in-place safety."""

    in_shapes: list[Shape]
    out_shape: Shape
    inplace_ok: bool  # the first input may be overwritten: no other node reads it
    in_sequence: bool = False  # a numbered member of its container, as in an nn.Sequential


class Emitter(Protocol):
    """What an op's ONNX rule calls to write its nodes (exporters/onnx_native.py implements it;
    the rules name values only through it, so this table needs no onnx import)."""

    inputs: list[str]  # the value names of this node's inputs

    def node(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        """Add an ONNX node; returns its output's value name."""
        ...

    def param(self, leaf: str) -> str:
        """The initializer holding this node's state_dict entry ``leaf`` ('weight', 'bias'; ''
        for a bare parameter named as the node)."""
        ...

    def ints(self, values: list[int]) -> str:
        """An int64 constant (Slice starts, Pad pads)."""
        ...

    def floats(self, values: list[float]) -> str:
        """A float32 vector constant (Resize's scales)."""
        ...

    def scalar(self, value: float) -> str:
        """A float32 scalar constant (Clip's bounds, GELU's factors)."""
        ...

    @property
    def opset(self) -> int:
        """The opset being written (a rule may need a newer one than 13)."""
        ...


class NotExportable(Exception):
    """An op instance that ONNX cannot express exactly; the message says why."""


def _zero(a: Attrs, ins: list[Shape], out: Shape) -> int:
    return 0


def _unary(op_type: str) -> Callable[[Attrs, LowerContext, Emitter], str]:
    return lambda a, ctx, e: e.node(op_type, e.inputs)


@dataclass(frozen=True)
class InitContext:
    """Network-wide choices an op's initialisation rule reads."""

    zero_init_residual: bool = False  # zero the BN that ends each residual branch (Goyal 2017)


# the diagram categories an op may declare; exporters/graphviz.py gives each its look
DIAGRAM_KINDS = ("weight", "norm", "activation", "merge", "pool", "reshape")
Counter = Callable[[Attrs, list[Shape], Shape], int]


@dataclass(frozen=True, kw_only=True)
class Op:
    """A primitive op: everything the compiler, the exporters and the diagrams know about it.

    ``inputs`` is the (least, most) number of inputs, ``None`` meaning no upper bound. ``init``
    gives the module of an op with parameters or buffers its first values (it receives the torch
    module, the attributes and an :class:`InitContext`). ``fold`` and ``absorbs`` drive inference
    folding: an op with ``fold`` is a per-channel affine in eval mode, ``scale * x + shift``, whose
    (scale, shift) the rule computes from the op's state entries; an op with ``absorbs`` can take
    such an affine into its own weights and returns its attributes once it has (a bias added).
    """

    name: str
    doc: str
    attrs: dict[str, Attr]
    shape: Callable[[Attrs, list[Shape]], Shape]
    lower: Callable[[Attrs, LowerContext], Lowered]
    onnx: Callable[[Attrs, LowerContext, Emitter], str]  # emits the nodes; returns the output
    label: Callable[[Attrs, Shape], str]
    diagram: str  # one of DIAGRAM_KINDS
    inputs: tuple[int, int | None] = (1, 1)
    params: Counter = _zero
    macs: Counter = _zero
    init: Callable[[Any, Attrs, InitContext], None] | None = None
    fold: Callable[[Attrs, Callable[[str], Any]], tuple[Any, Any]] | None = None
    absorbs: Callable[[Attrs], Attrs] | None = None
    weighted: bool = False  # a "weight layer" in the paper's figures (conv, linear)
    # joins a residual branch and its shortcut: a block whose join gets an identity shortcut
    # explains a shape error by it, and diagrams draw the shortcut into it
    joins_shortcut: bool = False
    # its output is a fresh tensor that its own backward does not need, so the next op may
    # overwrite it in place (ReLU after BN, torchvision's `out += identity`); false for ops whose
    # backward reads their output (relu, sigmoid) or whose output aliases the input (views)
    fresh_output: bool = False
    # in eval mode its output is its input (dropout, stochastic depth): fresh when its input is
    passes_through: bool = False
    # its output is a view of its first input (flatten, permute, chunk, crop): no memory of its own
    view: bool = False
    # its module is a torch layer made by `bare`: storage allocated, nothing drawn, so it may be
    # built on the real device at once (compile builds the others on the meta device)
    bare: bool = False
    # whether, where no other node reads its first input, it writes into it (given the attributes
    # and the number of inputs): the memory analysis counts no new memory for it
    overwrites: Callable[[Attrs, int], bool] | None = None
    # it reads a token sequence [L, D] (attention), or a channels-last map (Swin's windows): a
    # block diagram of it is drawn on one
    sequence_input: bool = False
    channels_last_input: bool = False

    def arity_error(self, count: int) -> str | None:
        """Why ``count`` inputs do not fit this op ('add takes two or more inputs, got 1')."""
        least, most = self.inputs
        if least <= count and (most is None or count <= most):
            return None
        words = {1: "one", 2: "two", 3: "three"}
        need = (
            f"{words.get(least, least)} or more"
            if most is None
            else (words.get(least, str(least)) if least == most else f"{least} to {most}")
        )
        plural = "" if (least == most == 1) else "s"
        return f"{self.name} takes {need} input{plural}, got {count}"


# ---- shape helpers -------------------------------------------------------------------------


def _chw(ins: list[Shape], op: str) -> Shape:
    if isinstance(ins[0], ChannelsLast):
        raise ShapeError(
            f"{op} needs a [C, H, W] input, got the channels-last {list(ins[0])}",
            None,
            "permute it back first (permute, dims: [0, 3, 1, 2])",
        )
    if len(ins[0]) == 2:
        raise ShapeError(
            f"{op} needs a [C, H, W] input, got the token sequence [L, D] {list(ins[0])}",
            None,
            "a sequence goes through linear, layernorm, self_attention, select_token",
        )
    if len(ins[0]) != 3:
        raise ShapeError(f"{op} needs a [C, H, W] input, got {list(ins[0])}")
    return ins[0]


def _spatial(size: int, k: int, s: int, p: int, d: int = 1, ceil: bool = False) -> int:
    span = size + 2 * p - d * (k - 1) - 1
    out = (math.ceil(span / s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + p:  # PyTorch: the last window must start inside the input
        out -= 1
    return out


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


def _same(a: Attrs, ins: list[Shape]) -> Shape:
    return ins[0]


# ---- conv ----------------------------------------------------------------------------------


def _hw(value: int | tuple[int, int]) -> tuple[int, int]:
    """A size attribute as (height, width): a whole number is square, a pair is [h, w]."""
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def _conv_pad(a: Attrs) -> tuple[int, int]:
    if a["padding"] is not None:
        return _hw(a["padding"])
    kh, kw = _hw(a["kernel"])
    return ((kh - 1) // 2 * a["dilation"], (kw - 1) // 2 * a["dilation"])


def _size_text(value: int | tuple[int, int]) -> str:
    """'3x3' for a square size, '1x7' for a pair (height x width, as Inception's papers write)."""
    h, w = _hw(value)
    return f"{h}x{w}"


def _conv_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, h, w = _chw(ins, "conv")
    g = a["groups"]
    if c % g:
        raise ShapeError(f"groups {g} does not divide the {c} input channels", "groups")
    if a["out"] % g:
        raise ShapeError(f"groups {g} does not divide the {a['out']} output channels", "groups")
    (kh, kw), s, d, (ph, pw) = _hw(a["kernel"]), a["stride"], a["dilation"], _conv_pad(a)
    ho, wo = _spatial(h, kh, s, ph, d), _spatial(w, kw, s, pw, d)
    if ho < 1 or wo < 1:  # whatever the stride: the (dilated) kernel outgrows the padded input
        stride = f" with stride {s}" if s > 1 else ""
        raise ShapeError(
            f"{_size_text(a['kernel'])} conv{stride} shrinks {h}x{w} to {ho}x{wo}",
            "kernel",
            f"the kernel must fit the {h + 2 * ph}x{w + 2 * pw} padded input: the input is too "
            "small for this many downsamplings, or the kernel too large",
        )
    return (a["out"], ho, wo)


def _conv_params(a: Attrs, ins: list[Shape], out: Shape) -> int:
    weight = a["out"] * ins[0][0] // a["groups"] * math.prod(_hw(a["kernel"]))
    return weight + (a["out"] if a["bias"] else 0)


def _conv_macs(a: Attrs, ins: list[Shape], out: Shape) -> int:
    return math.prod(out) * ins[0][0] // a["groups"] * math.prod(_hw(a["kernel"]))


def _conv_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from torch import nn

    return Lowered(
        bare(
            nn.Conv2d,
            ctx.in_shapes[0][0],
            a["out"],
            a["kernel"],
            stride=a["stride"],
            padding=_conv_pad(a),
            dilation=a["dilation"],
            groups=a["groups"],
            bias=a["bias"],
        )
    )


def _weight_and_bias(a: Attrs, e: Emitter) -> list[str]:
    """The initializers of a conv, transposed conv or linear: its weight, and its bias if any."""
    return [e.param("weight")] + ([e.param("bias")] if a["bias"] else [])


def _conv_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
    s, d, (ph, pw) = a["stride"], a["dilation"], _conv_pad(a)
    return e.node(
        "Conv",
        [e.inputs[0], *_weight_and_bias(a, e)],
        kernel_shape=list(_hw(a["kernel"])),
        strides=[s, s],
        pads=[ph, pw, ph, pw],
        dilations=[d, d],
        group=a["groups"],
    )


def _conv_label(a: Attrs, out: Shape) -> str:
    extra = f", /{a['stride']}" if a["stride"] > 1 else ""
    extra += f", g{a['groups']}" if a["groups"] > 1 else ""
    extra += f", d{a['dilation']}" if a["dilation"] > 1 else ""
    return f"{_size_text(a['kernel'])} conv, {a['out']}{extra}"


# ---- the rest ------------------------------------------------------------------------------


def _bn_shape(a: Attrs, ins: list[Shape]) -> Shape:
    if len(ins[0]) == 3:
        return _chw(ins, "batchnorm")
    if len(ins[0]) < 1:
        raise ShapeError("batchnorm needs a channel dimension")
    return ins[0]


def _same_layout(ins: list[Shape], op: str) -> None:
    layouts = list(dict.fromkeys(_layout(s) for s in ins))
    if len(layouts) > 1:
        raise ShapeError(f"{op} of {layouts[0]} and {layouts[1]}")


def _bn_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from torch import nn

    c = ctx.in_shapes[0][0]
    cls = nn.BatchNorm2d if len(ctx.in_shapes[0]) == 3 else nn.BatchNorm1d
    return Lowered(bare(cls, c, eps=a["eps"], momentum=a["momentum"]))


def _bn_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
    stats = [e.param(k) for k in ("weight", "bias", "running_mean", "running_var")]
    return e.node("BatchNormalization", [e.inputs[0], *stats], epsilon=a["eps"])


def _linear_shape(a: Attrs, ins: list[Shape]) -> Shape:
    if isinstance(ins[0], ChannelsLast):  # a map, or groups of tokens: the same kind out
        return type(ins[0])((*ins[0][:-1], a["out"]))
    if len(ins[0]) == 3:
        raise ShapeError(
            f"linear acts on the last dimension; a [C, H, W] input {list(ins[0])} would mix "
            "its columns",
            None,
            "flatten first (global_avgpool + flatten), or permute to channels-last "
            "(permute, dims: [0, 2, 3, 1]) inside a block",
        )
    return (*ins[0][:-1], a["out"])


def _linear_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from torch import nn

    return Lowered(bare(nn.Linear, ctx.in_shapes[0][-1], a["out"], bias=a["bias"]))


def _linear_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
    weights = _weight_and_bias(a, e)
    if len(ctx.in_shapes[0]) == 1:
        return e.node("Gemm", [e.inputs[0], *weights], transB=1)
    return _matmul_nodes(e, e.inputs[0], *weights)


def _matmul_nodes(e: Emitter, x: str, weight: str, bias: str | None = None) -> str:
    """A linear layer on [N, ..., C] (channels-last, a sequence, windows): MatMul with the
    transposed [out, in] weight, then the bias if any."""
    out = e.node("MatMul", [x, e.node("Transpose", [weight], perm=[1, 0])])
    return e.node("Add", [out, bias]) if bias is not None else out


def _linear_macs(a: Attrs, ins: list[Shape], out: Shape) -> int:
    return math.prod(ins[0]) * a["out"]


def _permute_shape(a: Attrs, ins: list[Shape]) -> Shape:
    dims, rank = a["dims"], len(ins[0]) + 1
    if sorted(dims) != list(range(rank)):
        raise ShapeError(
            f"dims {list(dims)} is not an order of the {rank} dimensions of a "
            f"[N, {', '.join(map(str, ins[0]))}] input",
            "dims",
        )
    if dims[0] != 0:
        raise ShapeError(f"dims {list(dims)} moves the batch dimension; it must stay first", "dims")
    out = tuple(ins[0][d - 1] for d in dims[1:])
    if isinstance(ins[0], Groups):
        raise ShapeError(
            f"dims {list(dims)} on groups of tokens {list(ins[0])}",
            "dims",
            "op: departition makes them a [C, H, W] map again",
        )
    if isinstance(ins[0], ChannelsLast):
        # back to [C, H, W] only by the inverse order; anything else is no layout netc knows
        back = list(dims) == [0, 3, 1, 2]
        if not back:
            raise ShapeError(
                f"dims {list(dims)} on a channels-last value; [0, 3, 1, 2] turns it back", "dims"
            )
        return out
    return ChannelsLast(out) if list(dims) == [0, 2, 3, 1] and len(out) == 3 else out


def _permute_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from . import modules

    return Lowered(modules.Permute(list(a["dims"])))


def _layernorm_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from torch import nn

    return Lowered(bare(nn.LayerNorm, ctx.in_shapes[0][-1], eps=a["eps"]))


def _layernorm2d_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from . import modules

    return Lowered(modules.LayerNorm2d(ctx.in_shapes[0][0], eps=a["eps"]))


def _layernorm_nodes(a: Attrs, e: Emitter, x: str) -> str:
    if e.opset < 17:
        raise NotExportable("layer norm needs opset 17 (LayerNormalization) or newer")
    return e.node(
        "LayerNormalization", [x, e.param("weight"), e.param("bias")], axis=-1, epsilon=a["eps"]
    )


def _layernorm2d_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
    x = e.node("Transpose", e.inputs, perm=[0, 2, 3, 1])
    return e.node("Transpose", [_layernorm_nodes(a, e, x)], perm=[0, 3, 1, 2])


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


def _add_shape(a: Attrs, ins: list[Shape]) -> Shape:
    _same_layout(ins, "add")
    if any(s != ins[0] for s in ins[1:]):
        got = " and ".join(str(list(s)) for s in ins)
        raise ShapeError(f"add needs equal shapes, got {got}")
    return ins[0]


def _add_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    import operator

    from . import modules

    if len(ctx.in_shapes) > 2:
        return Lowered(function=modules.add_all)
    # in place (torchvision's `out += identity`) when nothing else reads the first input
    return Lowered(function=operator.iadd if a["inplace"] and ctx.inplace_ok else operator.add)


def _add_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
    return e.node("Add" if len(e.inputs) == 2 else "Sum", e.inputs)


def _mul_shape(a: Attrs, ins: list[Shape]) -> Shape:
    _same_layout(ins, "mul")
    x, y = ins
    if len(x) != len(y) or any(p != q and q != 1 for p, q in zip(x, y, strict=True)):
        raise ShapeError(f"mul cannot broadcast {list(y)} onto {list(x)}")
    return x


def _mul_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    import operator

    return Lowered(function=operator.mul)


def _concat_shape(a: Attrs, ins: list[Shape]) -> Shape:
    for s in ins:
        _chw([s], "concat")
    sizes = {tuple(s[1:]) for s in ins}
    if len(sizes) > 1:
        got = ", ".join("x".join(map(str, s[1:])) for s in ins)
        raise ShapeError(
            f"concat needs inputs of one spatial size, got {got}",
            None,
            "crop or pool the larger ones first",
        )
    return (sum(s[0] for s in ins), *ins[0][1:])


def _concat_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from . import modules

    return Lowered(function=modules.concat)


def _mean_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from . import modules

    return Lowered(function=modules.spatial_mean)


def _mean_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
    return e.node("Flatten", [e.node("GlobalAveragePool", e.inputs)], axis=1)


def _tconv_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, h, w = _chw(ins, "conv_transpose")
    g, k, s, p = a["groups"], a["kernel"], a["stride"], a["padding"]
    if c % g or a["out"] % g:
        raise ShapeError(f"groups {g} does not divide {c} in and {a['out']} out channels", "groups")
    ho, wo = (h - 1) * s - 2 * p + k, (w - 1) * s - 2 * p + k
    if ho < 1 or wo < 1:
        raise ShapeError(f"padding {p} leaves {ho}x{wo} of {h}x{w}", "padding")
    return (a["out"], ho, wo)


def _tconv_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from torch import nn

    return Lowered(
        bare(
            nn.ConvTranspose2d,
            ctx.in_shapes[0][0],
            a["out"],
            a["kernel"],
            stride=a["stride"],
            padding=a["padding"],
            groups=a["groups"],
            bias=a["bias"],
        )
    )


def _tconv_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
    k, s, p = a["kernel"], a["stride"], a["padding"]
    return e.node(
        "ConvTranspose",
        [e.inputs[0], *_weight_and_bias(a, e)],
        kernel_shape=[k, k],
        strides=[s, s],
        pads=[p] * 4,
        group=a["groups"],
    )


def _tconv_macs(a: Attrs, ins: list[Shape], out: Shape) -> int:
    # every input position scatters its kernel: PyTorch's FlopCounterMode counts the same
    return math.prod(ins[0]) * a["out"] // a["groups"] * a["kernel"] ** 2


def _crop_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, h, w = _chw(ins, "crop")
    _, th, tw = _chw(ins[1:], "crop")
    if th > h or tw > w:
        raise ShapeError(
            f"crop of {h}x{w} to {th}x{tw}: the reference is larger than the input",
            None,
            "crop reads [map, reference]: the larger map comes first",
        )
    return (c, th, tw)


def _crop_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from . import modules

    return Lowered(function=modules.center_crop)


def _crop_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
    (_, h, w), (_, th, tw) = ctx.in_shapes[0], ctx.in_shapes[1]
    top, left = (h - th) // 2, (w - tw) // 2
    return e.node(
        "Slice",
        [e.inputs[0], e.ints([top, left]), e.ints([top + th, left + tw]), e.ints([2, 3])],
    )


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


def _upsample_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
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


def _chunk_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, h, w = _chw(ins, "chunk")
    n = a["chunks"]
    if c % n:
        raise ShapeError(f"{n} chunks do not divide the {c} channels", "chunks")
    if a["index"] >= n:
        raise ShapeError(f"index {a['index']} of {n} chunks (they count from 0)", "index")
    return (c // n, h, w)


def _chunk_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    import torch

    return Lowered(function=torch.chunk, extra_args=(a["chunks"], 1), item=a["index"])


def _chunk_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
    size = ctx.out_shape[0]
    start = a["index"] * size
    return e.node("Slice", [e.inputs[0], e.ints([start]), e.ints([start + size]), e.ints([1])])


# ImageNet's per-channel mean and std, as torchvision's transform_input writes them
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _transform_input_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, _, _ = _chw(ins, "transform_input")
    if c != 3:
        raise ShapeError(f"transform_input renormalises the 3 channels of an RGB image, got {c}")
    return ins[0]


def _transform_input_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from . import modules

    return Lowered(function=modules.transform_input)


def _transform_input_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
    # x * (std / 0.5) + (mean - 0.5) / 0.5 per channel: one float32 multiply and one add per
    # element, as in torch, so the values are the same
    scale = e.floats([s / 0.5 for s in IMAGENET_STD])
    shift = e.floats([(m - 0.5) / 0.5 for m in IMAGENET_MEAN])
    shape = e.ints([3, 1, 1])
    scaled = e.node("Mul", [e.inputs[0], e.node("Reshape", [scale, shape])])
    return e.node("Add", [scaled, e.node("Reshape", [shift, shape])])


def _shuffle_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, _, _ = _chw(ins, "channel_shuffle")
    if c % a["groups"]:
        raise ShapeError(f"groups {a['groups']} does not divide the {c} channels", "groups")
    return ins[0]


def _shuffle_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from . import modules

    return Lowered(function=modules.channel_shuffle, extra_args=(a["groups"],))


def _shuffle_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
    c, h, w = ctx.in_shapes[0]
    g = a["groups"]
    grouped = e.node("Reshape", [e.inputs[0], e.ints([0, g, c // g, h, w])])
    swapped = e.node("Transpose", [grouped], perm=[0, 2, 1, 3, 4])
    return e.node("Reshape", [swapped, e.ints([0, c, h, w])])


def _pad_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, h, w = _chw(ins, "pad_channels")
    if a["out"] < c:
        raise ShapeError(f"pad_channels cannot shrink {c} channels to {a['out']}", "out")
    s = a["stride"]
    return (a["out"], -(-h // s), -(-w // s))


def _pad_split(a: Attrs, ctx: LowerContext) -> tuple[int, int]:
    """The zero channels added before and after the existing ones."""
    extra = a["out"] - ctx.in_shapes[0][0]
    front = extra // 2 if a["mode"] == "both" else 0
    return front, extra - front


def _pad_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from . import modules

    return Lowered(modules.PadChannels(a["stride"], *_pad_split(a, ctx)))


def _pad_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
    x, s = e.inputs[0], a["stride"]
    if s > 1:  # x[:, :, ::s, ::s]
        x = e.node(
            "Slice", [x, e.ints([0, 0]), e.ints([2**63 - 1] * 2), e.ints([2, 3]), e.ints([s, s])]
        )
    front, back = _pad_split(a, ctx)
    return e.node("Pad", [x, e.ints([0, front, 0, 0, 0, back, 0, 0])], mode="constant")


def _module(
    factory: Callable[[Attrs, LowerContext], Any],
) -> Callable[[Attrs, LowerContext], Lowered]:
    return lambda a, ctx: Lowered(factory(a, ctx))


def _nn(name: str, *args: Any, **kw: Any) -> Any:
    from torch import nn

    return getattr(nn, name)(*args, **kw)


_UNINITIALISED: dict[type, type] = {}
_PROTOTYPES: dict[tuple[Any, ...], _Prototype] = {}


def bare(cls: type, *args: Any, **kw: Any) -> Any:
    """``cls(*args, **kw)`` for a torch.nn layer without children (conv, BN, linear, layer
    norm), without PyTorch's default initialisation: an instance of ``cls`` itself, its tensors
    allocated (on the current default device) but not filled. Every weight the lowering makes is
    given its value by the op's init rule (compiler.initialise), so the constructor's own init
    would be thrown away; and the layers of a network repeat a few configurations, so each is
    constructed once and copied (a network's layers cost half of what constructing them does)."""
    key = (cls, args, tuple(sorted(kw.items())))
    proto = _PROTOTYPES.get(key)
    if proto is None:
        import torch

        quiet = _UNINITIALISED.get(cls)
        if quiet is None:
            quiet = type(cls.__name__, (cls,), {"reset_parameters": lambda self: None})
            _UNINITIALISED[cls] = quiet
        # on the meta device: the prototype's tensors would be freed at once, and glibc raises
        # its mmap threshold to the largest block freed, so every later weight of that size or
        # less would land in the heap instead of pages of its own (unlike torchvision's model),
        # which moves where the forward's activations go and how often they fault
        with torch.device("meta"):
            layer = quiet(*args, **kw)
        layer.__class__ = cls
        assert not layer._modules, cls  # a copy shares nothing but immutable values
        proto = _Prototype(layer)
        if len(_PROTOTYPES) >= 4096:
            _PROTOTYPES.clear()
        _PROTOTYPES[key] = proto
    return proto.copy()


class _Prototype:
    """A layer to copy: what its copies share (immutable values), what each gets its own of."""

    def __init__(self, layer: Any) -> None:
        self.cls = type(layer)
        self.state = dict(vars(layer))
        # containers copied per layer (hooks, _parameters, _buffers, ...)
        self.containers = [k for k, v in self.state.items() if isinstance(v, (dict, set, list))]
        self.parameters = [
            (k, None if p is None else (p.shape, p.dtype, p.requires_grad))
            for k, p in layer._parameters.items()
        ]
        self.buffers = [
            (k, None if b is None else (b.shape, b.dtype)) for k, b in layer._buffers.items()
        ]
        # the prototype keeps shapes, not tensors: each copy gets its own
        self.state["_parameters"] = self.state["_buffers"] = {}

    def copy(self) -> Any:
        """A layer like the prototype: its containers copied, its tensors new and empty."""
        import torch
        from torch import nn

        state = self.state.copy()
        for k in self.containers:
            state[k] = state[k].copy()
        state["_parameters"] = {
            k: None
            if spec is None
            else nn.Parameter(torch.empty(spec[0], dtype=spec[1]), requires_grad=spec[2])
            for k, spec in self.parameters
        }
        state["_buffers"] = {
            k: None if spec is None else torch.empty(spec[0], dtype=spec[1])
            for k, spec in self.buffers
        }
        module = object.__new__(self.cls)
        module.__dict__.update(state)
        return module


def _flatten_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    # torchvision's forwards call torch.flatten (so `children()[:-1]` of a ResNet ends at its
    # pool), but a Sequential holds an nn.Flatten (ConvNeXt's classifier[1], so classifier[2]
    # indexes as there): a numbered member is the module; the aten ops are the same
    if ctx.in_sequence:
        return Lowered(_nn("Flatten", 1))
    import torch

    return Lowered(function=torch.flatten, extra_args=(1,))


def _adaptive_shape(a: Attrs, ins: list[Shape]) -> Shape:
    return (_chw(ins, "adaptive_avgpool")[0], a["size"], a["size"])


def _adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling windows along one axis: [floor(i*n/o), ceil((i+1)*n/o))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _adaptive_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
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


def _global_pool_shape(a: Attrs, ins: list[Shape]) -> Shape:
    return (_chw(ins, "global_avgpool")[0], 1, 1)


def _pool_op(name: str, kind: str, module: str, onnx_type: str, extra: dict[str, Attr]) -> Op:
    """maxpool and avgpool: the same attributes, shape rule and label; a different nn module."""

    def lower(a: Attrs, ctx: LowerContext) -> Lowered:
        kwargs = {k: a[k] for k in extra}
        stride = a["stride"] or a["kernel"]
        return Lowered(
            _nn(module, a["kernel"], stride, a["padding"], ceil_mode=a["ceil_mode"], **kwargs)
        )

    def onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
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


def _activation(
    name: str,
    doc: str,
    module: str,
    *,
    onnx: Callable[[Attrs, LowerContext, Emitter], str],
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


def _stochastic_depth_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from . import modules

    return Lowered(modules.StochasticDepth(a["p"], a["mode"]))


def _relu6_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
    return e.node("Clip", [e.inputs[0], e.scalar(0.0), e.scalar(6.0)])


def _hsig_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
    return e.node("HardSigmoid", e.inputs, alpha=1 / 6, beta=0.5)


def _hardswish_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
    # HardSwish is opset 14; x * HardSigmoid(x) is the same function from opset 6 on
    gate = e.node("HardSigmoid", e.inputs, alpha=1 / 6, beta=0.5)
    return e.node("Mul", [e.inputs[0], gate])


def _silu(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
    return e.node("Mul", [e.inputs[0], e.node("Sigmoid", e.inputs)])


def _gelu(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
    # ONNX's Gelu is opset 20: 0.5 * x * (1 + erf(x / sqrt(2))), as torch computes it
    x = e.inputs[0]
    erf = e.node("Erf", [e.node("Div", [x, e.scalar(math.sqrt(2.0))])])
    half_x = e.node("Mul", [x, e.scalar(0.5)])
    return e.node("Mul", [half_x, e.node("Add", [erf, e.scalar(1.0)])])


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


_INPLACE = Attr(
    kind="bool",
    default=True,
    doc="overwrite the input where no other node reads it; false keeps a separate output "
    "(torchvision's squeeze-excitation activations)",
)

# a layer norm over one value divides 0 by sqrt(eps): an eps that float32 rounds to 0 gives NaN
_LN_EPS = Attr(
    kind="float", default=1e-5, min=1.2e-38, doc="added to the variance; a float32 number"
)

_POOL_ATTRS = {
    "kernel": Attr(kind="int", min=1, doc="window size"),
    "stride": Attr(kind="int", default=0, min=0, doc="step; 0 means the kernel size"),
    "padding": Attr(kind="int", default=0, min=0, doc="at most half the kernel"),
    "ceil_mode": Attr(kind="bool", default=False, doc="round the output size up"),
}


# ---- token sequences (vision transformers) --------------------------------------------------


def _tokens_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, h, w = _chw(ins, "tokens")
    return (h * w, c)


def _tokens_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from . import modules

    return Lowered(function=modules.to_tokens)


def _tokens_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
    c, h, w = ctx.in_shapes[0]
    flat = e.node("Reshape", [e.inputs[0], e.ints([0, c, h * w])])
    return e.node("Transpose", [flat], perm=[0, 2, 1])


def _sequence(ins: list[Shape], op: str) -> Shape:
    if len(ins[0]) != 2:
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

    from . import modules

    dim = ctx.in_shapes[0][1]
    return Lowered(function=modules.prepend_token, parameter=torch.zeros(1, 1, dim))


def _class_token_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
    dim = ctx.in_shapes[0][1]
    batch = e.node("Slice", [e.node("Shape", e.inputs), e.ints([0]), e.ints([1])])
    shape = e.node("Concat", [batch, e.ints([1, dim])], axis=0)
    token = e.node("Expand", [e.param(""), shape])
    return e.node("Concat", [token, e.inputs[0]], axis=1)


def _init_zeros(m: Any, a: Attrs, ctx: InitContext) -> None:
    """Zeros (ViT's class token)."""
    from torch import nn

    nn.init.zeros_(m)


def _pos_embedding_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    import torch

    from . import modules

    return Lowered(function=modules.add_embedding, parameter=torch.zeros(1, *ctx.in_shapes[0]))


def _init_pos_embedding(m: Any, a: Attrs, ctx: InitContext) -> None:
    """Normal, std 0.02 (ViT's position embedding, from BERT)."""
    from torch import nn

    nn.init.normal_(m, std=0.02)


def _select_token_shape(a: Attrs, ins: list[Shape]) -> Shape:
    length, dim = _sequence(ins, "select_token")
    if a["index"] >= length:
        raise ShapeError(
            f"token {a['index']} is past the end of a sequence of {length} (0 to {length - 1})",
            "index",
        )
    return (dim,)


def _select_token_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from . import modules

    return Lowered(function=modules.select_token, extra_args=(a["index"],))


def _select_token_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
    token = e.node("Gather", [e.inputs[0], e.ints([a["index"]])], axis=1)  # [N, 1, D]
    return e.node("Squeeze", [token, e.ints([1])])


def _attention_shape(a: Attrs, ins: list[Shape]) -> Shape:
    _, dim = _sequence(ins, "self_attention")
    if dim % a["heads"]:
        raise ShapeError(f"{a['heads']} heads do not divide the width {dim}", "heads")
    return ins[0]


def _attention_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from . import modules

    dim = ctx.in_shapes[0][1]
    return Lowered(modules.SelfAttention(dim, a["heads"], dropout=a["dropout"]))


def _attention_macs(a: Attrs, ins: list[Shape], out: Shape) -> int:
    # the q, k, v and output projections (4 L D^2), then q k^T and the weights times v (2 L^2 D):
    # torchvision's weights meta counts the same
    length, dim = ins[0]
    return 4 * length * dim * dim + 2 * length * length * dim


def _attention_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
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


# ---- Swin: windows on a channels-last map ---------------------------------------------------


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


def _patch_merging_shape(a: Attrs, ins: list[Shape]) -> Shape:
    h, w, c = _channels_last(ins, "patch_merging")
    return ChannelsLast(((h + 1) // 2, (w + 1) // 2, 2 * c))


def _patch_merging_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from . import modules

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


def _patch_merging_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
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


def _roll(e: Emitter, x: str, shift: int, axis: int, size: int) -> str:
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


def _normalize(e: Emitter, x: str) -> str:
    """F.normalize over the last axis: x / max(||x||_2, 1e-12)."""
    squares = e.node("ReduceSum", [e.node("Mul", [x, x]), e.ints([-1])], keepdims=1)
    return e.node("Div", [x, e.node("Max", [e.node("Sqrt", [squares]), e.scalar(1e-12)])])


def _position_bias(e: Emitter, n: int, heads: int, cosine: bool) -> str:
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


def _windows_onnx(a: Attrs, ctx: LowerContext, e: Emitter, cosine: bool) -> str:
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
    from . import modules

    return Lowered(function=modules.partition, extra_args=(a["size"], a["kind"] == "grid"))


def _partition_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
    c, h, w = ctx.in_shapes[0]
    p = _partition_tokens(a, h)
    x = e.node("Reshape", [e.inputs[0], e.ints([-1, c, h // p, p, w // p, p])])
    x = e.node("Transpose", [x], perm=[0, 2, 4, 3, 5, 1])
    x = e.node("Reshape", [x, e.ints([-1, (h // p) * (w // p), p * p, c])])
    return e.node("Transpose", [x], perm=[0, 2, 1, 3]) if a["kind"] == "grid" else x


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
    from . import modules

    return Lowered(function=modules.departition, extra_args=(a["size"], a["kind"] == "grid"))


def _departition_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
    c, h, w = ctx.out_shape
    p = _partition_tokens(a, h)
    x = e.inputs[0]
    if a["kind"] == "grid":
        x = e.node("Transpose", [x], perm=[0, 2, 1, 3])
    x = e.node("Reshape", [x, e.ints([-1, h // p, w // p, p, p, c])])
    x = e.node("Transpose", [x], perm=[0, 5, 1, 3, 2, 4])
    return e.node("Reshape", [x, e.ints([-1, c, h, w])])


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
    from . import modules

    _, tokens, c = ctx.in_shapes[0]
    return Lowered(modules.RelativeAttention(c, a["head_dim"], tokens))


def _relative_attention_onnx(a: Attrs, ctx: LowerContext, e: Emitter) -> str:
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


# ---- initialisation and folding rules (torch imported lazily) ------------------------------


# GoogLeNet's and Inception v3's rules 'trunc_normal_<std>': a normal of that std truncated at
# +-2 (absolute); 0.1 is Inception v3's default, 0.01 GoogLeNet's, 0.001 Inception's aux fc
_INCEPTION_STDS = ("0.1", "0.01", "0.001")


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
        fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        nn.init.trunc_normal_(m.weight, std=(1 / fan_in) ** 0.5)
    elif rule == "normal":
        nn.init.normal_(m.weight, 0.0, 0.01)
    elif rule == "normal_0.02":  # MaxViT
        nn.init.normal_(m.weight, std=0.02)
    elif rule == "kaiming_uniform":
        nn.init.kaiming_uniform_(m.weight)
    elif rule == "kaiming_fan_in":
        nn.init.kaiming_normal_(m.weight)
    else:
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    if m.bias is not None and rule != "kaiming":
        nn.init.zeros_(m.bias)


def _init_bn(m: Any, a: Attrs, ctx: InitContext) -> None:
    """Weight 1, bias 0, running mean 0 / var 1; weight 0 for a branch end under
    zero_init_residual (each block then starts as the identity, Goyal et al. 2017)."""
    from torch import nn

    m.reset_parameters()
    if ctx.zero_init_residual and a["zero_init"]:
        nn.init.zeros_(m.weight)


def _init_default(m: Any, a: Attrs, ctx: InitContext) -> None:
    """PyTorch's own default (torchvision's ResNet leaves its linear layers so)."""
    m.reset_parameters()


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


def _bn_fold(a: Attrs, state: Callable[[str], Any]) -> tuple[Any, Any]:
    """Eval-mode BN as scale * x + shift: scale = g / sqrt(v + eps), shift = b - m * scale."""
    import torch

    scale = state("weight") / torch.sqrt(state("running_var") + a["eps"])
    return scale, state("bias") - state("running_mean") * scale


# the op a dense stage (connect: dense) ends in: its input and every block's output, joined
DENSE_JOIN = "concat"
# the ops that make a token sequence, or a channels-last map, of a [C, H, W] map: a block of a
# transformer is drawn on their output
TOKENS = "tokens"
PERMUTE = "permute"


def _window_attention_op(cosine: bool) -> Op:
    """Swin's window attention (torchvision's ShiftedWindowAttention), or with ``cosine`` Swin
    V2's (ShiftedWindowAttentionV2): the same windows, shifts and attributes; V2 scores by
    scaled cosine similarity and computes its position bias with a small MLP."""
    module = "WindowAttentionV2" if cosine else "WindowAttention"

    def lower(a: Attrs, ctx: LowerContext) -> Lowered:
        from . import modules

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


OPS: dict[str, Op] = {
    op.name: op
    for op in [
        Op(
            name="conv",
            doc="2-D convolution; padding defaults to dilation * (kernel - 1) // 2",
            attrs={
                "out": Attr(kind="int", min=1, doc="output channels"),
                "kernel": Attr(kind="size", min=1, doc="kernel size: n (square) or [h, w]"),
                "stride": Attr(kind="int", default=1, min=1),
                "padding": Attr(
                    kind="size",
                    default=None,
                    min=0,
                    doc="n or [h, w]; null: 'same' for stride 1",
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
                        "normal",
                        "normal_0.02",
                        "trunc_normal",
                        *(f"trunc_normal_{std}" for std in _INCEPTION_STDS),
                        "lecun_trunc_normal",
                        "default",
                    ),
                    doc="torchvision's rule of the family: kaiming (ResNet, RegNet), "
                    "kaiming_zero_bias (MobileNet, EfficientNet, VGG, MNASNet), kaiming_fan_in "
                    "(DenseNet), kaiming_uniform and normal (SqueezeNet), trunc_normal "
                    "(ConvNeXt), default (PyTorch's: AlexNet, ShuffleNet), trunc_normal_0.01 "
                    "(GoogLeNet), trunc_normal_0.1 (Inception v3), lecun_trunc_normal (ViT), "
                    "normal_0.02 (MaxViT)",
                ),
            },
            shape=_conv_shape,
            lower=_conv_lower,
            bare=True,
            onnx=_conv_onnx,
            label=_conv_label,
            diagram="weight",
            params=_conv_params,
            macs=_conv_macs,
            init=_init_conv,
            absorbs=lambda a: {**a, "bias": True},
            weighted=True,
            fresh_output=True,
        ),
        Op(
            name="batchnorm",
            doc="batch normalisation over channels (affine, running statistics)",
            attrs={
                "eps": Attr(kind="float", default=1e-5, min=0, min_open=True),
                "momentum": Attr(kind="float", default=0.1, min=0, max=1),
                "zero_init": Attr(
                    kind="bool",
                    default=False,
                    doc="ends a residual branch: zeroed by zero_init_residual",
                ),
            },
            shape=_bn_shape,
            lower=_bn_lower,
            bare=True,
            onnx=_bn_onnx,
            label=lambda a, o: "BN",
            diagram="norm",
            params=lambda a, ins, o: 2 * ins[0][0],
            init=_init_bn,
            fold=_bn_fold,
            fresh_output=True,
        ),
        Op(
            name="relu",
            doc="rectified linear unit (in place where no other node reads its input)",
            attrs={"inplace": _INPLACE},
            shape=_same,
            lower=_module(lambda a, ctx: _nn("ReLU", inplace=a["inplace"] and ctx.inplace_ok)),
            onnx=_unary("Relu"),
            label=lambda a, o: "ReLU",
            diagram="activation",
            overwrites=lambda a, n: bool(a["inplace"]),
        ),
        _activation(
            "relu6",
            "min(max(x, 0), 6) (MobileNetV2)",
            "ReLU6",
            inplace=True,
            onnx=_relu6_onnx,
            label="ReLU6",
        ),
        _activation(
            "hardswish",
            "x * relu6(x + 3) / 6 (MobileNetV3)",
            "Hardswish",
            inplace=True,
            onnx=_hardswish_onnx,
            label="h-swish",
        ),
        _activation(
            "hardsigmoid",
            "relu6(x + 3) / 6 (MobileNetV3's gates)",
            "Hardsigmoid",
            onnx=_hsig_onnx,
            label="h-sigmoid",
        ),
        _activation(
            "silu",
            "x * sigmoid(x), a.k.a. swish (EfficientNet)",
            "SiLU",
            inplace=True,
            onnx=_silu,
            label="SiLU",
        ),
        _activation(
            "gelu",
            "x * Phi(x), the exact (erf) form (ConvNeXt, ViT)",
            "GELU",
            onnx=_gelu,
            label="GELU",
        ),
        _elementwise("sigmoid", "logistic sigmoid", "Sigmoid", "Sigmoid"),
        _elementwise("tanh", "hyperbolic tangent (MaxViT's classifier)", "Tanh", "Tanh"),
        Op(
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
        ),
        _elementwise("identity", "passes its input through", "Identity", "Identity", view=True),
        Op(
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
            lower=_module(
                lambda a, ctx: _nn("Dropout", a["p"], inplace=a["inplace"] and ctx.inplace_ok)
            ),
            onnx=_unary("Identity"),  # exported for inference, where dropout passes through
            label=lambda a, o: f"dropout {a['p']}",
            diagram="activation",
            view=True,
            passes_through=True,
        ),
        Op(
            name="add",
            doc="element-wise sum of two or more equal shapes (the residual addition)",
            attrs={
                "inplace": Attr(
                    kind="bool",
                    default=True,
                    doc="add into the first input where no other node reads it (torchvision's "
                    "`out += identity`); false: a new tensor (MobileNetV2's `x + conv(x)`)",
                )
            },
            shape=_add_shape,
            lower=_add_lower,
            onnx=_add_onnx,
            label=lambda a, o: "+",
            diagram="merge",
            inputs=(2, None),
            joins_shortcut=True,
            fresh_output=True,
            overwrites=lambda a, n: bool(a["inplace"]) and n == 2,
        ),
        Op(
            name="mul",
            doc="element-wise product; the second input may broadcast (size-1 dims)",
            attrs={},
            shape=_mul_shape,
            lower=_mul_lower,
            onnx=_unary("Mul"),
            label=lambda a, o: "×",
            diagram="merge",
            inputs=(2, 2),
            fresh_output=True,
        ),
        Op(
            name="conv_transpose",
            doc="2-D transposed convolution, out = (in - 1) * stride - 2 * padding + kernel "
            "(the U-Net's 2x2 up-convolution)",
            attrs={
                "out": Attr(kind="int", min=1, doc="output channels"),
                "kernel": Attr(kind="int", min=1, doc="square kernel size"),
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
            label=lambda a, o: f"{a['kernel']}x{a['kernel']} up-conv, {a['out']}, x{a['stride']}",
            diagram="weight",
            params=_conv_params,  # [in, out / groups, k, k] holds as many as a conv's
            macs=_tconv_macs,
            init=_init_conv,
            weighted=True,
            fresh_output=True,
        ),
        Op(
            name="crop",
            doc="the centre of the first input at the second's height and width (the U-Net's "
            "copy-and-crop)",
            attrs={},
            shape=_crop_shape,
            lower=_crop_lower,
            onnx=_crop_onnx,
            label=lambda a, o: f"crop to {o[1]}x{o[2]}",
            diagram="reshape",
            inputs=(2, 2),
            view=True,
        ),
        Op(
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
        ),
        Op(
            name="chunk",
            doc="one of 'chunks' equal pieces of the channels (torch.chunk along channels); "
            "the pieces of one value taken by several nodes come from one call (ShuffleNetV2)",
            attrs={
                "chunks": Attr(kind="int", min=1, doc="how many pieces; divides the channels"),
                "index": Attr(kind="int", default=0, min=0, doc="which piece, from 0"),
            },
            shape=_chunk_shape,
            lower=_chunk_lower,
            onnx=_chunk_onnx,
            label=lambda a, o: f"chunk {a['index'] + 1}/{a['chunks']}",
            diagram="reshape",
            view=True,
        ),
        Op(
            name="channel_shuffle",
            doc="ShuffleNet's channel shuffle in 'groups' groups (view, transpose, view)",
            attrs={"groups": Attr(kind="int", min=1, doc="divides the channels")},
            shape=_shuffle_shape,
            lower=_shuffle_lower,
            onnx=_shuffle_onnx,
            label=lambda a, o: f"channel shuffle, g{a['groups']}",
            diagram="reshape",
        ),
        Op(
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
        ),
        Op(
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
        ),
        Op(
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
        ),
        Op(
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
        ),
        Op(
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
        ),
        _window_attention_op(cosine=False),
        _window_attention_op(cosine=True),
        Op(
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
            params=_patch_merging_params,
            macs=lambda a, ins, o: math.prod(o) * 4 * ins[0][2],
            init=_init_patch_merging,
            weighted=True,
            fresh_output=True,
            channels_last_input=True,
        ),
        Op(
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
        ),
        Op(
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
        ),
        Op(
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
        ),
        Op(
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
        ),
        Op(
            name="concat",
            doc="concatenation along channels of one or more maps of one spatial size "
            "(DenseNet, Inception, SqueezeNet's Fire, the U-Net's skips)",
            attrs={},
            shape=_concat_shape,
            lower=_concat_lower,
            onnx=lambda a, ctx, e: e.node("Concat", e.inputs, axis=1),
            label=lambda a, o: "C",  # the papers' circled C (U-Net, DenseNet figures)
            diagram="merge",
            inputs=(1, None),
            fresh_output=True,
        ),
        _pool_op("maxpool", "max", "MaxPool2d", "MaxPool", {}),
        _pool_op(
            "avgpool",
            "average",
            "AvgPool2d",
            "AveragePool",
            {"count_include_pad": Attr(kind="bool", default=True)},
        ),
        Op(
            name="global_avgpool",
            doc="average over all positions: [C, H, W] -> [C, 1, 1]",
            attrs={},
            shape=_global_pool_shape,
            lower=_module(lambda a, ctx: _nn("AdaptiveAvgPool2d", (1, 1))),
            onnx=_unary("GlobalAveragePool"),
            label=lambda a, o: "global avg pool",
            diagram="pool",
            fresh_output=True,
        ),
        Op(
            name="adaptive_avgpool",
            doc="average pooling to a size x size output (VGG's 7x7, AlexNet's 6x6), PyTorch's "
            "windows",
            attrs={"size": Attr(kind="int", min=1, doc="output height and width")},
            shape=_adaptive_shape,
            lower=_module(lambda a, ctx: _nn("AdaptiveAvgPool2d", a["size"])),
            onnx=_adaptive_onnx,
            label=lambda a, o: f"adaptive avg pool {a['size']}x{a['size']}",
            diagram="pool",
            fresh_output=True,
        ),
        Op(
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
        ),
        Op(
            name="flatten",
            doc="flattens all dimensions after the batch",
            attrs={},
            shape=lambda a, ins: (math.prod(ins[0]),),
            lower=_flatten_lower,
            onnx=lambda a, ctx, e: e.node("Flatten", e.inputs, axis=1),
            label=lambda a, o: "flatten",
            diagram="reshape",
            view=True,
        ),
        Op(
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
        ),
        Op(
            name="permute",
            doc="reorders the dimensions, batch included ([0, 2, 3, 1]: channels-last), as "
            "torchvision's Permute",
            attrs={"dims": Attr(kind="ints", doc="the new order of the dimensions, batch first")},
            shape=_permute_shape,
            lower=_permute_lower,
            onnx=lambda a, ctx, e: e.node("Transpose", e.inputs, perm=list(a["dims"])),
            label=lambda a, o: "permute " + "".join(map(str, a["dims"])),
            diagram="reshape",
            view=True,
        ),
        Op(
            name="layernorm",
            doc="layer normalisation over the last dimension (channels-last), affine",
            attrs={"eps": _LN_EPS},
            shape=_same,
            lower=_layernorm_lower,
            bare=True,
            onnx=lambda a, ctx, e: _layernorm_nodes(a, e, e.inputs[0]),
            label=lambda a, o: "LN",
            diagram="norm",
            params=lambda a, ins, o: 2 * ins[0][-1],
            init=_init_default,
            fresh_output=True,
        ),
        Op(
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
        ),
        Op(
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
        ),
        Op(
            name="pad_channels",
            doc="option-A shortcut: subsample by 'stride', then add zero channels up to 'out' "
            "(mode 'after': after the existing channels; 'both': half before, half after)",
            attrs={
                "out": Attr(kind="int", min=1, doc="channels after padding"),
                "stride": Attr(kind="int", default=1, min=1),
                "mode": Attr(kind="str", default="after", choices=("after", "both")),
            },
            shape=_pad_shape,
            lower=_pad_lower,
            onnx=_pad_onnx,
            label=lambda a, o: (
                f"pad to {a['out']}" + (f", /{a['stride']}" if a["stride"] > 1 else "")
            ),
            diagram="reshape",
            fresh_output=True,
        ),
    ]
}
assert DENSE_JOIN in OPS
