"""The primitive ops: every op is declared once, in the module of its kind, and :data:`OPS`
gathers them here.

An entry holds the attribute schema, how many inputs the op takes, its shape rule, its parameter
and multiply-accumulate counts, its torch lowering, its ONNX nodes and its diagram label. Shapes
exclude the batch dimension: ``[C, H, W]`` for feature maps (``[C, L]`` and ``[C, T, H, W]`` for
1-D and 3-D ones), ``[C]`` for vectors. Lowerings
import torch lazily and ONNX rules write through an :class:`OnnxWriter`, so this table can be
read by ``netc check`` without importing torch or onnx.

The ops are grouped by kind, as ONNX's op schemas and TVM's op registry are: ``records`` holds
the records (:class:`Op`, :class:`Attr`, the contexts the rules receive) and the helpers the
kinds share; ``conv``, ``norm``, ``activation``, ``merge``, ``pool``, ``reshape``, ``linear``,
``tokens``, ``windows``, ``reduce`` (softmax and reductions over chosen dimensions) and
``dropout`` (channel-wise dropout) each declare the ops of one kind, each op's rules right
before its entry, and list them (``OPS_CONV``, ...).

Adding an op is adding one :class:`Op` entry to its kind's list and its name to ``_ORDER``;
nothing else in the compiler names ops.
"""

from __future__ import annotations

from . import plugins
from .activation import OPS_ACTIVATION
from .conv import OPS_CONV
from .detection import OPS_DETECTION
from .dropout import OPS_DROPOUT
from .linear import OPS_LINEAR
from .merge import DENSE_JOIN, OPS_MERGE
from .norm import IMAGENET_MEAN, IMAGENET_STD, OPS_NORM
from .pool import MAXPOOL, OPS_POOL, UPSAMPLE
from .records import (
    DIAGRAM_KINDS,
    REQUIRED,
    Attr,
    Attrs,
    ChannelsLast,
    Counter,
    Groups,
    InitContext,
    LowerContext,
    Lowered,
    Map1d,
    NotExportable,
    OnnxWriter,
    Op,
    Shape,
    ShapeError,
    bare,
    channels,
    input_shape,
    is_tokens,
    spatial_rank,
)
from .reduce import OPS_REDUCE
from .reshape import OPS_RESHAPE, PERMUTE
from .tokens import OPS_TOKENS, TOKENS
from .windows import CPB_HIDDEN, OPS_WINDOWS

__all__ = [
    "CPB_HIDDEN",
    "DENSE_JOIN",
    "DIAGRAM_KINDS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MAXPOOL",
    "OPS",
    "OPS_ACTIVATION",
    "OPS_CONV",
    "OPS_DETECTION",
    "OPS_DROPOUT",
    "OPS_LINEAR",
    "OPS_MERGE",
    "OPS_NORM",
    "OPS_POOL",
    "OPS_REDUCE",
    "OPS_RESHAPE",
    "OPS_TOKENS",
    "OPS_WINDOWS",
    "PERMUTE",
    "REQUIRED",
    "TOKENS",
    "UPSAMPLE",
    "Attr",
    "Attrs",
    "ChannelsLast",
    "Counter",
    "Groups",
    "InitContext",
    "LowerContext",
    "Lowered",
    "Map1d",
    "NotExportable",
    "OnnxWriter",
    "Op",
    "Shape",
    "ShapeError",
    "bare",
    "channels",
    "enable_plugin",
    "input_shape",
    "is_tokens",
    "plugins",
    "spatial_rank",
]

# every op, by kind
_KINDS: tuple[list[Op], ...] = (
    OPS_CONV,
    OPS_NORM,
    OPS_ACTIVATION,
    OPS_DROPOUT,
    OPS_MERGE,
    OPS_POOL,
    OPS_RESHAPE,
    OPS_LINEAR,
    OPS_TOKENS,
    OPS_WINDOWS,
    OPS_REDUCE,
    OPS_DETECTION,
)

# the table's order, which `netc schema`, the documentation's op list and the tests keep (the
# order the ops joined the table, not their kinds): a new op goes at the end
_ORDER = (
    "conv",
    "batchnorm",
    "relu",
    "relu6",
    "hardswish",
    "hardsigmoid",
    "silu",
    "gelu",
    "sigmoid",
    "tanh",
    "stochastic_depth",
    "identity",
    "dropout",
    "add",
    "mul",
    "conv_transpose",
    "crop",
    "upsample",
    "chunk",
    "channel_shuffle",
    "tokens",
    "class_token",
    "pos_embedding",
    "self_attention",
    "select_token",
    "window_attention",
    "window_attention_v2",
    "patch_merging",
    "partition",
    "departition",
    "relative_attention",
    "transform_input",
    "concat",
    "maxpool",
    "avgpool",
    "global_avgpool",
    "adaptive_avgpool",
    "global_mean",
    "flatten",
    "linear",
    "permute",
    "layernorm",
    "layernorm2d",
    "layer_scale",
    "pad_channels",
    "leaky_relu",
    "prelu",
    "elu",
    "selu",
    "mish",
    "softplus",
    "hardtanh",
    "neg",
    "abs",
    "clamp",
    "scale",
    "groupnorm",
    "instancenorm",
    "softmax",
    "log_softmax",
    "reduce_mean",
    "reduce_max",
    "reduce_sum",
    "sub",
    "div",
    "pixel_shuffle",
    "pixel_unshuffle",
    "resize",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "split",
    "stack",
    "weighted_sum",
    "view",
    "narrow",
    "flatten_anchors",
    "dfl",
    "anchor_points",
    "dist2bbox",
    "psa_attention",
    "l2norm",
)


def _table() -> dict[str, Op]:
    """The kinds' ops by name, in ``_ORDER``; refuses an op declared twice or left unordered."""
    by_name: dict[str, Op] = {}
    for op in (op for kind in _KINDS for op in kind):
        if op.name in by_name:
            raise RuntimeError(f"op {op.name!r} is declared twice")
        by_name[op.name] = op
    if len(set(_ORDER)) != len(_ORDER) or set(_ORDER) != set(by_name):
        unordered = sorted(set(by_name) - set(_ORDER))
        unknown = sorted(set(_ORDER) - set(by_name))
        raise RuntimeError(
            f"_ORDER must name every op once (not in it: {unordered}; not ops: {unknown})"
        )
    return {name: by_name[name] for name in _ORDER}


OPS: dict[str, Op] = _table()


def enable_plugin(module: str) -> tuple[str, ...]:
    """Add the ops the plugin ``module`` declares to :data:`OPS` (see :mod:`.plugins`); returns
    their names. Raises plugins.PluginError."""
    return plugins.enable(module, OPS)


# the ops the compiler refers to by these names (dense stages, transformer blocks' diagrams)
assert DENSE_JOIN in OPS and TOKENS in OPS and PERMUTE in OPS
