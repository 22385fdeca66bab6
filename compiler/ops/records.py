"""The records the op table is made of, and what the kinds of ops share.

:class:`Op` and :class:`Attr` describe an op; :class:`Lowered`, :class:`LowerContext`,
:class:`OnnxWriter` and :class:`InitContext` are what its rules receive and return. Shapes exclude
the batch dimension: ``[C, H, W]`` for feature maps (``[C, L]`` and ``[C, T, H, W]`` for 1-D and
3-D ones), ``[C]`` for vectors. Also here: the shape and
ONNX helpers several kinds use, and the construction of torch layers (:func:`bare`, ``_nn``),
which imports torch lazily so that the table can be read without it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
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


class Map1d(tuple):
    """The shape of a one-dimensional map ``[C, L]`` (audio, a signal): channels first, as
    ``[C, H, W]`` and ``[C, T, H, W]`` are. A plain pair is a token sequence ``[L, D]``, whose
    channels are last; the mark tells the two apart. Shape rules that return their input's shape
    keep it; those that make a map make one with :func:`_map_shape`."""

    __slots__ = ()


def spatial_rank(shape: Shape) -> int | None:
    """How many spatial dimensions a channels-first map has: 1 for ``[C, L]``, 2 for
    ``[C, H, W]``, 3 for ``[C, T, H, W]``; None for any other value (vectors, tokens,
    channels-last maps)."""
    if isinstance(shape, Map1d):
        return 1
    if isinstance(shape, ChannelsLast) or len(shape) not in (3, 4):
        return None
    return len(shape) - 1


def is_tokens(shape: Shape) -> bool:
    """Whether ``shape`` is a token sequence ``[L, D]``."""
    return len(shape) == 2 and not isinstance(shape, (Map1d, ChannelsLast))


def _map_shape(c: int, sides: tuple[int, ...] | list[int]) -> Shape:
    """A map of ``c`` channels and these spatial sizes, marked as a 1-D map if it is one."""
    return Map1d((c, *sides)) if len(sides) == 1 else (c, *sides)


def input_shape(sizes: list[int] | tuple[int, ...]) -> Shape:
    """The shape of a network's input as a spec writes it: ``[C, L]`` is a 1-D map (audio),
    not a token sequence; ``[C, H, W]`` an image; ``[C, T, H, W]`` a video."""
    return Map1d(sizes) if len(sizes) == 2 else tuple(sizes)


_RANK_WORDS = {1: "[C, L]", 2: "[C, H, W]", 3: "[C, T, H, W]"}


def _layout(shape: Shape) -> str:
    """What kind of value ``shape`` is, in words for an error."""
    if isinstance(shape, Groups):
        return "groups of tokens"
    if isinstance(shape, ChannelsLast):
        return "a channels-last value"
    # vectors and token sequences are channels-first too, as far as a merge is concerned
    return f"a {_RANK_WORDS[spatial_rank(shape) or 2]} value"


def channels(shape: Shape) -> int:
    """The channels of a value: C of a map ([C, L], [C, H, W], [C, T, H, W]) or a vector [C];
    the last dimension of a channels-last map [H, W, C] or of a token sequence [L, D]."""
    return shape[-1] if isinstance(shape, ChannelsLast) or is_tokens(shape) else shape[0]


Attrs = dict[str, Any]


REQUIRED = object()  # marks an attribute without a default


class ShapeError(Exception):
    """An op cannot accept its inputs; ``attr`` names the attribute to blame, if any."""

    def __init__(self, message: str, attr: str | None = None, note: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.attr = attr
        self.note = note


def axis_of(dim: int, shape: Shape, attr: str, extra: int = 0) -> int:
    """The tensor's axis (the batch is 0) of ``dim``, counted over ``shape`` without the batch
    (and ``extra`` new dimensions: a stack's output has one more); negative from the end."""
    rank = len(shape) + extra
    if not -rank <= dim < rank:
        raise ShapeError(
            f"dimension {dim} is outside the value {list(shape)}"
            + (" stacked" if extra else "")
            + f": its dimensions are 0 to {rank - 1} (or -{rank} to -1 from the end), the batch "
            "not counted",
            attr,
        )
    return dim % rank + 1


@dataclass(frozen=True, kw_only=True)
class Attr:
    """One attribute: its type ('int', 'float', 'bool', 'str', 'ints': a list of whole numbers,
    'size': a whole number or a [height, width] pair of them, 'padding': a size or one of the
    words in ``choices``, a rule by name), default and allowed values.

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


class OnnxWriter(Protocol):
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


def _unary(op_type: str) -> Callable[[Attrs, LowerContext, OnnxWriter], str]:
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
    # writes the op's ONNX nodes and returns its output; None (a plugin's op may have none):
    # `netc export` refuses a network that uses it
    onnx: Callable[[Attrs, LowerContext, OnnxWriter], str] | None
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
    # in eval mode its output is its input (dropout, stochastic depth), or a part of it that
    # nothing else reads (narrow): fresh when its input is
    passes_through: bool = False
    # its output is a view of its first input (flatten, permute, chunk, crop): no memory of its own
    view: bool = False
    # its pieces (attribute ``index``) share one call, whose MACs ``macs`` gives: the first
    # piece of a call counts them (YOLO11's attention and its values)
    pieces_share_macs: bool = False
    # with a second input its output has that input's spatial sides (resize like: a node), so
    # the sizes proof takes that input's side factor for it, not its first input's
    sides_of_last: bool = False
    # its value has no batch dimension (a detector's anchor points, the same for every image):
    # only these ops may read it, and a network does not return it
    read_only_by: tuple[str, ...] = ()
    # its module is a torch layer made by `bare`: storage allocated, nothing drawn, so it may be
    # built on the real device at once (compile builds the others on the meta device)
    bare: bool = False
    # whether, where no other node reads its first input, it writes into it (given the attributes
    # and the number of inputs): the memory analysis counts no new memory for it
    overwrites: Callable[[Attrs, int], bool] | None = None
    # it pools a map or a token sequence into one vector per sample (a global pool, the class
    # token): a classifier's head starts at it (forward_features ends before it)
    pools: bool = False
    # it reads a token sequence [L, D] (attention), or a channels-last map (Swin's windows): a
    # block diagram of it is drawn on one
    sequence_input: bool = False
    channels_last_input: bool = False
    # the module of the plugin that declared it ('' for netc's own ops); set when it is enabled
    plugin: str = ""
    # how many of its input's rows make one of its output's (a stride: 2; an upsampling by 2:
    # 1/2), on every spatial side; None: 1. netc check proves a spec's `sizes:` with it
    # (compiler/ir/passes/sizes.py): input sides one period apart give sides in step
    side_factor: Callable[[Attrs], Fraction] | None = None
    # what its module is built for besides channels and weights, from its input's shape (a
    # 'same' padding's pads: the module then fits that size only); None: nothing
    built_for: Callable[[Attrs, list[Shape]], Any] | None = None

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
    """The first input, which must be a [C, H, W] map."""
    return _map(ins, op, (2,))


def _map(ins: list[Shape], op: str, ranks: tuple[int, ...] = (1, 2, 3)) -> Shape:
    """The first input, which must be a channels-first map of one of ``ranks`` spatial
    dimensions (``[C, *sides]``); a located error for anything else."""
    shape, rank = ins[0], spatial_rank(ins[0])
    if rank in ranks:
        return shape
    words = [_RANK_WORDS[r] for r in ranks]
    need = (
        f"a {words[0]} input"
        if len(words) == 1
        else f"a channels-first map ({', '.join(words[:-1])} or {words[-1]})"
    )
    if isinstance(shape, ChannelsLast):
        raise ShapeError(
            f"{op} needs {need}, got the channels-last {list(shape)}",
            None,
            "permute it back first (permute, dims: [0, 3, 1, 2])",
        )
    if is_tokens(shape):
        raise ShapeError(
            f"{op} needs {need}, got the token sequence [L, D] {list(shape)}",
            None,
            "a sequence goes through linear, layernorm, self_attention, select_token",
        )
    got = f"the {_RANK_WORDS[rank]} " if rank is not None else ""
    raise ShapeError(f"{op} needs {need}, got {got}{list(shape)}")


def _sides(value: int | tuple[int, ...], rank: int, attr: str) -> tuple[int, ...]:
    """A size attribute along each of ``rank`` spatial dimensions: a whole number is the same
    on every side, a list names each side (its length must be the rank)."""
    if isinstance(value, int):
        return (value,) * rank
    if len(value) != rank:
        words = {1: "[length]", 2: "[height, width]", 3: "[time, height, width]"}
        raise ShapeError(
            f"{attr} {list(value)} has {len(value)} sides, the input has {rank} spatial "
            f"dimension{'s' if rank > 1 else ''}",
            attr,
            f"write n or {words[rank]}",
        )
    return tuple(value)


def dropout_attrs(where: str) -> dict[str, Attr]:
    """A dropout's attributes: its probability, and whether it zeroes in place (``where``: who
    does, for the doc)."""
    return {
        "p": Attr(kind="float", default=0.5, min=0, max=1, doc="drop probability"),
        "inplace": Attr(
            kind="bool",
            default=False,
            doc=f"zero the input in place where no other node reads it ({where})",
        ),
    }


def steps(value: int | tuple[int, ...] | list[int] | None) -> Fraction:
    """A stride (or window) as the factor of :attr:`Op.side_factor`: one number, or one per
    side (the sides' least common multiple: the proof in compiler/ir/passes/sizes.py squares
    the input); None counts as 1."""
    if value is None:
        return Fraction(1)
    return Fraction(math.lcm(*value) if isinstance(value, (tuple, list)) else value)


def _size_text(value: int | tuple[int, ...], rank: int = 2) -> str:
    """'3x3' for a square size on a [C, H, W] map, '1x7' for a pair (height x width, as
    Inception's papers write), '3x7x7' on a [C, T, H, W] map, '80' on a [C, L] one."""
    sides = (value,) * rank if isinstance(value, int) else value
    return "x".join(str(n) for n in sides)


def _spatial(size: int, k: int, s: int, p: int, d: int = 1, ceil: bool = False) -> int:
    span = size + 2 * p - d * (k - 1) - 1
    out = (math.ceil(span / s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + p:  # PyTorch: the last window must start inside the input
        out -= 1
    return out


def _same(a: Attrs, ins: list[Shape]) -> Shape:
    return ins[0]


# ---- padding by rule: the words of a 'padding' attribute -----------------------------------

# 'same' is PyTorch's padding='same' (stride 1 only: the output keeps the input's size);
# 'same_upper' is TensorFlow's SAME and ONNX's SAME_UPPER (any stride: ceil(size / stride) out).
# Both pad dilation * (kernel - 1) in all at stride 1, the odd row or column at the bottom/right
PADDING_WORDS = ("same", "same_upper")

# ONNX's order of `pads`: every spatial dimension's start, then every one's end (top, left,
# bottom, right on a [C, H, W] map)
Pads = tuple[int, ...]


def _same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME along one axis, (before, after): the least padding that gives
    ceil(size / stride) windows, the odd one after."""
    span = dilation * (kernel - 1) + 1
    total = max((-(-size // stride) - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def _word_pads(
    word: str,
    sizes: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: int = 1,
) -> Pads:
    """The pads a padding word gives a map of these spatial sizes; 'same' refuses a stride, as
    torch does."""
    if word == "same" and any(s != 1 for s in stride):
        shown = stride[0] if len(set(stride)) == 1 else list(stride)
        raise ShapeError(
            f"padding 'same' is PyTorch's rule, for stride 1 only; got stride {shown}",
            "padding",
            "same_upper is TensorFlow's SAME for any stride: ceil(size / stride) out, the odd "
            "row and column of padding at the bottom and right",
        )
    pairs = [_same_pads(n, k, s, dilation) for n, k, s in zip(sizes, kernel, stride, strict=True)]
    return tuple(b for b, _ in pairs) + tuple(a for _, a in pairs)


def _torch_pads(pads: Pads) -> tuple[int, ...]:
    """F.pad's order of the same pads: the last dimension's (start, end) first, then the one
    before it: (left, right, top, bottom) on a [C, H, W] map."""
    rank = len(pads) // 2
    return tuple(p for d in reversed(range(rank)) for p in (pads[d], pads[rank + d]))


# ---- ONNX helpers --------------------------------------------------------------------------


def _weight_and_bias(a: Attrs, e: OnnxWriter) -> list[str]:
    """The initializers of a conv, transposed conv or linear: its weight, and its bias if any."""
    return [e.param("weight")] + ([e.param("bias")] if a["bias"] else [])


def _matmul_nodes(e: OnnxWriter, x: str, weight: str, bias: str | None = None) -> str:
    """A linear layer on [N, ..., C] (channels-last, a sequence, windows): MatMul with the
    transposed [out, in] weight, then the bias if any."""
    out = e.node("MatMul", [x, e.node("Transpose", [weight], perm=[1, 0])])
    return e.node("Add", [out, bias]) if bias is not None else out


# ---- attribute values conv and linear share ------------------------------------------------


# GoogLeNet's and Inception v3's rules 'trunc_normal_<std>': a normal of that std truncated at
# +-2 (absolute); 0.1 is Inception v3's default, 0.01 GoogLeNet's, 0.001 Inception's aux fc
_INCEPTION_STDS = ("0.1", "0.01", "0.001")


# ---- torch layers (torch imported lazily) --------------------------------------------------


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
    given its value by the op's init rule (compiler.lowering.initialise), so the constructor's own
    init would be thrown away; and the layers of a network repeat a few configurations, so each is
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
