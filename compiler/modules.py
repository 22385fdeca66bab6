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


def add_all(*xs: torch.Tensor) -> torch.Tensor:
    """Sum of three or more tensors (two use ``+`` directly)."""
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out
