"""The few torch modules and functions the lowering needs that torch.nn lacks (imports torch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PadChannels(nn.Module):
    """Option-A shortcut (He et al. 2015): strided subsample, then zero channels, no parameters."""

    def __init__(self, stride: int, front: int, back: int) -> None:
        super().__init__()
        self.stride, self.front, self.back = stride, front, back

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]  # [N, C, ceil(H/s), ceil(W/s)]
        return F.pad(x, (0, 0, 0, 0, self.front, self.back))  # [N, C + front + back, H', W']

    def extra_repr(self) -> str:
        return f"stride={self.stride}, front={self.front}, back={self.back}"


class StochasticDepth(nn.Module):
    """Stochastic depth (Huang et al. 2016) as torchvision's ``ops.StochasticDepth``: in training,
    zero the input for a random share ``p`` of the samples ('row') or for the whole batch
    ('batch'), scaling the rest by 1 / (1 - p); the identity in eval mode. The same random draws
    as torchvision's, in the same order."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival_rate = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival_rate)
        if survival_rate > 0.0:
            noise.div_(survival_rate)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"


class Permute(nn.Module):
    """``torch.permute`` by a fixed order, as torchvision's ``ops.misc.Permute``."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.permute(x, self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels of an [N, C, H, W] map, as torchvision's ConvNeXt writes it:
    channels-last, ``F.layer_norm``, back (the same aten ops, so the same numbers)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def add_all(*xs: torch.Tensor) -> torch.Tensor:
    """Sum of three or more tensors (two use ``+`` directly)."""
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


def concat(*xs: torch.Tensor) -> torch.Tensor:
    """``torch.cat`` along channels of one or more tensors (DenseNet's layers concatenate even a
    single input, so the aten ops are torchvision's)."""
    return torch.cat(xs, 1)


def spatial_mean(x: torch.Tensor) -> torch.Tensor:
    """``x.mean([2, 3])``: ShuffleNetV2's and MNASNet's global average, [N, C, H, W] -> [N, C]."""
    return x.mean([2, 3])


def center_crop(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The centre of ``x`` at ``like``'s height and width: the U-Net's copy-and-crop
    (Ronneberger et al. 2015), which crops an encoder map to the decoder's size."""
    h, w = like.shape[-2:]
    top = (x.shape[-2] - h) // 2
    left = (x.shape[-1] - w) // 2
    return x[:, :, top : top + h, left : left + w]


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle, as torchvision writes it (view, transpose, view), so the aten
    ops are torchvision's."""
    batchsize, num_channels, height, width = x.size()
    x = x.view(batchsize, groups, num_channels // groups, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, -1, height, width)


def transform_input(x: torch.Tensor) -> torch.Tensor:
    """GoogLeNet's and Inception v3's ``transform_input``, as torchvision writes it: an input
    normalised with ImageNet's mean and std becomes one normalised to [-1, 1] ((x - 0.5) / 0.5),
    the normalisation their original weights were trained with."""
    x_ch0 = torch.unsqueeze(x[:, 0], 1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
    x_ch1 = torch.unsqueeze(x[:, 1], 1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
    x_ch2 = torch.unsqueeze(x[:, 2], 1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
    return torch.cat((x_ch0, x_ch1, x_ch2), 1)


class SelfAttention(nn.MultiheadAttention):
    """nn.MultiheadAttention (batch first) called as torchvision's ViT calls it, on one input:
    ``self_attention(x, x, x, need_weights=False)[0]``. Its parameters, their keys and the aten
    ops are nn.MultiheadAttention's (the fused fast path in inference included)."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__(embed_dim, num_heads, dropout=dropout, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x, x, x, need_weights=False)[0]


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """A [N, D, h, w] map as a sequence of h * w tokens, [N, h * w, D], as torchvision's ViT
    writes it (reshape, permute)."""
    n, d, h, w = x.shape
    return x.reshape(n, d, h * w).permute(0, 2, 1)


def prepend_token(token: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """ViT's class token, a [1, 1, D] parameter, put before the sequence of every sample."""
    return torch.cat([token.expand(x.shape[0], -1, -1), x], dim=1)


def add_embedding(embedding: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A learned [1, L, D] position embedding added to every sample (``input + pos_embedding``)."""
    return x + embedding


def select_token(x: torch.Tensor, index: int) -> torch.Tensor:
    """One token of each sample's sequence, ``x[:, index]`` (ViT's class token: index 0)."""
    return x[:, index]
