"""Reference figures, copied from the project's reference table (torchvision 0.29.1 weights meta,
timm 1.0.31 measured with FlopCounterMode, and the papers' tables). MACs are multiply-accumulates
of conv and linear layers for one image; params include BatchNorm weight and bias."""

TORCHVISION = {
    "resnet18": (11689512, 1814073344),
    "resnet34": (21797672, 3663761408),
    "resnet50": (25557032, 4089184256),
    "resnet101": (44549160, 7801405440),
    "resnet152": (60192808, 11513626624),
    "resnext50_32x4d": (25028904, 4230479872),
    "resnext101_32x8d": (88791336, 16414015488),
    "resnext101_64x4d": (83455272, 15460270080),
    "wide_resnet50_2": (68883240, 11398021120),
    "wide_resnet101_2": (126886696, 22753050624),
}

TIMM = {
    "resnet50d": (25576264, 4328824832),
    "resnet26d": (16014408, 2581897216),
}

# He et al. 2015, Table 1: blocks per stage and the paper's rounded GFLOPs (multiply-adds)
HE2015_IMAGENET = {
    "resnet18": ([2, 2, 2, 2], "basic", 1.8),
    "resnet34": ([3, 4, 6, 3], "basic", 3.6),
    "resnet50": ([3, 4, 6, 3], "bottleneck", 3.8),
    "resnet101": ([3, 4, 23, 3], "bottleneck", 7.6),
    "resnet152": ([3, 8, 36, 3], "bottleneck", 11.3),
}

# He et al. 2015 Sec. 4.2 CIFAR-10: n -> params counted as PyTorch does (BN affine included)
HE2015_CIFAR10 = {
    "resnet20": (3, 269722),
    "resnet32": (5, 464154),
    "resnet44": (7, 658586),
    "resnet56": (9, 853018),
    "resnet110": (18, 1727962),
    "resnet1202": (200, 19421274),
}

# He et al. 2016 pre-activation CIFAR-10: n -> (params, params without BN)
HE2016_PREACT_CIFAR10 = {
    "preact_resnet164": (18, 1703258, 1679034),
    "preact_resnet1001": (111, 10327706, 10178490),
}
