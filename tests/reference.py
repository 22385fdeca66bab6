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
    # Res2Net (Gao et al. 2019): timm's parameter counts, and the MACs of timm 1.0's model at
    # 224x224 (FlopCounterMode / 2)
    "res2net50_26w_4s": (25699120, 4255166464),
    "res2net50_26w_6s": (37051448, 6295523328),
    "res2net50_26w_8s": (48403776, 8335880192),
    "res2net50_48w_2s": (25287304, 4159832064),
    "res2next50": (24671464, 4172677120),
    # DLA (Yu et al. 2018): timm's parameter counts, and timm 1.0's MACs at 224x224
    "dla34": (15742104, 3060043776),
    "dla46_c": (1301400, 574269440),
    "dla60": (22036632, 4235878400),
    "dla102": (33268888, 7164551168),
    # selective kernel ResNets (Li et al. 2019), timm's: params, and MACs at 224x224
    "skresnet18": (11958056, 1814337536),
    "skresnet34": (22282376, 3664237568),
    # GhostNet (Han et al. 2020), timm's: params, and MACs at 224x224
    "ghostnet_100": (5182508, 141150512),
    # CSPNet (Wang et al. 2020), timm's: params, and MACs at 224x224 (CSPDarkNet-53: 256x256,
    # its nominal input)
    "cspresnet50": (21616168, 3458752512),
    "cspdarknet53": (27642184, 6533652480),
    # DPN (Chen et al. 2017), timm's: params, and MACs at 224x224
    "dpn68": (12611602, 2326163456),
    # HRNet (Wang et al. 2019), timm's with its classification head: params, MACs at 224x224
    "hrnet_w18_small": (13187464, 1601508352),
    "hrnet_w18": (21299004, 4283537072),
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

# torchvision 0.29.1 weights meta: params (exact), GMACs at the crop size (3 decimals), crop side
ZOO = {
    "mobilenet_v2": (3504872, 0.301, 224),
    "mobilenet_v3_large": (5483032, 0.217, 224),
    "mobilenet_v3_small": (2542856, 0.057, 224),
    "efficientnet_b0": (5288548, 0.386, 224),
    "efficientnet_b1": (7794184, 0.687, 240),
    "efficientnet_b2": (9109994, 1.088, 288),
    "efficientnet_b3": (12233232, 1.827, 300),
    "efficientnet_b4": (19341616, 4.394, 380),
    "efficientnet_b5": (30389784, 10.266, 456),
    "efficientnet_b6": (43040704, 19.068, 528),
    "efficientnet_b7": (66347960, 37.746, 600),
    "efficientnet_v2_s": (21458488, 8.366, 384),
    "efficientnet_v2_m": (54139356, 24.582, 480),
    "efficientnet_v2_l": (118515272, 56.08, 480),
    "regnet_x_400mf": (5495976, 0.414, 224),
    "regnet_x_800mf": (7259656, 0.8, 224),
    "regnet_x_1_6gf": (9190136, 1.603, 224),
    "regnet_x_3_2gf": (15296552, 3.177, 224),
    "regnet_x_8gf": (39572648, 7.995, 224),
    "regnet_x_16gf": (54278536, 15.941, 224),
    "regnet_x_32gf": (107811560, 31.736, 224),
    "regnet_y_400mf": (4344144, 0.402, 224),
    "regnet_y_800mf": (6432512, 0.834, 224),
    "regnet_y_1_6gf": (11202430, 1.612, 224),
    "regnet_y_3_2gf": (19436338, 3.176, 224),
    "regnet_y_8gf": (39381472, 8.473, 224),
    "regnet_y_16gf": (83590140, 15.912, 224),
    "regnet_y_32gf": (145046770, 32.28, 224),
    "regnet_y_128gf": (644812894, 374.57, 384),
    "convnext_tiny": (28589128, 4.456, 224),
    "convnext_small": (50223688, 8.684, 224),
    "convnext_base": (88591464, 15.355, 224),
    "convnext_large": (197767336, 34.361, 224),
    "alexnet": (61100840, 0.714, 224),
    "vgg11": (132863336, 7.609, 224),
    "vgg11_bn": (132868840, 7.609, 224),
    "vgg13": (133047848, 11.308, 224),
    "vgg13_bn": (133053736, 11.308, 224),
    "vgg16": (138357544, 15.47, 224),
    "vgg16_bn": (138365992, 15.47, 224),
    "vgg19": (143667240, 19.632, 224),
    "vgg19_bn": (143678248, 19.632, 224),
    "squeezenet1_0": (1248424, 0.819, 224),
    "squeezenet1_1": (1235496, 0.349, 224),
    "densenet121": (7978856, 2.834, 224),
    "densenet161": (28681000, 7.728, 224),
    "densenet169": (14149480, 3.36, 224),
    "densenet201": (20013928, 4.291, 224),
    "mnasnet0_5": (2218512, 0.104, 224),
    "mnasnet0_75": (3170208, 0.215, 224),
    "mnasnet1_0": (4383312, 0.314, 224),
    "mnasnet1_3": (6282256, 0.526, 224),
    "googlenet": (6624904, 1.498, 224),  # without the auxiliary classifiers (not deployed)
    "inception_v3": (27161264, 5.713, 299),  # with its auxiliary classifier (in its weights)
    "vit_b_16": (86567656, 17.564, 224),
    "vit_b_32": (88224232, 4.409, 224),
    "vit_l_16": (304326632, 61.555, 224),
    "vit_l_32": (306535400, 15.378, 224),
    "vit_h_14": (633470440, 1016.717, 518),
    "swin_t": (28288354, 4.491, 224),
    "swin_s": (49606258, 8.741, 224),
    "swin_b": (87768224, 15.431, 224),
    "swin_v2_t": (28351570, 5.94, 256),
    "swin_v2_s": (49737442, 11.546, 256),
    "swin_v2_b": (87930848, 20.325, 256),
    "maxvit_t": (30919624, 5.558, 224),
    "shufflenet_v2_x0_5": (1366792, 0.04, 224),
    "shufflenet_v2_x1_0": (2278604, 0.145, 224),
    "shufflenet_v2_x1_5": (3503624, 0.296, 224),
    "shufflenet_v2_x2_0": (7393996, 0.583, 224),
}

# torchvision 0.29.1 video weights meta (Kinetics-400): params (exact), GMACs at the clip size
# (3 decimals), the clip [C, T, H, W] the figures are for
VIDEO = {
    "r3d_18": (33371472, 40.697, (3, 16, 112, 112)),
    "mc3_18": (11695440, 43.343, (3, 16, 112, 112)),
    "r2plus1d_18": (31505325, 40.519, (3, 16, 112, 112)),
    "s3d": (8320048, 17.979, (3, 16, 224, 224)),
}
