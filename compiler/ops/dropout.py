"""Channel-wise dropout: dropout2d and dropout3d, which zero whole feature maps in training
(element-wise dropout and stochastic depth are activation.py's). In eval mode they pass their
input through, as dropout does."""

from __future__ import annotations

from .records import Attr, Attrs, Op, Shape, _chw, _module, _nn, _unary


def _channel_dropout(name: str, module: str, doc: str) -> Op:
    """A channel-wise dropout: torch's module of that name on a [C, H, W] map."""

    def shape(a: Attrs, ins: list[Shape]) -> Shape:
        return _chw(ins, name)

    return Op(
        name=name,
        doc=doc,
        attrs={"p": Attr(kind="float", default=0.5, min=0, max=1, doc="drop probability")},
        shape=shape,
        lower=_module(lambda a, ctx: _nn(module, a["p"])),
        onnx=_unary("Identity"),  # exported for inference, where it passes through
        label=lambda a, o: f"{name} {a['p']}",
        diagram="activation",
        view=True,
        passes_through=True,
    )


DROPOUT2D_OP = _channel_dropout(
    "dropout2d",
    "Dropout2d",
    "zeroes each channel of each sample with probability p in training, as nn.Dropout2d",
)


# netc's maps are [N, C, H, W] with the batch: nn.Dropout3d reads a 4-d tensor as one unbatched
# [C, D, H, W] volume, so its 'channels' are the samples
DROPOUT3D_OP = _channel_dropout(
    "dropout3d",
    "Dropout3d",
    "as nn.Dropout3d, which reads a batch of [C, H, W] maps as one unbatched [C, D, H, W] "
    "volume: it zeroes whole samples with probability p in training (dropout2d zeroes channels)",
)


OPS_DROPOUT: list[Op] = [DROPOUT2D_OP, DROPOUT3D_OP]
