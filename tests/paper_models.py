"""Independent reference networks, written by hand from the papers' descriptions (not generated
by netc), with the same module names so weights can be copied across by name.

- He et al. 2015 ("Deep Residual Learning"): ImageNet ResNets with shortcut options A, B, C and
  plain nets (Table 1, Table 3); v1 bottlenecks (stride on the first 1x1); CIFAR-10 nets (Sec. 4.2).
- He et al. 2016 ("Identity Mappings"): full pre-activation units (Fig. 4e), final BN-ReLU.
- Zagoruyko and Komodakis 2016: WRN-28-10 = pre-activation basic units, widths 16k/32k/64k.

Option A here subsamples with stride and appends zero channels after the existing ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PadShortcut(nn.Module):
    """Option A: x[:, :, ::s, ::s] followed by zero channels up to ``out``."""

    def __init__(self, stride: int, extra: int) -> None:
        super().__init__()
        self.stride, self.extra = stride, extra

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, 0, self.extra))


def _shortcut(kind: str, cin: int, cout: int, stride: int, bn: bool = True) -> nn.Module | None:
    changes = stride != 1 or cin != cout
    if kind == "none" or (kind in ("A", "B") and not changes):
        return None
    if kind == "A":
        return PadShortcut(stride, cout - cin)
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 1, stride, bias=False)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers)


class Basic(nn.Module):
    """Fig. 2: two 3x3 weight layers, ReLU between, add, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int, kind: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.kind = kind
        self.sc_name = "shortcut" if kind == "A" else "downsample"
        self.add_module(self.sc_name, _shortcut(kind, cin, cout, stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.kind != "none":
            sc = getattr(self, self.sc_name)
            out = out + (x if sc is None else sc(x))
        return F.relu(out)


class BottleneckV1(nn.Module):
    """Fig. 5 right, v1: 1x1 (strided), 3x3, 1x1, each with BN; add; ReLU."""

    def __init__(self, cin: int, width: int, stride: int, kind: str) -> None:
        super().__init__()
        cout = width * 4
        self.conv1 = nn.Conv2d(cin, width, 1, stride, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = _shortcut(kind, cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class PaperResNet(nn.Module):
    """He et al. 2015 Table 1 networks; ``block`` is 'basic' or 'bottleneck' (v1)."""

    def __init__(self, layers: list[int], block: str, kind: str, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (count, width) in enumerate(zip(layers, [64, 128, 256, 512], strict=True)):
            blocks = []
            for j in range(count):
                stride = 2 if i > 0 and j == 0 else 1
                if block == "basic":
                    blocks.append(Basic(cin, width, stride, kind))
                    cin = width
                else:
                    blocks.append(BottleneckV1(cin, width, stride, kind))
                    cin = width * 4
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class CifarResNet(nn.Module):
    """He et al. 2015 Sec. 4.2: 3x3 conv 16, then 3 stages of n basic blocks (16, 32, 64)."""

    def __init__(self, n: int, kind: str = "A", num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        cin = 16
        for i, width in enumerate([16, 32, 64]):
            blocks = []
            for j in range(n):
                blocks.append(Basic(cin, width, 2 if i > 0 and j == 0 else 1, kind))
                cin = width
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class PreActUnit(nn.Module):
    """He et al. 2016 Fig. 4e: (BN-ReLU-conv) x 2 (basic) or x 3 (bottleneck), then add.

    A projection (1x1 conv, no BN) reads the pre-activated input; identity the raw input.
    """

    def __init__(self, cin: int, width: int, stride: int, bottleneck: bool) -> None:
        super().__init__()
        cout = width * 4 if bottleneck else width
        self.bottleneck = bottleneck
        self.bn1 = nn.BatchNorm2d(cin)
        if bottleneck:
            self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.downsample = (
            nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        out = self.conv1(pre)
        out = self.conv2(F.relu(self.bn2(out)))
        if self.bottleneck:
            out = self.conv3(F.relu(self.bn3(out)))
        return out + (x if self.downsample is None else self.downsample(pre))


class PreActResNet(nn.Module):
    """Pre-activation ResNets: CIFAR (3x3 stem, 3 stages) or ImageNet (7x7 stem + maxpool, 4)."""

    def __init__(
        self,
        layers: list[int],
        widths: list[int],
        bottleneck: bool,
        imagenet: bool,
        num_classes: int,
    ) -> None:
        super().__init__()
        self.imagenet = imagenet
        self.conv1 = nn.Conv2d(
            3,
            64 if imagenet else 16,
            7 if imagenet else 3,
            2 if imagenet else 1,
            3 if imagenet else 1,
            bias=False,
        )
        cin = self.conv1.out_channels
        for i, (count, width) in enumerate(zip(layers, widths, strict=True)):
            units = []
            for j in range(count):
                units.append(PreActUnit(cin, width, 2 if i > 0 and j == 0 else 1, bottleneck))
                cin = width * 4 if bottleneck else width
            self.add_module(f"layer{i + 1}", nn.Sequential(*units))
        self.stages = len(layers)
        self.bn = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        if self.imagenet:
            x = F.max_pool2d(x, 3, 2, 1)
        for i in range(self.stages):
            x = getattr(self, f"layer{i + 1}")(x)
        x = F.relu(self.bn(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
