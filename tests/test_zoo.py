"""torchvision's classification zoo (MobileNet, EfficientNet, RegNet, ConvNeXt, VGG, AlexNet,
SqueezeNet, DenseNet, MNASNet, ShuffleNetV2, GoogLeNet, Inception v3, ViT, Swin, Swin V2,
MaxViT) from the library's specs, proven equal to torchvision's models as the ResNets are:
counts against torchvision's weights meta, state_dict keys/order/shapes, strict load, eval and
train outputs under the same random draws (dropout, stochastic depth), gradients and BN
statistics, the aten op sequence, and each family's initialisation.

Outputs are compared at a reduced input size (the figures at the crop size); the largest model,
regnet_y_128gf, proves keys, shapes and counts on the meta device and its outputs in eval mode;
VGG-13/16/19 (with and without BN) prove eval mode, their block and classifier train mode on
VGG-11 and VGG-11-BN; Inception v3 runs eval at 75x75, its smallest input, and train mode at
299x299, which its auxiliary classifier needs; MaxViT-T runs at 224x224, its smallest input.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import compiler
from compiler.lowering.lower import lower
from tests.conftest import SPECS
from tests.reference import ZOO
from tests.test_equivalence import assert_same_training_step, aten_ops, close

pytestmark = pytest.mark.zoo

SIZE = 64  # outputs are compared at 64x64 (every family downsamples by 32: a 2x2 map at the end)
# Inception v3's valid convolutions need 75x75 (its smallest input); its auxiliary classifier,
# which runs in training, needs the 17x17 grid of a 299x299 input; MaxViT's 7x7 windows and grid
# need a last map of 7x7, so 224x224
EVAL_SIZE = {"inception_v3": 75, "maxvit_t": 224}
TRAIN_SIZE = {"inception_v3": 299, "maxvit_t": 224}
# torchvision's weights meta counts the auxiliary classifier where the weights hold it
META_COUNTS_AUX = {"inception_v3"}
# a ViT's position embedding fixes its input size: both networks are built for the size their
# outputs are compared at (ViT-B/16 at its own 224; patches of 14 need a multiple of 14)
BUILD_SIZE = {"vit_b_16": 224, "vit_b_32": 64, "vit_l_16": 64, "vit_l_32": 64, "vit_h_14": 56}


def build_pair(name: str) -> tuple[nn.Module, nn.Module, int]:
    """torchvision's model (seeded) and netc's from the library spec, both built for the size the
    outputs are compared at, and that size."""
    size = BUILD_SIZE.get(name, 0)
    torch.manual_seed(0)
    ref = reference(name, image_size=size or None)
    overrides = [f"input=[3, {size}, {size}]"] if size else None
    ours = compiler.compile(SPECS / f"{name}.yaml", overrides)
    _nontrivial_zeros(ref)
    return ours, ref, size


def _nontrivial_zeros(model: nn.Module) -> None:
    """A layer that starts at zero (ViT's classifier) would make every output and gradient
    before it zero: random values, so a comparison sees the whole network."""
    g = torch.Generator().manual_seed(6)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1 and not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)


# keys, shapes and counts on the meta device, eval outputs at 64x64, no train-mode run (four
# copies of 645 M parameters); regnet_y_32gf proves the same block type in train mode
META_ONLY = {"regnet_y_128gf"}
ZOO_NAMES = sorted(n for n in ZOO if (SPECS / f"{n}.yaml").exists())


def reference(name: str, device: str = "cpu", image_size: int | None = None) -> nn.Module:
    """torchvision's model, built on ``device`` (meta: no memory, no init); a ViT for
    ``image_size`` (its position embedding has one length), by default the spec's."""
    import torchvision
    from torchvision.models import regnet

    rule = regnet.BlockParams.from_init_params.__func__  # type: ignore[attr-defined]

    def on_cpu(cls: type, *args: object, **kwargs: object) -> object:
        with torch.device("cpu"):  # RegNet's width rule computes with tensors
            return rule(cls, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch, torch.device(device):
        patch.setattr(regnet.BlockParams, "from_init_params", classmethod(on_cpu))
        # GoogLeNet and Inception v3 warn unless told to keep their (default) initialisation
        kwargs: dict[str, object] = {}
        if name in ("googlenet", "inception_v3"):
            kwargs["init_weights"] = True
        if name.startswith("vit_"):
            kwargs["image_size"] = image_size or ZOO[name][2]
        return getattr(torchvision.models, name)(**kwargs)  # type: ignore[no-any-return]


def test_every_zoo_model_has_a_spec() -> None:
    assert sorted(ZOO) == ZOO_NAMES


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_counts_and_keys_match_torchvision(name: str) -> None:
    """Parameters equal the weights meta exactly, MACs at its crop size (3 decimals, and
    FlopCounterMode / 2 on netc's module), and the state_dict's keys, order and shapes."""
    params, gmacs, crop = ZOO[name]
    graph = compiler.load_spec(SPECS / f"{name}.yaml")
    assert graph.input_shape == (3, crop, crop)
    # the weights meta counts the deployed network: without training-only (aux) classifiers,
    # but for Inception v3, whose weights hold its auxiliary classifier
    counted = graph.nodes if name in META_COUNTS_AUX else graph.deployed()
    assert sum(graph.nodes[n].meta["params"] for n in counted) == params
    assert round(graph.macs / 1e9, 3) == gmacs
    with torch.device("meta"):
        ours = lower(graph)
    ref = reference(name, "meta")
    mine = [(k, tuple(v.shape)) for k, v in ours.state_dict().items()]
    theirs = [(k, tuple(v.shape)) for k, v in ref.state_dict().items()]
    assert mine == theirs
    assert graph.params == sum(p.numel() for p in ref.parameters())
    x = torch.empty(1, 3, crop, crop, device="meta")
    with FlopCounterMode(display=False) as counter:
        ours.eval()(x)
    assert counter.get_total_flops() == 2 * graph.macs


@pytest.fixture(scope="module", params=ZOO_NAMES)
def pair(request: pytest.FixtureRequest) -> tuple[str, nn.Module, nn.Module]:
    name = request.param
    ours, ref, _ = build_pair(name)
    _nontrivial_bn(ref)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return name, ours, ref


def _nontrivial_bn(model: nn.Module) -> None:
    """Random BN statistics and affine values, so eval mode tests more than the identity."""
    g = torch.Generator().manual_seed(5)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def test_eval_outputs_and_aten_ops(pair: tuple[str, nn.Module, nn.Module]) -> None:
    name, ours, ref = pair
    torch.manual_seed(2)
    size = BUILD_SIZE.get(name) or EVAL_SIZE.get(name, SIZE)
    x = torch.randn(2, 3, size, size)
    ours.eval()
    ref.eval()
    with torch.no_grad():
        assert close(ours(x), ref(x))
        if name.startswith(("vit_", "swin_", "maxvit_")):  # the same torch calls: the same bits
            assert torch.equal(ours(x), ref(x))
    assert aten_ops(ours, x[:1]) == aten_ops(ref, x[:1])


# the VGGs share one flat block and a classifier: train mode on the smallest with and without BN;
# the ViTs one encoder block: train mode on ViT-B/16 and B/32
SAME_AS_TRAINED = {"vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"}
SAME_AS_TRAINED |= {"vit_l_16", "vit_l_32", "vit_h_14"}


@pytest.mark.parametrize(
    "name", [n for n in ZOO_NAMES if n not in META_ONLY and n not in SAME_AS_TRAINED]
)
def test_train_mode_same_draws_stats_and_gradients(name: str) -> None:
    """Dropout and stochastic depth draw the same random numbers in the same order."""
    ours, ref, built = build_pair(name)
    ours.load_state_dict(ref.state_dict(), strict=True)
    size = built or TRAIN_SIZE.get(name, SIZE)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(3))
    assert_same_training_step(ours, ref, x, grad_tol=1e-4)


@pytest.mark.parametrize(
    "name",
    [
        "mobilenet_v2",
        "mobilenet_v3_small",
        "efficientnet_b0",
        "regnet_y_400mf",
        "convnext_tiny",
        "vgg11_bn",
        "alexnet",
        "squeezenet1_1",
        "densenet121",
        "mnasnet0_5",
        "shufflenet_v2_x1_0",
        "googlenet",
        "inception_v3",
        "vit_b_16",
        "swin_t",
        "swin_v2_t",
        "maxvit_t",
    ],
)
def test_initialisation_follows_the_family(name: str) -> None:
    """Per-tensor mean and std of ``compile(seed=...)`` equal torchvision's own init's: constants
    exactly, random tensors within sampling error."""
    ours = dict(compiler.compile(SPECS / f"{name}.yaml", seed=0).state_dict())
    torch.manual_seed(0)
    theirs = reference(name).state_dict()
    for key, ref in theirs.items():
        mine = ours[key].float()
        ref = ref.float()
        if ref.numel() == 1 or ref.std() == 0:
            assert torch.equal(mine, ref), key
            continue
        n = ref.numel()
        std = float(ref.std())
        # the mean of n draws is within 6 standard errors; the std within 6 of its own
        assert abs(float(mine.mean()) - float(ref.mean())) <= 6 * std / n**0.5, key
        assert abs(float(mine.std()) - std) <= 6 * std * (2 / n) ** 0.5 + 1e-8, key


def test_transform_input_constants_are_the_op_tables() -> None:
    """The lowering writes torchvision's expressions out (netc emit copies it standalone); the
    ONNX rule reads the op table's ImageNet mean and std: the two agree, value for value."""
    from compiler.lowering import modules
    from compiler.ops import IMAGENET_MEAN, IMAGENET_STD

    zero = modules.transform_input(torch.zeros(1, 3, 1, 1)).flatten()
    one = modules.transform_input(torch.ones(1, 3, 1, 1)).flatten()
    shift = torch.tensor([(m - 0.5) / 0.5 for m in IMAGENET_MEAN])
    scale = torch.tensor([s / 0.5 for s in IMAGENET_STD])
    assert torch.equal(zero, shift) and torch.equal(one, scale + shift)


@pytest.mark.parametrize(("name", "size"), [("googlenet", 64), ("inception_v3", 75)])
def test_transform_input_is_torchvisions(name: str, size: int) -> None:
    """`params.transform_input=true` renormalises the input as torchvision's transform_input=True
    (which loading the original weights sets): the same outputs, bit for bit, and aten ops."""
    import torchvision

    torch.manual_seed(0)
    theirs = getattr(torchvision.models, name)(transform_input=True, init_weights=True)
    ours = compiler.compile(SPECS / f"{name}.yaml", ["params.transform_input=true"])
    plain = compiler.compile(SPECS / f"{name}.yaml")
    for model in (ours, plain):
        model.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert torch.equal(ours.eval()(x), theirs.eval()(x))
    assert aten_ops(ours, x[:1]) == aten_ops(theirs, x[:1])
    # the default leaves the input as it is: the first conv sees x itself
    first = "conv1.conv" if name == "googlenet" else "Conv2d_1a_3x3.conv"
    seen: list[torch.Tensor] = []
    for model in (ours, plain):
        hook = model.get_submodule(first).register_forward_pre_hook(lambda m, a: seen.append(a[0]))
        with torch.no_grad():
            model.eval()(x)
        hook.remove()
    assert torch.equal(seen[1], x) and not torch.equal(seen[0], x)


def test_vit_dropout_draws_are_torchvisions() -> None:
    """With dropout and attention dropout on (torchvision's defaults are 0), train mode draws
    the same random numbers in the same order: after the position embedding, on the attention
    weights inside nn.MultiheadAttention, after attention and in the MLP."""
    import torchvision

    torch.manual_seed(0)
    ref = torchvision.models.vit_b_16(image_size=32, dropout=0.1, attention_dropout=0.1)
    _nontrivial_zeros(ref)
    sets = ["input=[3, 32, 32]", "params.dropout=0.1", "params.attention_dropout=0.1"]
    ours = compiler.compile(SPECS / "vit_b_16.yaml", sets)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    assert_same_training_step(ours, ref, x, grad_tol=1e-4)


def test_attention_macs_are_the_weights_meta_convention() -> None:
    """netc counts attention as torchvision's weights meta does: per block, the q, k, v and
    output projections (4 L D^2) and the two products q k^T and weights x v (2 L^2 D).
    FlopCounterMode sees all of it on the meta device, none of it on the CPU in inference, where
    nn.MultiheadAttention takes its fused fast path (`_native_multi_head_attention`): there
    ViT-B/16 counts 11.271 G of its 17.564."""
    full = compiler.load_spec(SPECS / "vit_b_16.yaml")
    attention = sum(n.meta["macs"] for n in full.nodes.values() if n.op == "self_attention")
    length, dim = 197, 768
    assert attention == 12 * (4 * length * dim**2 + 2 * length**2 * dim)
    assert round(full.macs / 1e9, 3) == 17.564 and round((full.macs - attention) / 1e9, 3) == 11.271
    small = compiler.load_spec(SPECS / "vit_b_16.yaml", ["input=[3, 32, 32]"])
    fused = sum(n.meta["macs"] for n in small.nodes.values() if n.op == "self_attention")
    model = compiler.compile(small).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 3, 32, 32))
    assert counter.get_total_flops() == 2 * (small.macs - fused)


@pytest.mark.parametrize("name", [n for n in ZOO_NAMES if n.startswith("regnet_")])
def test_regnet_rows_follow_from_the_design_space(name: str) -> None:
    """The stage rows (widths, depths, group widths) are what torchvision's
    BlockParams.from_init_params makes of the design-space parameters the spec records."""
    from torchvision.models.regnet import BlockParams

    graph = compiler.load_spec(SPECS / f"{name}.yaml")
    net = graph.origin.data["params"]  # type: ignore[union-attr]
    rule = BlockParams.from_init_params(
        depth=net["depth"],
        w_0=net["w_0"],
        w_a=net["w_a"],
        w_m=net["w_m"],
        group_width=net["group_width"],
        se_ratio=net.get("se_ratio"),
    )
    stages = [st for st in graph.stages if st.block_type == "regnet_bottleneck"]
    firsts = [graph.block_params[st.blocks[0]] for st in stages]
    assert [len(st.blocks) for st in stages] == rule.depths
    assert [p["out"] for p in firsts] == rule.widths
    assert [p["group_width"] for p in firsts] == rule.group_widths
    assert all(p["stride"] == 2 for p in firsts) and rule.strides == [2] * len(stages)
    assert {p["se_ratio"] for p in firsts} == {rule.se_ratio or 0}
