"""The torch module of swish_beta (imported only when netc builds a network)."""

from __future__ import annotations

import torch
from torch import nn


class SwishBeta(nn.Module):
    """x * sigmoid(beta * x). Its constructor's arguments are attributes of the same names, as
    torch.nn's are: `netc emit` writes the call that rebuilds it from them."""

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.beta * x)

    def extra_repr(self) -> str:
        return f"beta={self.beta}"
