"""Ops that move, cut or pad values without weights: crop, chunk, split, channel_shuffle,
pixel_shuffle and pixel_unshuffle, flatten, permute, view, narrow, pad_channels (the option-A
shortcut)."""

from __future__ import annotations

import math

from .records import (
    Attr,
    Attrs,
    ChannelsLast,
    Groups,
    LowerContext,
    Lowered,
    OnnxWriter,
    Op,
    Shape,
    ShapeError,
    _chw,
    _layout,
    _map,
    _map_shape,
    _module,
    _nn,
    _size_text,
    axis_of,
    steps,
)

# ---- crop ----------------------------------------------------------------------------------


def _crop_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, *sides = _map(ins, "crop")
    _, *target = _map(ins[1:], "crop")
    if len(sides) != len(target):
        raise ShapeError(f"crop of {_layout(ins[0])} to {_layout(ins[1])}: one rank for both")
    if any(t > n for n, t in zip(sides, target, strict=True)):
        raise ShapeError(
            f"crop of {_size_text(tuple(sides))} to {_size_text(tuple(target))}: the reference "
            "is larger than the input",
            None,
            "crop reads [map, reference]: the larger map comes first",
        )
    return _map_shape(c, target)


def _crop_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering import modules

    crops = {1: modules.center_crop_1d, 2: modules.center_crop, 3: modules.center_crop_3d}
    return Lowered(function=crops[len(ctx.in_shapes[0]) - 1])


def _crop_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    # the sizes read at run time (Shape), so the file crops right at any input size
    rank = len(ctx.in_shapes[0]) - 1
    whole, far = e.ints([2]), e.ints([2 + rank])
    sides = e.node("Slice", [e.node("Shape", [e.inputs[0]]), whole, far])
    target = e.node("Slice", [e.node("Shape", [e.inputs[1]]), whole, far])
    starts = e.node("Div", [e.node("Sub", [sides, target]), e.ints([2])])
    ends = e.node("Add", [starts, target])
    return e.node("Slice", [e.inputs[0], starts, ends, e.ints(list(range(2, 2 + rank)))])


CROP_OP = Op(
    name="crop",
    doc="the centre of the first input at the second's height and width (the U-Net's "
    "copy-and-crop)",
    attrs={},
    shape=_crop_shape,
    lower=_crop_lower,
    onnx=_crop_onnx,
    label=lambda a, o: f"crop to {_size_text(tuple(o[1:]))}",
    diagram="reshape",
    inputs=(2, 2),
    view=True,
)


# ---- chunk ---------------------------------------------------------------------------------


def _chunk_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, *sides = _map(ins, "chunk")
    n = a["chunks"]
    if c % n:
        raise ShapeError(f"{n} chunks do not divide the {c} channels", "chunks")
    if a["index"] >= n:
        raise ShapeError(f"index {a['index']} of {n} chunks (they count from 0)", "index")
    return _map_shape(c // n, sides)


def _chunk_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    import torch

    return Lowered(function=torch.chunk, extra_args=(a["chunks"], 1), item=a["index"])


def _chunk_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    size = ctx.out_shape[0]
    start = a["index"] * size
    return e.node("Slice", [e.inputs[0], e.ints([start]), e.ints([start + size]), e.ints([1])])


CHUNK_OP = Op(
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
)


# ---- split ---------------------------------------------------------------------------------


def _split_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, *sides = _map(ins, "split")
    sizes, index = list(a["sizes"]), a["index"]
    if min(sizes) < 1:
        raise ShapeError(f"sizes {sizes}: each piece has at least one channel", "sizes")
    if sum(sizes) != c:
        raise ShapeError(f"sizes {sizes} sum to {sum(sizes)}, not the {c} channels", "sizes")
    if index >= len(sizes):
        raise ShapeError(f"index {index} of {len(sizes)} pieces (they count from 0)", "index")
    return _map_shape(sizes[index], sides)


def _split_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    import torch

    # the sizes as a tuple: nodes taking pieces of one call share it by its arguments
    return Lowered(function=torch.split, extra_args=(tuple(a["sizes"]), 1), item=a["index"])


def _split_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    start = sum(a["sizes"][: a["index"]])
    end = start + a["sizes"][a["index"]]
    return e.node("Slice", [e.inputs[0], e.ints([start]), e.ints([end]), e.ints([1])])


SPLIT_OP = Op(
    name="split",
    doc="one piece of the channels cut in pieces of the given sizes (torch.split along "
    "channels); the pieces of one value taken by several nodes come from one call",
    attrs={
        "sizes": Attr(kind="ints", doc="the channels of each piece; they sum to the channels"),
        "index": Attr(kind="int", default=0, min=0, doc="which piece, from 0"),
    },
    shape=_split_shape,
    lower=_split_lower,
    onnx=_split_onnx,
    label=lambda a, o: f"split {a['index'] + 1}/{len(a['sizes'])}, {o[0]}",
    diagram="reshape",
    view=True,
)


# ---- channel_shuffle -----------------------------------------------------------------------


def _shuffle_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, _, _ = _chw(ins, "channel_shuffle")
    if c % a["groups"]:
        raise ShapeError(f"groups {a['groups']} does not divide the {c} channels", "groups")
    return ins[0]


def _shuffle_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering import modules

    return Lowered(function=modules.channel_shuffle, extra_args=(a["groups"],))


def _shuffle_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    c, h, w = ctx.in_shapes[0]
    g = a["groups"]
    grouped = e.node("Reshape", [e.inputs[0], e.ints([0, g, c // g, h, w])])
    swapped = e.node("Transpose", [grouped], perm=[0, 2, 1, 3, 4])
    return e.node("Reshape", [swapped, e.ints([0, c, h, w])])


CHANNEL_SHUFFLE_OP = Op(
    name="channel_shuffle",
    doc="ShuffleNet's channel shuffle in 'groups' groups (view, transpose, view)",
    attrs={"groups": Attr(kind="int", min=1, doc="divides the channels")},
    shape=_shuffle_shape,
    lower=_shuffle_lower,
    onnx=_shuffle_onnx,
    label=lambda a, o: f"channel shuffle, g{a['groups']}",
    diagram="reshape",
)


# ---- pixel_shuffle, pixel_unshuffle --------------------------------------------------------


def _pixel_shuffle_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, h, w = _chw(ins, "pixel_shuffle")
    r = a["factor"]
    if c % (r * r):
        raise ShapeError(f"factor {r}: {r * r} does not divide the {c} channels", "factor")
    return (c // (r * r), h * r, w * r)


PIXEL_SHUFFLE_OP = Op(
    name="pixel_shuffle",
    doc="channels to space: [C * r * r, H, W] -> [C, H * r, W * r], as nn.PixelShuffle "
    "(ESPCN's sub-pixel convolution)",
    attrs={"factor": Attr(kind="int", min=1, doc="r: its square divides the channels")},
    shape=_pixel_shuffle_shape,
    lower=_module(lambda a, ctx: _nn("PixelShuffle", a["factor"])),
    # ONNX's DepthToSpace in CRD order reads the channels as torch does
    onnx=lambda a, ctx, e: e.node("DepthToSpace", e.inputs, blocksize=a["factor"], mode="CRD"),
    label=lambda a, o: f"pixel shuffle x{a['factor']}",
    diagram="reshape",
    side_factor=lambda a: 1 / steps(a["factor"]),
)


def _pixel_unshuffle_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, h, w = _chw(ins, "pixel_unshuffle")
    r = a["factor"]
    if h % r or w % r:
        raise ShapeError(f"factor {r} does not divide the {h}x{w} map", "factor")
    return (c * r * r, h // r, w // r)


def _pixel_unshuffle_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    # SpaceToDepth orders the channels otherwise (DCR): torch's order is c, then the row and
    # column inside the block
    (c, h, w), r = ctx.in_shapes[0], a["factor"]
    blocks = e.node("Reshape", [e.inputs[0], e.ints([0, c, h // r, r, w // r, r])])
    moved = e.node("Transpose", [blocks], perm=[0, 1, 3, 5, 2, 4])
    return e.node("Reshape", [moved, e.ints([0, c * r * r, h // r, w // r])])


PIXEL_UNSHUFFLE_OP = Op(
    name="pixel_unshuffle",
    doc="space to channels: [C, H * r, W * r] -> [C * r * r, H, W], as nn.PixelUnshuffle",
    attrs={"factor": Attr(kind="int", min=1, doc="r: divides the height and the width")},
    shape=_pixel_unshuffle_shape,
    lower=_module(lambda a, ctx: _nn("PixelUnshuffle", a["factor"])),
    onnx=_pixel_unshuffle_onnx,
    label=lambda a, o: f"pixel unshuffle /{a['factor']}",
    diagram="reshape",
    side_factor=lambda a: steps(a["factor"]),
)


# ---- flatten -------------------------------------------------------------------------------


def _flatten_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    # torchvision's forwards call torch.flatten (so `children()[:-1]` of a ResNet ends at its
    # pool), but a Sequential holds an nn.Flatten (ConvNeXt's classifier[1], so classifier[2]
    # indexes as there): a numbered member is the module; the aten ops are the same
    if ctx.in_sequence:
        return Lowered(_nn("Flatten", 1))
    import torch

    return Lowered(function=torch.flatten, extra_args=(1,))


FLATTEN_OP = Op(
    name="flatten",
    doc="flattens all dimensions after the batch",
    attrs={},
    shape=lambda a, ins: (math.prod(ins[0]),),
    lower=_flatten_lower,
    onnx=lambda a, ctx, e: e.node("Flatten", e.inputs, axis=1),
    label=lambda a, o: "flatten",
    diagram="reshape",
    view=True,
)


# ---- permute -------------------------------------------------------------------------------


# the op that makes a channels-last map of a [C, H, W] map: a block of a transformer is drawn
# on its output
PERMUTE = "permute"


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
    from ..lowering import modules

    return Lowered(modules.Permute(list(a["dims"])))


PERMUTE_OP = Op(
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
)


# ---- pad_channels --------------------------------------------------------------------------


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
    from ..lowering import modules

    return Lowered(modules.PadChannels(a["stride"], *_pad_split(a, ctx)))


def _pad_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    x, s = e.inputs[0], a["stride"]
    if s > 1:  # x[:, :, ::s, ::s]
        x = e.node(
            "Slice", [x, e.ints([0, 0]), e.ints([2**63 - 1] * 2), e.ints([2, 3]), e.ints([s, s])]
        )
    front, back = _pad_split(a, ctx)
    return e.node("Pad", [x, e.ints([0, front, 0, 0, 0, back, 0, 0])], mode="constant")


PAD_CHANNELS_OP = Op(
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
    label=lambda a, o: f"pad to {a['out']}" + (f", /{a['stride']}" if a["stride"] > 1 else ""),
    diagram="reshape",
    fresh_output=True,
    side_factor=lambda a: steps(a["stride"]),
)


# ---- view ----------------------------------------------------------------------------------


def _view_shape(a: Attrs, ins: list[Shape]) -> Shape:
    shape, size = tuple(a["shape"]), math.prod(ins[0])
    free = [k for k, s in enumerate(shape) if s == -1]
    if len(free) > 1 or any(s < 1 and s != -1 for s in shape):
        raise ShapeError(
            f"shape {list(shape)} may hold one -1 (the size that fits) and sizes of 1 or more",
            "shape",
        )
    known = math.prod(s for s in shape if s != -1)
    if (free and size % known) or (not free and known != size):
        raise ShapeError(
            f"cannot view {list(ins[0])} ({size:,} values per sample) into {list(shape)}",
            "shape",
        )
    return tuple(size // known if s == -1 else s for s in shape)


def _view_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering import modules

    # the shape as written (-1 where the spec leaves a size to fit), so blocks of several
    # widths call it alike
    return Lowered(function=modules.reshape, extra_args=(tuple(a["shape"]),))


VIEW_OP = Op(
    name="view",
    doc="the same values in another shape after the batch (x.view(batch, *shape), a copy only "
    "where x is not contiguous; SKNet's attention viewed as [paths, C, 1, 1]); a shape of 2 is "
    "a token sequence [L, D], of 3 a map, of 4 a video map",
    attrs={
        "shape": Attr(
            kind="ints",
            doc="the sizes after the batch; one may be -1, the size that fits",
        )
    },
    shape=_view_shape,
    lower=_view_lower,
    # the shape as written: its -1 fits any size the network accepts (a YOLO head's cells)
    onnx=lambda a, ctx, e: e.node("Reshape", [e.inputs[0], e.ints([0, *a["shape"]])]),
    label=lambda a, o: f"view as {'x'.join(map(str, o))}",
    diagram="reshape",
    view=True,
)


# ---- narrow --------------------------------------------------------------------------------


def _narrow_axis(a: Attrs, shape: Shape) -> int:
    return axis_of(a["dim"], shape, "dim")


def _narrow_shape(a: Attrs, ins: list[Shape]) -> Shape:
    shape = ins[0]
    axis = _narrow_axis(a, shape) - 1
    if a["start"] + a["length"] > shape[axis]:
        raise ShapeError(
            f"start {a['start']} + length {a['length']} is past the {shape[axis]} of "
            f"dimension {a['dim']} of {list(shape)}",
            "length",
        )
    kept = tuple(a["length"] if k == axis else s for k, s in enumerate(shape))
    return type(shape)(kept) if isinstance(shape, ChannelsLast) else kept


def _narrow_lower(a: Attrs, ctx: LowerContext) -> Lowered:
    from ..lowering import modules

    axis = _narrow_axis(a, ctx.in_shapes[0])
    return Lowered(function=modules.narrow, extra_args=(axis, a["start"], a["length"]))


def _narrow_onnx(a: Attrs, ctx: LowerContext, e: OnnxWriter) -> str:
    axis, start = _narrow_axis(a, ctx.in_shapes[0]), a["start"]
    ends = e.ints([start + a["length"]])
    return e.node("Slice", [e.inputs[0], e.ints([start]), ends, e.ints([axis])])


NARROW_OP = Op(
    name="narrow",
    doc="'length' entries of one dimension from 'start' (x[:, start:start + length]; GhostNet "
    "keeps the first out channels of its concat)",
    attrs={
        "length": Attr(kind="int", min=1, doc="how many entries are kept"),
        "start": Attr(kind="int", default=0, min=0, doc="the first entry kept"),
        "dim": Attr(
            kind="int",
            default=0,
            doc="the dimension, without the batch (0: the channels of a map); negative from "
            "the end",
        ),
    },
    shape=_narrow_shape,
    lower=_narrow_lower,
    onnx=_narrow_onnx,
    label=lambda a, o: f"keep {a['start']}:{a['start'] + a['length']} of {a['dim']}",
    diagram="reshape",
    view=True,
    # the next op may write into the kept part (timm's `x += shortcut` after a ghost module)
    passes_through=True,
)


OPS_RESHAPE: list[Op] = [
    NARROW_OP,
    VIEW_OP,
    CROP_OP,
    CHUNK_OP,
    CHANNEL_SHUFFLE_OP,
    FLATTEN_OP,
    PERMUTE_OP,
    PAD_CHANNELS_OP,
    PIXEL_SHUFFLE_OP,
    PIXEL_UNSHUFFLE_OP,
    SPLIT_OP,
]
