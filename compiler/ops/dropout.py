"""Channel-wise dropout: dropout2d and dropout3d, which zero whole feature maps in training
(element-wise dropout and stochastic depth are activation.py's). In eval mode they pass their
input through, as dropout does."""

from __future__ import annotations

from .records import Attrs, Op, Shape, _map, _module, _nn, _unary, dropout_attrs


def _channel_dropout(name: str, module: str, rank: int, doc: str) -> Op:
    """A channel-wise dropout: torch's module of that name on a map of ``rank`` spatial
    dimensions."""

    def shape(a: Attrs, ins: list[Shape]) -> Shape:
        return _map(ins, name, (rank,))

    return Op(
        name=name,
        doc=doc,
        attrs=dropout_attrs("smp's FPN"),
        shape=shape,
        lower=_module(lambda a, ctx: _nn(module, a["p"], inplace=a["inplace"] and ctx.inplace_ok)),
        onnx=_unary("Identity"),  # exported for inference, where it passes through
        label=lambda a, o: f"{name} {a['p']}",
        diagram="activation",
        view=True,
        passes_through=True,
    )


DROPOUT1D_OP = _channel_dropout(
    "dropout1d",
    "Dropout1d",
    1,
    "zeroes each channel of each sample of a [C, L] map with probability p in training, as "
    "nn.Dropout1d",
)


DROPOUT2D_OP = _channel_dropout(
    "dropout2d",
    "Dropout2d",
    2,
    "zeroes each channel of each sample of a [C, H, W] map with probability p in training, as "
    "nn.Dropout2d",
)


DROPOUT3D_OP = _channel_dropout(
    "dropout3d",
    "Dropout3d",
    3,
    "zeroes each channel of each sample of a [C, T, H, W] map with probability p in training, "
    "as nn.Dropout3d",
)


OPS_DROPOUT: list[Op] = [DROPOUT1D_OP, DROPOUT2D_OP, DROPOUT3D_OP]
