"""The few torch modules and functions the lowering needs that torch.nn lacks (imports torch)."""

from __future__ import annotations

from typing import Any

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


class FrozenBatchNorm(nn.Module):
    """BatchNorm with fixed statistics and affine (torchvision's ``ops.FrozenBatchNorm2d``, which
    its detectors use with a pretrained backbone): four buffers, no parameters, no
    ``num_batches_tracked``; the same values in training and eval mode."""

    weight: torch.Tensor
    bias: torch.Tensor
    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, num_features: int, eps: float = 1e-5, rank: int = 2) -> None:
        super().__init__()
        self.num_features, self.eps, self.rank = num_features, eps, rank
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def reset_parameters(self) -> None:
        self.weight.fill_(1)
        self.bias.zero_()
        self.running_mean.zero_()
        self.running_var.fill_(1)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # a BatchNorm's checkpoint loads: its step count means nothing here
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the reshapes first, as torchvision's (fuser-friendly): [1, C, 1, 1] for a 2-D map, one
        # 1 per dimension after the channels
        shape = (1, -1, *[1] * self.rank)
        w = self.weight.reshape(shape)
        b = self.bias.reshape(shape)
        rv = self.running_var.reshape(shape)
        rm = self.running_mean.reshape(shape)
        scale = w * (rv + self.eps).rsqrt()
        bias = b - rm * scale
        return x * scale + bias

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


class DFL(nn.Module):
    """The integral of Distribution Focal Loss (Li et al. 2020), as ultralytics' DFL: each box
    side's ``c1`` bins as a softmax, and its expectation, a fixed 1x1 convolution by 0, 1, ...,
    c1 - 1 (a parameter that does not train, in the state_dict as ``conv.weight``)."""

    def __init__(self, c1: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
        self.c1 = c1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, a = x.shape  # [N, 4 * c1, anchors]
        return self.conv(x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)).view(b, 4, a)


def anchor_points(*feats_strides_offset: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The centres of every level's cells [2, anchors] (x, y in cells) and each one's stride
    [1, anchors], from the levels' maps (their sizes), as ultralytics' make_anchors gives them
    to Detect (transposed)."""
    *feats, strides, offset = feats_strides_offset
    points, scales = [], []
    for feat, stride in zip(feats, strides, strict=True):
        h, w = feat.shape[2:]
        sx = torch.arange(w).type_as(feats[0]) + offset  # [w] cell centres along x
        sy = torch.arange(h).type_as(feats[0]) + offset
        sy, sx = torch.meshgrid(sy, sx, indexing="ij")
        points.append(torch.stack((sx, sy), -1).view(-1, 2))  # [h * w, 2]
        scales.append(feats[0].new_full((h * w, 1), stride, dtype=feats[0].dtype))
    anchors, stride_tensor = torch.cat(points), torch.cat(scales)  # [anchors, 2], [anchors, 1]
    return anchors.transpose(0, 1), stride_tensor.transpose(0, 1)


def dist2bbox(
    distance: torch.Tensor, anchors: torch.Tensor, strides: torch.Tensor, xywh: bool
) -> torch.Tensor:
    """Boxes from each anchor point's distances to its sides [N, 4, anchors], as ultralytics'
    Detect decodes them: x, y, w, h (xywh) or the corners, in pixels (times the strides)."""
    points = anchors.unsqueeze(0)  # [1, 2, anchors]
    lt, rb = distance.chunk(2, 1)
    x1y1 = points - lt
    x2y2 = points + rb
    corners = (x1y1, x2y2)
    boxes = torch.cat([(x1y1 + x2y2) / 2, x2y2 - x1y1] if xywh else corners, 1)
    return boxes * strides


def psa_attention(
    qkv: torch.Tensor, heads: int, key_dim: int, head_dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """ultralytics' Attention (YOLO11's PSA) between its qkv and pe convolutions: every
    position attends to every other, per head, queries and keys of key_dim channels and values
    of head_dim; returns the attended map [N, C, H, W] and the values as a map (pe's input)."""
    b, _, h, w = qkv.shape
    n, c = h * w, heads * head_dim
    q, k, v = qkv.view(b, heads, key_dim * 2 + head_dim, n).split(
        [key_dim, key_dim, head_dim], dim=2
    )
    attn = ((q * key_dim**-0.5).transpose(-2, -1) @ k).softmax(dim=-1)  # [N, heads, n, n]
    return (v @ attn.transpose(-2, -1)).view(b, c, h, w), v.reshape(b, c, h, w)


def scaled_l2_normalize(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """SSD's L2Norm: each position's channels at unit length, scaled per channel."""
    return weight.view(1, -1, 1, 1) * F.normalize(x)


def flatten_anchors(x: torch.Tensor, values: int) -> torch.Tensor:
    """A detection head's [N, A * K, H, W] map as [N, H * W * A, K] rows, one per position and
    anchor, as torchvision's RetinaNet and FCOS heads reshape theirs."""
    n, _, h, w = x.shape
    x = x.view(n, -1, values, h, w)  # [N, A, K, H, W]
    x = x.permute(0, 3, 4, 1, 2)  # [N, H, W, A, K]
    return x.reshape(n, -1, values)  # [N, H * W * A, K]


class _PaddedConv:
    """What a conv padded unequally before and after shares (TensorFlow's SAME with a stride:
    the odd row and column at the bottom and right), which torch's ``padding`` cannot say:
    ``F.pad`` in ``padding_mode``, then the conv unpadded. Its state is the torch conv's, under
    the same names. ``pads`` is F.pad's (left, right, top, bottom, ...)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        pads: tuple[int, ...] = (0, 0, 0, 0),
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__(  # type: ignore[call-arg]  # the torch conv after it in the MRO
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            dilation=dilation,
            groups=groups,
            bias=bias,
            padding_mode=padding_mode,
        )
        self.pads = pads
        self.pad_mode = "constant" if padding_mode == "zeros" else padding_mode  # F.pad's

    def padded(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pads, mode=self.pad_mode)


class PaddedConv1d(_PaddedConv, nn.Conv1d):
    """An nn.Conv1d padded unequally (see _PaddedConv)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.padded(x)
        return F.conv1d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class PaddedConv2d(_PaddedConv, nn.Conv2d):
    """An nn.Conv2d padded unequally (see _PaddedConv), as timm's Conv2dSame."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.padded(x)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class PaddedConv3d(_PaddedConv, nn.Conv3d):
    """An nn.Conv3d padded unequally (see _PaddedConv)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.padded(x)
        return F.conv3d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class PaddedMaxPool2d(nn.MaxPool2d):
    """A max pool padded unequally (TensorFlow's SAME): -inf padding, which no window picks,
    then the pool unpadded. ``pads`` is F.pad's (left, right, top, bottom)."""

    def __init__(self, kernel_size: int, stride: int, pads: tuple[int, int, int, int]) -> None:
        super().__init__(kernel_size, stride)
        self.pads = pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pads, value=float("-inf")))


class PaddedAvgPool2d(nn.AvgPool2d):
    """An average pool padded unequally (TensorFlow's SAME): zeros, counted in each window's
    divisor only with ``count_include_pad``. ``pads`` is F.pad's (left, right, top, bottom)."""

    def __init__(
        self,
        kernel_size: int,
        stride: int,
        pads: tuple[int, int, int, int],
        count_include_pad: bool = True,
    ) -> None:
        super().__init__(kernel_size, stride, count_include_pad=count_include_pad)
        self.pads = pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.avg_pool2d(F.pad(x, self.pads), self.kernel_size, self.stride)
        if self.count_include_pad:
            return out
        # divided by the share of each window inside the input: the mean of what is there, as
        # TensorFlow's SAME and ONNX's count_include_pad=0 take it
        inside = F.pad(torch.ones_like(x[:1, :1]), self.pads)
        return out / F.avg_pool2d(inside, self.kernel_size, self.stride)


def add_all(*xs: torch.Tensor) -> torch.Tensor:
    """Sum of three or more tensors (two use ``+`` directly)."""
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


def fast_fusion(weights: torch.Tensor, *xs_and_eps: Any) -> torch.Tensor:
    """EfficientDet's fast normalised fusion of equal maps, op for op as effdet's FpnCombine
    ('fastattn'): each map times relu(its weight) over the weights' sum plus ``eps``."""
    *xs, eps = xs_and_eps
    w = F.relu(weights.to(dtype=xs[0].dtype))
    total = torch.sum(w)
    return torch.sum(torch.stack([(xs[i] * w[i]) / (total + eps) for i in range(len(xs))], -1), -1)


def softmax_fusion(weights: torch.Tensor, *xs: torch.Tensor) -> torch.Tensor:
    """EfficientDet's softmax fusion ('attn'): the maps stacked, times softmax(weights), summed."""
    w = torch.softmax(weights.to(dtype=xs[0].dtype), dim=0)
    return torch.sum(torch.stack(xs, dim=-1) * w, dim=-1)


def stacked_sum(*xs: torch.Tensor) -> torch.Tensor:
    """The unweighted fusion ('sum'), as effdet sums: stacked, then summed."""
    return torch.sum(torch.stack(xs, dim=-1), dim=-1)


def concat(*xs: torch.Tensor) -> torch.Tensor:
    """``torch.cat`` along channels of one or more tensors (DenseNet's layers concatenate even a
    single input, so the aten ops are torchvision's)."""
    return torch.cat(xs, 1)


def concat_at(*xs_and_dim: Any) -> torch.Tensor:
    """``torch.cat`` of the tensors along a dimension, the last argument (a YOLO head's levels
    along their anchors)."""
    *xs, dim = xs_and_dim
    return torch.cat(xs, dim)


def stack(*xs_and_dim: Any) -> torch.Tensor:
    """``torch.stack`` of the tensors along a new dimension, the last argument (SKNet's branches
    stacked on dimension 1)."""
    *xs, dim = xs_and_dim
    return torch.stack(xs, dim)


def reshape(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``x`` as ``shape`` after its batch (a view where ``x`` is contiguous, as timm's
    ``x.view(B, paths, C // paths, H, W)``)."""
    return x.reshape(x.shape[0], *shape)


def narrow(x: torch.Tensor, dim: int, start: int, length: int) -> torch.Tensor:
    """``length`` entries of ``x`` along ``dim`` (the batch is 0) from ``start``, indexed as
    timm's ``out[:, :out_chs]``: aten records a slice, or an alias where all are kept."""
    return x[(slice(None),) * dim + (slice(start, start + length),)]


def hold(x: torch.Tensor, held: torch.Tensor) -> torch.Tensor:
    """``x``, with ``held`` referenced until now: generated code frees each value after its last
    use, so a node that holds another (a block type's ``holds``) frees that memory after itself,
    as a Python local is freed when its function returns. Runs no op."""
    return x


def spatial_mean(x: torch.Tensor) -> torch.Tensor:
    """``x.mean([2, 3])``: ShuffleNetV2's and MNASNet's global average, [N, C, H, W] -> [N, C]."""
    return x.mean([2, 3])


def spatial_mean_1d(x: torch.Tensor) -> torch.Tensor:
    """``x.mean([2])``: the global average of a 1-D map, [N, C, L] -> [N, C]."""
    return x.mean([2])


def spatial_mean_3d(x: torch.Tensor) -> torch.Tensor:
    """``x.mean([2, 3, 4])``: S3D's global average of a 3-D map, [N, C, T, H, W] -> [N, C]."""
    return x.mean([2, 3, 4])


def center_crop(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The centre of ``x`` at ``like``'s height and width: the U-Net's copy-and-crop
    (Ronneberger et al. 2015), which crops an encoder map to the decoder's size."""
    h, w = like.shape[-2:]
    top = (x.shape[-2] - h) // 2
    left = (x.shape[-1] - w) // 2
    return x[:, :, top : top + h, left : left + w]


def resize_like(
    x: torch.Tensor, like: torch.Tensor, mode: str, align_corners: bool | None
) -> torch.Tensor:
    """``x`` resized to ``like``'s spatial size, as torchvision's segmentation heads return to
    the input's: F.interpolate with the size read at run time, so any input size works."""
    return F.interpolate(x, size=like.shape[2:], mode=mode, align_corners=align_corners)


def center_crop_1d(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The centre of the 1-D map ``x`` at ``like``'s length."""
    n = like.shape[-1]
    start = (x.shape[-1] - n) // 2
    return x[:, :, start : start + n]


def center_crop_3d(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The centre of the 3-D map ``x`` at ``like``'s duration, height and width."""
    t, h, w = like.shape[-3:]
    front = (x.shape[-3] - t) // 2
    top = (x.shape[-2] - h) // 2
    left = (x.shape[-1] - w) // 2
    return x[:, :, front : front + t, top : top + h, left : left + w]


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


class WindowAttention(nn.Module):
    """Swin's (shifted) window attention over a channels-last map [N, H, W, C] (Liu et al. 2021,
    Sec. 3.2): the map is padded to whole windows, cyclically shifted by ``shift`` (odd blocks),
    cut into ``window`` x ``window`` windows; multi-head attention within each window adds a
    learned relative position bias and, for a shifted map, masks pairs that were not neighbours
    (-100); then the windows are put back, the shift undone and the padding cut off. The
    parameters and their names are torchvision's ShiftedWindowAttention's
    (``relative_position_bias_table``, the int64 buffer ``relative_position_index``, ``qkv``,
    ``proj``), and so is the order of the torch calls, so the aten ops are the same."""

    relative_position_index: torch.Tensor  # a buffer

    def __init__(
        self,
        dim: int,
        window: int,
        shift: int,
        heads: int,
        attention_dropout: float = 0.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.dim, self.window, self.shift, self.heads = dim, window, shift, heads
        self.attention_dropout = attention_dropout
        self.dropout = dropout
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.add_position_state()

    def add_position_state(self) -> None:
        """The state the position bias comes from, registered after qkv and proj."""
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * self.window - 1) * (2 * self.window - 1), self.heads)
        )
        self.register_buffer("relative_position_index", relative_position_index(self.window))

    def reset_index(self) -> None:
        """Compute the index buffer again (after the module was built without storage)."""
        with torch.no_grad():
            self.relative_position_index.copy_(relative_position_index(self.window))

    def position_bias(self) -> torch.Tensor:
        """The relative position bias of a window's pairs, [1, heads, n, n]."""
        return pair_bias(
            self.relative_position_bias_table, self.relative_position_index, self.window
        )

    def cosine_scale(self) -> torch.Tensor | None:
        """Swin V2's learned scale of cosine attention; None: scaled dot products."""
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # a local, not a temporary argument: the bias is freed after the attention's own
        # values, when this frame ends, as in torchvision's forward (the allocator sees the same)
        bias = self.position_bias()
        return window_attention(
            x,
            self.qkv.weight,
            self.proj.weight,
            bias,
            [self.window, self.window],
            self.heads,
            [self.shift, self.shift],
            self.attention_dropout,
            self.dropout,
            self.qkv.bias,
            self.proj.bias,
            self.training,
            self.cosine_scale(),
        )

    def extra_repr(self) -> str:
        return f"window={self.window}, shift={self.shift}, heads={self.heads}"


def pair_bias(table: torch.Tensor, index: torch.Tensor, window: int) -> torch.Tensor:
    """Each pair of a window's positions' row of a bias table [offsets, heads], as
    [1, heads, n, n] (n = window^2)."""
    n = window * window
    # rebound step by step, so the gathered rows are freed before the table, as torchvision's
    bias = table[index]
    bias = bias.view(n, n, -1)
    bias = bias.permute(2, 0, 1).contiguous().unsqueeze(0)
    return bias


def relative_position_index(window: int) -> torch.Tensor:
    """For each pair of positions in a window, the row of the bias table holding their relative
    offset (dy, dx): (dy + w - 1) * (2w - 1) + (dx + w - 1), flattened [w^4], int64."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij"))
    flat = torch.flatten(coords, 1)
    relative = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
    relative[:, :, 0] += window - 1
    relative[:, :, 1] += window - 1
    relative[:, :, 0] *= 2 * window - 1
    return relative.sum(-1).flatten()


class WindowAttentionV2(WindowAttention):
    """Swin V2's (shifted) window attention (Liu et al. 2022, Sec. 3.2-3.3) over a channels-last
    map [N, H, W, C]: the windows of WindowAttention, but scaled cosine attention (q and k
    normalised, their product times a learned per-head scale, ``exp(logit_scale)`` at most
    100, the keys without bias) and a continuous relative position bias: a small MLP
    (``cpb_mlp``) maps each log-spaced offset of the buffer ``relative_coords_table`` to a bias
    per head, 16 * sigmoid(.). The parameters, buffers and their order are torchvision's
    ShiftedWindowAttentionV2's, and so is the order of the torch calls."""

    relative_coords_table: torch.Tensor  # a buffer

    def add_position_state(self) -> None:
        self.register_buffer("relative_coords_table", relative_coords_table(self.window))
        self.register_buffer("relative_position_index", relative_position_index(self.window))
        self.logit_scale = nn.Parameter(torch.log(10 * torch.ones((self.heads, 1, 1))))
        # 512 hidden units, as torchvision's (ops.CPB_HIDDEN counts them; `netc emit` copies
        # this class standalone, so the figure is written here)
        self.cpb_mlp = nn.Sequential(
            nn.Linear(2, 512), nn.ReLU(inplace=True), nn.Linear(512, self.heads, bias=False)
        )

    def reset_index(self) -> None:
        """Compute the buffers again (after the module was built without storage)."""
        with torch.no_grad():
            self.relative_coords_table.copy_(relative_coords_table(self.window))
            self.relative_position_index.copy_(relative_position_index(self.window))

    def position_bias(self) -> torch.Tensor:
        # the MLP's table is a temporary argument, not a local: freed before the sigmoid runs,
        # as in torchvision's
        bias = pair_bias(
            self.cpb_mlp(self.relative_coords_table).view(-1, self.heads),
            self.relative_position_index,
            self.window,
        )
        return 16 * torch.sigmoid(bias)

    def cosine_scale(self) -> torch.Tensor | None:
        return self.logit_scale


def relative_coords_table(window: int) -> torch.Tensor:
    """Swin V2's relative offsets (dy, dx) of a window, [1, 2w-1, 2w-1, 2] float32: each scaled
    to [-8, 8], then log-spaced, sign * log2(1 + |.|) / 3."""
    offsets = torch.arange(-(window - 1), window, dtype=torch.float32)
    table = torch.stack(torch.meshgrid([offsets, offsets], indexing="ij"))
    table = table.permute(1, 2, 0).contiguous().unsqueeze(0)
    table[:, :, :, 0] /= window - 1
    table[:, :, :, 1] /= window - 1
    table *= 8
    return torch.sign(table) * torch.log2(torch.abs(table) + 1.0) / 3.0


def window_attention(
    x: torch.Tensor,
    qkv_weight: torch.Tensor,
    proj_weight: torch.Tensor,
    bias: torch.Tensor,
    window_size: list[int],
    heads: int,
    shift_size: list[int],
    attention_dropout: float,
    dropout: float,
    qkv_bias: torch.Tensor | None,
    proj_bias: torch.Tensor | None,
    training: bool,
    logit_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Window attention on [N, H, W, C], as WindowAttention describes; with ``logit_scale``,
    Swin V2's scaled cosine attention (WindowAttentionV2)."""
    b, h, w, c = x.shape
    pad_r = (window_size[1] - w % window_size[1]) % window_size[1]
    pad_b = (window_size[0] - h % window_size[0]) % window_size[0]
    x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    _, pad_h, pad_w, _ = x.shape
    shift = shift_size.copy()
    if window_size[0] >= pad_h:  # one window covers the map: nothing to shift
        shift[0] = 0
    if window_size[1] >= pad_w:
        shift[1] = 0
    if sum(shift) > 0:
        x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
    num_windows = (pad_h // window_size[0]) * (pad_w // window_size[1])
    x = x.view(
        b, pad_h // window_size[0], window_size[0], pad_w // window_size[1], window_size[1], c
    )
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b * num_windows, window_size[0] * window_size[1], c)

    if logit_scale is not None and qkv_bias is not None:  # V2: the keys have no bias
        qkv_bias = qkv_bias.clone()
        length = qkv_bias.numel() // 3
        qkv_bias[length : 2 * length].zero_()
    qkv = F.linear(x, qkv_weight, qkv_bias)
    qkv = qkv.reshape(x.size(0), x.size(1), 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    if logit_scale is not None:  # V2: cosine similarity times a learned scale (at most 100)
        attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
        # log(100), written out: `netc emit` copies this function into a file without `math`
        logit_scale = torch.clamp(logit_scale, max=4.605170185988092).exp()
        attn = attn * logit_scale
    else:
        q = q * (c // heads) ** -0.5
        attn = q.matmul(k.transpose(-2, -1))
    attn = attn + bias
    if sum(shift) > 0:  # pairs that were not neighbours before the shift do not attend
        mask = x.new_zeros((pad_h, pad_w))
        h_slices = ((0, -window_size[0]), (-window_size[0], -shift[0]), (-shift[0], None))
        w_slices = ((0, -window_size[1]), (-window_size[1], -shift[1]), (-shift[1], None))
        count = 0
        for hs in h_slices:
            for ws in w_slices:
                mask[hs[0] : hs[1], ws[0] : ws[1]] = count
                count += 1
        mask = mask.view(
            pad_h // window_size[0], window_size[0], pad_w // window_size[1], window_size[1]
        )
        mask = mask.permute(0, 2, 1, 3).reshape(num_windows, window_size[0] * window_size[1])
        mask = mask.unsqueeze(1) - mask.unsqueeze(2)
        mask = mask.masked_fill(mask != 0, (-100.0)).masked_fill(mask == 0, 0.0)
        attn = attn.view(x.size(0) // num_windows, num_windows, heads, x.size(1), x.size(1))
        attn = attn + mask.unsqueeze(1).unsqueeze(0)
        attn = attn.view(-1, heads, x.size(1), x.size(1))
    attn = F.softmax(attn, dim=-1)
    attn = F.dropout(attn, p=attention_dropout, training=training)
    x = attn.matmul(v).transpose(1, 2).reshape(x.size(0), x.size(1), c)
    x = F.linear(x, proj_weight, proj_bias)
    x = F.dropout(x, p=dropout, training=training)

    x = x.view(
        b, pad_h // window_size[0], pad_w // window_size[1], window_size[0], window_size[1], c
    )
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, pad_h, pad_w, c)
    if sum(shift) > 0:
        x = torch.roll(x, shifts=(shift[0], shift[1]), dims=(1, 2))
    return x[:, :h, :w, :].contiguous()


def patch_merging(x: torch.Tensor) -> torch.Tensor:
    """Swin's patch merging before its norm and reduction: each 2x2 patch of a channels-last map
    [N, H, W, C] (zero-padded to even sides) side by side, [N, H/2, W/2, 4C], in torchvision's
    order (x0, x1, x2, x3)."""
    h, w, _ = x.shape[-3:]
    x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
    x0 = x[..., 0::2, 0::2, :]
    x1 = x[..., 1::2, 0::2, :]
    x2 = x[..., 0::2, 1::2, :]
    x3 = x[..., 1::2, 1::2, :]
    return torch.cat([x0, x1, x2, x3], -1)


class PatchMerging(nn.Module):
    """Swin's patch merging (Liu et al. 2021, Sec. 3.1): each 2x2 patch of a channels-last map
    side by side (4C channels), a layer norm, and a bias-free linear to 2C; torchvision's
    module, its ``reduction`` registered before its ``norm`` as there (the state_dict's order)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reduction(self.norm(patch_merging(x)))


class PatchMergingV2(nn.Module):
    """Swin V2's patch merging: as PatchMerging, but the layer norm after the reduction, on
    the 2C channels (torchvision's PatchMergingV2)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(2 * dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.reduction(patch_merging(x)))


class RelativeAttention(nn.Module):
    """MaxViT's multi-head attention within groups of tokens [N, G, P, C] (Tu et al. 2022,
    Sec. 3.1): q, k, v from one linear (``to_qkv``), keys scaled by C^-0.5 (the channels, not a
    head's: torchvision's), a learned relative position bias over the sqrt(P) x sqrt(P) window
    or grid (``relative_position_bias_table``, the int64 buffer ``relative_position_index``
    [P, P]), softmax, and ``merge``. torchvision's RelativePositionalMultiHeadAttention: its
    parameters, buffer and torch calls."""

    relative_position_index: torch.Tensor  # a buffer

    def __init__(self, dim: int, head_dim: int, tokens: int) -> None:
        super().__init__()
        self.dim, self.head_dim, self.tokens = dim, head_dim, tokens
        self.heads = dim // head_dim
        self.side = round(tokens**0.5)
        self.to_qkv = nn.Linear(dim, dim * 3)
        self.merge = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(
            torch.empty((2 * self.side - 1) * (2 * self.side - 1), self.heads)
        )
        index = relative_position_index(self.side).view(tokens, tokens)
        self.register_buffer("relative_position_index", index)

    def reset_index(self) -> None:
        """Compute the index buffer again (after the module was built without storage)."""
        with torch.no_grad():
            index = relative_position_index(self.side).view(self.tokens, self.tokens)
            self.relative_position_index.copy_(index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the locals and their rebinding are torchvision's, so each value is freed when it is
        # there (the allocator sees the same program)
        b, g, p, d = x.shape
        heads, head_dim = self.heads, self.head_dim
        qkv = self.to_qkv(x)
        q, k, v = torch.chunk(qkv, 3, dim=-1)
        q = q.reshape(b, g, p, heads, head_dim).permute(0, 1, 3, 2, 4)
        k = k.reshape(b, g, p, heads, head_dim).permute(0, 1, 3, 2, 4)
        v = v.reshape(b, g, p, heads, head_dim).permute(0, 1, 3, 2, 4)
        k = k * self.dim**-0.5
        dot = torch.einsum("B G H I D, B G H J D -> B G H I J", q, k)
        index = self.relative_position_index.view(-1)
        bias = self.relative_position_bias_table[index].view(self.tokens, self.tokens, -1)
        bias = bias.permute(2, 0, 1).contiguous().unsqueeze(0)
        dot = F.softmax(dot + bias, dim=-1)
        out = torch.einsum("B G H I J, B G H J D -> B G H I D", dot, v)
        out = out.permute(0, 1, 3, 2, 4).reshape(b, g, p, d)
        out = self.merge(out)
        return out

    def extra_repr(self) -> str:
        return f"heads={self.heads}, tokens={self.tokens}"


def partition(x: torch.Tensor, size: int, grid: bool) -> torch.Tensor:
    """MaxViT's partition of a map [N, C, H, W] into groups of size x size tokens, [N, G, P, C]:
    contiguous size x size windows (block attention), or, for ``grid``, the tokens that lie
    H / size apart (grid attention: windows of H / size, then groups and tokens swapped), in
    torchvision's calls (WindowPartition, SwapAxes)."""
    b, c, h, w = x.shape
    p = h // size if grid else size
    x = x.reshape(b, c, h // p, p, w // p, p)
    x = x.permute(0, 2, 4, 3, 5, 1)
    x = x.reshape(b, (h // p) * (w // p), p * p, c)
    return torch.swapaxes(x, -2, -3) if grid else x


def departition(x: torch.Tensor, like: torch.Tensor, size: int, grid: bool) -> torch.Tensor:
    """The inverse of partition: groups of tokens back to a map shaped as ``like`` [N, C, H, W]
    (torchvision's SwapAxes, WindowDepartition)."""
    h, w = like.shape[-2:]
    p = h // size if grid else size
    if grid:
        x = torch.swapaxes(x, -2, -3)
    b, _, _, c = x.shape
    x = x.reshape(b, h // p, w // p, p, p, c)
    x = x.permute(0, 5, 1, 3, 2, 4)
    return x.reshape(b, c, h, w)
