"""torchvision's RetinaNet (v1, v2) and FCOS from the library's specs, proven equal to
torchvision's: the network before anchors and NMS (``model.head(model.backbone(images))``, every
parameter of the model). Counts against the weights meta (params, and MACs at 800x800),
state_dict keys/order/shapes (FrozenBatchNorm2d's buffers, no num_batches_tracked), strict load,
the frozen first stages, eval outputs and the aten op sequence at two sizes (one no multiple of
128), train mode with gradients, one head module run on every level, and ONNX with a dynamic
height and width."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import compiler
from compiler.lowering.lower import lower
from compiler.lowering.modules import FrozenBatchNorm
from exporters.onnx import export
from tests.conftest import SPECS
from tests.test_emit import run_source
from tests.test_equivalence import assert_same_training_step, aten_ops, close, layout
from tests.test_pretrained import _cached, torch_home  # noqa: F401 - the fixture, used below
from tests.test_zoo import _nontrivial_bn as _nontrivial_batchnorm

pytestmark = pytest.mark.zoo

# torchvision 0.29's weights meta (COCO_V1): params, and GFLOPS at 800x800, which netc's MACs equal
META = {
    "retinanet_resnet50_fpn": (34_014_999, 151.54),
    "retinanet_resnet50_fpn_v2": (38_198_935, 152.238),
    "fcos_resnet50_fpn": (32_269_600, 128.207),
}
# the parameters trainable_backbone_layers=3 freezes: conv1 and layer1 (and bn1's, a BatchNorm
# that trains in v2; v1's are FrozenBatchNorm2d buffers)
FROZEN = {"retinanet_resnet50_fpn": 11, "retinanet_resnet50_fpn_v2": 33, "fcos_resnet50_fpn": 11}
SIZES = [(96, 128), (97, 80)]  # (height, width): 97x80 is no multiple of P7's stride, 128
OUTPUTS = ["cls_logits", "bbox_regression"]
FCOS_OUTPUTS = [*OUTPUTS, "bbox_ctrness"]


def outputs(name: str) -> list[str]:
    return FCOS_OUTPUTS if name.startswith("fcos") else OUTPUTS


def spec(name: str) -> Path:
    return SPECS / "detection" / f"{name}.yaml"


class Raw(nn.Module):
    """torchvision's detector up to its head's raw outputs, as its forward computes them before
    anchors, box decoding and NMS (its transform's resize and normalisation left out)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = model.backbone, model.head

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.head(list(self.backbone(x).values()))  # type: ignore[no-any-return]


def reference(name: str, device: str = "cpu") -> nn.Module:
    """torchvision's model as its published weights build it (trainable_backbone_layers=3; v1's
    ResNet-50 with FrozenBatchNorm2d), randomly initialised: the builder's pretrained path,
    without the download."""
    from functools import partial

    from torchvision.models import resnet50
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.models.detection.fcos import FCOS
    from torchvision.models.detection.retinanet import RetinaNet, RetinaNetHead
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7
    from torchvision.ops.misc import FrozenBatchNorm2d

    v2 = name.endswith("_v2")
    with torch.device(device):
        body = resnet50() if v2 else resnet50(norm_layer=FrozenBatchNorm2d)
        extra = LastLevelP6P7(2048 if v2 else 256, 256)
        backbone = _resnet_fpn_extractor(body, 3, returned_layers=[2, 3, 4], extra_blocks=extra)
        if name.startswith("fcos"):
            return Raw(FCOS(backbone, num_classes=91))
        if not v2:
            return Raw(RetinaNet(backbone, num_classes=91))
        head = RetinaNetHead(256, 9, 91, norm_layer=partial(nn.GroupNorm, 32))
        return Raw(RetinaNet(backbone, num_classes=91, head=head))


def _nontrivial_bn(model: nn.Module) -> None:
    """Random statistics and affine values in every BatchNorm (the zoo's), and affine values in
    every GroupNorm."""
    _nontrivial_batchnorm(model)
    g = torch.Generator().manual_seed(6)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.GroupNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


def _nontrivial_frozen_bn(model: nn.Module) -> None:
    """Random statistics and affine values in every frozen BatchNorm."""
    g = torch.Generator().manual_seed(5)
    for m in model.modules():
        if type(m).__name__ == "FrozenBatchNorm2d":
            c = m.weight.shape[0]
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.copy_(torch.randn(c, generator=g) * 0.1)


@pytest.mark.parametrize("name", sorted(META))
def test_counts_keys_and_frozen_parameters_match_torchvision(name: str) -> None:
    params, gflops = META[name]
    graph = compiler.load_spec(spec(name))
    assert graph.input_shape == (3, 800, 800) and graph.sizes is not None
    assert graph.params == params
    assert round(graph.macs / 1e9, 3) == gflops
    assert graph.output_keys == outputs(name)
    with torch.device("meta"):
        ours = lower(graph)
    ref = reference(name, "meta")
    assert layout(ours) == layout(ref)
    tracked = any(k.endswith("num_batches_tracked") for k in ours.state_dict())
    assert tracked == name.endswith("_v2")  # v1's FrozenBatchNorm2d keeps no step count
    frozen = [k for k, p in ours.named_parameters() if not p.requires_grad]
    assert frozen == [k for k, p in ref.named_parameters() if not p.requires_grad]
    assert frozen[0] == "backbone.body.conv1.weight" and len(frozen) == FROZEN[name]
    assert sum(p.numel() for p in ours.parameters()) == params


@pytest.fixture(scope="module", params=sorted(META))
def pair(request: pytest.FixtureRequest) -> tuple[str, nn.Module, nn.Module]:
    name = request.param
    torch.manual_seed(0)
    ref = reference(name)
    _nontrivial_frozen_bn(ref)
    _nontrivial_bn(ref)
    ours = compiler.compile(spec(name))
    ours.load_state_dict(ref.state_dict(), strict=True)
    return name, ours, ref


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_eval_outputs_and_aten_ops_at_any_size(
    pair: tuple[str, nn.Module, nn.Module], size: tuple[int, int]
) -> None:
    name, ours, ref = pair
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(2))
    ours.eval()
    ref.eval()
    with torch.no_grad():
        mine, theirs = ours(x), ref(x)
    assert isinstance(mine, dict) and list(mine) == list(theirs) == outputs(name)
    for key in theirs:
        assert mine[key].shape == theirs[key].shape
        assert close(mine[key], theirs[key])
    assert aten_ops(ours, x[:1]) == aten_ops(ref, x[:1])


def test_train_mode_gradients_and_frozen_statistics(pair: tuple[str, nn.Module, nn.Module]) -> None:
    """Training changes no frozen BatchNorm buffer (they are the same after a step) and every
    gradient agrees; the frozen stages get none."""
    name, ours, ref = pair
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(3))
    before = {k: v.clone() for k, v in ours.state_dict().items() if ".bn" in k}
    assert_same_training_step(ours, ref, x, grad_tol=1e-4)
    after = ours.state_dict()
    # frozen statistics stay; v2's BatchNorms update theirs, as torchvision's do
    kept = [torch.equal(v, after[k]) for k, v in before.items() if "running_mean" in k]
    assert all(kept) if not name.endswith("_v2") else not any(kept)
    assert ours.get_submodule("backbone.body.layer1.0.conv1").weight.grad is None
    ours.zero_grad(set_to_none=True)
    ref.zero_grad(set_to_none=True)


def test_one_head_module_runs_on_every_level(pair: tuple[str, nn.Module, nn.Module]) -> None:
    """The head is built once (its weights once in the state_dict and the count) and called on
    each of the five levels, as torchvision's loop over the features calls it: a hook on its
    predictor fires five times per forward, in both models."""
    _, ours, ref = pair
    calls: dict[str, list[tuple[int, ...]]] = {"ours": [], "ref": []}
    hooks = [
        m.head.classification_head.cls_logits.register_forward_hook(
            lambda mod, args, out, who=who: calls[who].append(tuple(out.shape))
        )
        for who, m in (("ours", ours), ("ref", ref))
    ]
    try:
        with torch.no_grad():
            ours.eval()(torch.randn(1, 3, 64, 64))
            ref.eval()(torch.randn(1, 3, 64, 64))
    finally:
        for h in hooks:
            h.remove()
    assert calls["ours"] == calls["ref"] and len(calls["ours"]) == 5
    graph = compiler.load_spec(spec(pair[0]))
    sharers = [n for n in graph.nodes.values() if n.shares]
    heads = ("head.classification_head.p4.", "head.regression_head.p4.")
    level = [n for n in graph.nodes if n.startswith(heads)]
    assert len(sharers) == 4 * len(level)  # each level after the first, in both heads
    assert all(graph.nodes[n.shares].shares is None for n in sharers)
    assert not any(k.startswith("head.classification_head.p4") for k in ours.state_dict())


def test_frozen_batchnorm_is_torchvisions() -> None:
    """The module equals torchvision's FrozenBatchNorm2d in both modes, loads a BatchNorm's
    checkpoint (num_batches_tracked dropped) and trains nothing."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    ref, ours = FrozenBatchNorm2d(8), FrozenBatchNorm(8)
    bn = nn.BatchNorm2d(8)
    _nontrivial = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for t in (bn.weight, bn.bias, bn.running_mean):
            t.copy_(torch.randn(8, generator=_nontrivial))
        bn.running_var.copy_(torch.rand(8, generator=_nontrivial) + 0.5)
    state = bn.state_dict()
    assert "num_batches_tracked" in state
    ref.load_state_dict(dict(state))
    ours.load_state_dict(dict(state))
    x = torch.randn(2, 8, 5, 7)
    for mode in (True, False):
        assert torch.equal(ours.train(mode)(x), ref.train(mode)(x))
    assert list(ours.parameters()) == [] and list(ours.state_dict()) == list(ref.state_dict())


@pytest.mark.export
@pytest.mark.parametrize(
    "name", ["retinanet_resnet50_fpn", "fcos_resnet50_fpn", "fasterrcnn_resnet50_fpn_rpn"]
)
def test_onnx_has_a_dynamic_height_and_width(name: str, tmp_path: Path) -> None:
    """The file takes any height and width (the rows' count follows): validated in onnxruntime
    at the written input and at a rectangle of two other sizes, its outputs named as the dict's
    keys."""
    graph = compiler.load_spec(spec(name), ["input=[3, 128, 128]"])
    exports_at_any_size(graph, tmp_path / "m.onnx", graph.output_keys)


def exports_at_any_size(graph: compiler.Graph, path: Path, outputs: list[str]) -> None:
    """``graph``'s network (seed 0) exports with a dynamic height and width, its outputs named
    ``outputs``, and is validated in onnxruntime at two sizes."""
    module = compiler.compile(graph, seed=0).eval()
    report = export(module, graph, path)
    assert report.passed and report.written
    assert report.inputs[0]["shape"] == ["batch", 3, "height", "width"]
    assert [o["name"] for o in report.outputs] == outputs
    assert len({c.input for c in report.comparisons}) == 2


def test_published_weights_load_by_name(torch_home: Path) -> None:  # noqa: F811
    """--weights torchvision: RetinaNet's COCO_V1 file, in the layout torchvision published it
    (the heads' convolutions as conv.0, conv.2, ... before 0.13), into the spec built as
    torchvision builds it for those weights (frozen BatchNorms with eps 0): the outputs are
    the reference's with the same file."""
    import os
    import urllib.parse

    import torchvision
    from torchvision.models.detection._utils import overwrite_eps

    torch.manual_seed(7)
    ref = reference("retinanet_resnet50_fpn")
    _nontrivial_frozen_bn(ref)
    overwrite_eps(ref, 0.0)
    state = ref.state_dict()
    published = {}
    for key, value in state.items():  # the heads' convolutions as the published file names them
        head, sep, rest = key.partition("_head.conv.")
        index, _, leaf = rest.partition(".0.")
        published[f"{head}{sep}{2 * int(index)}.{leaf}" if sep else key] = value
    assert "head.classification_head.conv.6.weight" in published
    url = torchvision.models.get_model_weights("retinanet_resnet50_fpn")["DEFAULT"].url
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(published, folder / os.path.basename(urllib.parse.urlparse(url).path))
    ours = compiler.compile("detection/retinanet_resnet50_fpn", weights="torchvision").eval()
    assert ours.get_submodule("backbone.body.bn1").eps == 0.0
    loaded = ours.meta["weights"]
    assert loaded["source"] == "RetinaNet_ResNet50_FPN_Weights.COCO_V1"
    assert loaded["loaded"] == len(state) and not loaded["absent"] and not loaded["unused"]
    x = torch.randn(1, 3, 72, 96)
    with torch.no_grad():
        mine, theirs = ours(x), ref.eval()(x)
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)


def test_an_imagenet_backbone_loads_into_the_frozen_body(torch_home: Path) -> None:  # noqa: F811
    """--part-weights backbone.body=torchvision, as torchvision's weights_backbone: ResNet-50's
    ImageNet weights (BatchNorms with step counts) into the frozen BatchNorms, which drop the
    counts as FrozenBatchNorm2d does; only the classifier the part leaves out is unused."""
    from torchvision.models import resnet50

    state = _cached(torch_home, "resnet50", build=lambda _: resnet50())
    steps = [k for k in state if k.endswith("num_batches_tracked")]
    assert len(steps) == 53
    module = compiler.compile(
        "detection/retinanet_resnet50_fpn", part_weights={"backbone.body": "torchvision"}
    )
    report = module.meta["part_weights"]["backbone.body"]
    assert report["unused"] == ["fc.weight", "fc.bias"] and not report["absent"]
    assert report["loaded"] == len(state) - len(steps) - 2
    mine = module.state_dict()
    assert torch.equal(
        mine["backbone.body.layer4.2.bn3.running_var"], state["layer4.2.bn3.running_var"]
    )


@pytest.mark.parametrize("name", ["retinanet_resnet50_fpn", "fcos_resnet50_fpn"])
def test_a_fresh_network_starts_where_torchvision_does(name: str) -> None:
    """The heads' convolutions normal(0.01) with zero biases, the classifier's bias at the prior
    probability 0.01 (-log(99)), the pyramid's convolutions kaiming_uniform(a=1) with zero
    biases: the same values where torchvision's are fixed, the same spread where drawn."""
    torch.manual_seed(0)
    ref = reference(name)
    ours = compiler.compile(spec(name), seed=1)
    mine, theirs = ours.state_dict(), ref.state_dict()
    prior = mine["head.classification_head.cls_logits.bias"]
    assert torch.equal(prior, theirs["head.classification_head.cls_logits.bias"])
    assert torch.allclose(prior, torch.full_like(prior, -torch.log(torch.tensor(99.0)).item()))
    for key, value in theirs.items():
        if not key.startswith(("backbone.fpn", "head")):
            continue
        if key.endswith("bias") or "norm" in key or key.endswith("conv.1.weight"):
            assert torch.equal(mine[key], value), key  # constants (GroupNorm: 1 and 0)
        elif value.dim() == 4 and value.numel() >= 4096:
            assert abs(mine[key].std() / value.std() - 1) < 0.1, key


class RpnRaw(nn.Module):
    """torchvision's Faster R-CNN up to its region proposal head's raw outputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.backbone, self.rpn = model.backbone, model.rpn

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return self.rpn.head(list(self.backbone(x).values()))  # type: ignore[no-any-return]


def faster_rcnn() -> nn.Module:
    """torchvision's fasterrcnn_resnet50_fpn as its published weights build it, randomly
    initialised."""
    from torchvision.models import resnet50
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.models.detection.faster_rcnn import FasterRCNN
    from torchvision.ops.misc import FrozenBatchNorm2d

    body = resnet50(norm_layer=FrozenBatchNorm2d)
    return FasterRCNN(_resnet_fpn_extractor(body, 3), num_classes=91)


def test_faster_rcnn_proposal_head_equals_torchvisions() -> None:
    """Faster R-CNN's first stage: every parameter of torchvision's backbone, pyramid (P2..P5 and
    the max-pooled P6) and RPN head, in its key order, strictly loaded; each level's objectness
    and box deltas equal in eval and train mode at a size no multiple of 64, with the same aten
    ops and gradients; the count is the weights meta's less the second stage's (RoI heads)."""
    torch.manual_seed(0)
    full = faster_rcnn()
    _nontrivial_frozen_bn(full)
    ref = RpnRaw(full)
    second_stage = sum(p.numel() for p in full.roi_heads.parameters())
    graph = compiler.load_spec(spec("fasterrcnn_resnet50_fpn_rpn"))
    assert graph.params == 41_755_286 - second_stage == sum(p.numel() for p in ref.parameters())
    ours = compiler.compile(graph)
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 96, 80, generator=torch.Generator().manual_seed(2))
    levels = ["p2", "p3", "p4", "p5", "p6"]
    for mode in ("eval", "train"):
        getattr(ours, mode)()
        getattr(ref, mode)()
        mine, (objectness, deltas) = ours(x), ref(x)
        assert list(mine) == [f"objectness_{v}" for v in levels] + [
            f"bbox_deltas_{v}" for v in levels
        ]
        assert all(
            torch.equal(a, b) for a, b in zip(mine.values(), objectness + deltas, strict=True)
        )
    sum(v.square().mean() for v in mine.values()).backward()
    sum(v.square().mean() for v in objectness + deltas).backward()
    grads = dict(ref.named_parameters())
    for key, p in ours.named_parameters():
        assert (p.grad is None) == (grads[key].grad is None), key
        assert p.grad is None or torch.allclose(p.grad, grads[key].grad, atol=1e-6), key
    assert aten_ops(ours.eval(), x[:1]) == aten_ops(ref.eval(), x[:1])


def test_faster_rcnn_published_weights_give_the_first_stage(torch_home: Path) -> None:  # noqa: F811
    """--weights torchvision --partial: Faster R-CNN's COCO_V1 file, its RPN convolution named
    as torchvision published it (rpn.head.conv, before 0.13), loads every entry of the first
    stage; the second stage's are reported unused."""
    import os
    import urllib.parse

    import torchvision

    torch.manual_seed(7)
    full = faster_rcnn()
    state = full.state_dict()
    published = {k.replace("rpn.head.conv.0.0.", "rpn.head.conv."): v for k, v in state.items()}
    url = torchvision.models.get_model_weights("fasterrcnn_resnet50_fpn")["DEFAULT"].url
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(published, folder / os.path.basename(urllib.parse.urlparse(url).path))
    ours = compiler.compile(
        "detection/fasterrcnn_resnet50_fpn_rpn", weights="torchvision", partial=True
    ).eval()
    report = ours.meta["weights"]
    second = [k for k in state if k.startswith("roi_heads.")]
    assert report["source"] == "FasterRCNN_ResNet50_FPN_Weights.COCO_V1"
    assert report["loaded"] == len(state) - len(second) and not report["absent"]
    assert sorted(report["unused"]) == sorted(second)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        mine = list(ours(x).values())
        objectness, deltas = RpnRaw(full).eval()(x)
    assert all(torch.equal(a, b) for a, b in zip(mine, objectness + deltas, strict=True))


def ssd300() -> nn.Module:
    """torchvision's ssd300_vgg16 as its published weights build it (VGG-16's features with
    trainable_backbone_layers=4), randomly initialised, up to its head's raw outputs."""
    from torchvision.models import vgg16
    from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
    from torchvision.models.detection.ssd import SSD, _vgg_extractor

    backbone = _vgg_extractor(vgg16(), False, 4)
    boxes = DefaultBoxGenerator(
        [[2], [2, 3], [2, 3], [2, 3], [2], [2]],
        scales=[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05],
        steps=[8, 16, 32, 64, 100, 300],
    )
    return Raw(SSD(backbone, boxes, (300, 300), num_classes=91))


def ssdlite320() -> nn.Module:
    """torchvision's ssdlite320_mobilenet_v3_large as its published weights build it (the
    reduced tail, BatchNorm eps 1e-3 and momentum 0.03), randomly initialised."""
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large

    return Raw(ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None))


# name: (reference, params and GFLOPS of the weights meta, side, default boxes, frozen params)
SSDS = {
    "ssd300_vgg16": (ssd300, 35_641_826, 34.858, 300, 8732, 4),
    "ssdlite320_mobilenet_v3_large": (ssdlite320, 3_440_060, 0.583, 320, 3234, 0),
}


@pytest.mark.parametrize("name", sorted(SSDS))
def test_ssd_equals_torchvisions(name: str) -> None:
    """SSD300 and SSDLite320: the weights meta's count and GFLOPS, torchvision's keys in order
    (SSD300: VGG's features, the L2Norm's scale_weight, conv5 and fc6/fc7 as extra.0;
    SSDLite: MobileNetV3 cut inside block 13; then the extra blocks and the per-level heads), the
    frozen first convolutions, and equal raw outputs in eval and train mode, with the same aten
    ops and gradients."""
    build, params, gflops, side, boxes, frozen_count = SSDS[name]
    graph = compiler.load_spec(spec(name))
    assert graph.params == params and round(graph.macs / 1e9, 3) == gflops
    torch.manual_seed(0)
    ref = build()
    _nontrivial_bn(ref)
    ours = compiler.compile(graph)
    assert layout(ours) == layout(ref)
    frozen = [k for k, p in ours.named_parameters() if not p.requires_grad]
    assert frozen == [k for k, p in ref.named_parameters() if not p.requires_grad]
    assert len(frozen) == frozen_count
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(2))
    for mode in ("eval", "train"):
        getattr(ours, mode)()
        getattr(ref, mode)()
        mine, theirs = ours(x), ref(x)
        assert list(mine) == list(theirs) == ["bbox_regression", "cls_logits"]
        assert mine["cls_logits"].shape == (2, boxes, 91)
        assert all(close(mine[k], theirs[k]) for k in theirs)
    sum(v.square().mean() for v in mine.values()).backward()
    sum(v.square().mean() for v in theirs.values()).backward()
    grads = dict(ref.named_parameters())
    for key, p in ours.named_parameters():
        assert (p.grad is None) == (grads[key].grad is None), key
        assert p.grad is None or close(p.grad, grads[key].grad, 1e-4), key
    assert aten_ops(ours.eval(), x[:1]) == aten_ops(ref.eval(), x[:1])


EMITTED = [
    ("detection/retinanet_resnet50_fpn_v2", 96),
    ("detection/fcos_resnet50_fpn", 96),
    ("detection/fasterrcnn_resnet50_fpn_rpn", 96),
    ("detection/ssd300_vgg16", 300),
    ("detection/ssdlite320_mobilenet_v3_large", 320),
    ("yolo/yolov8n", 96),
    ("yolo/yolo11n", 96),
    ("detection/resdet50", 128),
]


@pytest.mark.parametrize(("name", "side"), EMITTED, ids=[n for n, _ in EMITTED])
def test_emit_writes_the_detector(name: str, side: int) -> None:
    """`netc emit`'s standalone source of each detector: torchvision's or ultralytics' key
    order (module lists by index, SSD's head in its registration order), the same weights from
    the same seed, the same frozen parameters, the same outputs bit for bit."""
    from compiler.tools.emit import emit

    graph = compiler.load_spec(name)
    built = run_source(emit(graph), f"{graph.name}.py")["build"](seed=0)
    ours = compiler.compile(graph, seed=0)
    mine = ours.state_dict()
    assert list(built.state_dict()) == list(mine)
    assert all(torch.equal(built.state_dict()[k], v) for k, v in mine.items())
    frozen = [k for k, p in ours.named_parameters() if not p.requires_grad]
    assert [k for k, p in built.named_parameters() if not p.requires_grad] == frozen
    x = torch.randn(2, 3, side, side)
    for training in (False, True):  # (YOLO's decoding is eval-only)
        with torch.no_grad():
            a, b = built.train(training)(x), ours.train(training)(x)
        assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in b)


@pytest.mark.export
@pytest.mark.parametrize("name", sorted(SSDS))
def test_ssd_exports_at_its_size(name: str, tmp_path: Path) -> None:
    """SSD300 and SSDLite320 export at their one size, validated in onnxruntime."""
    graph = compiler.load_spec(spec(name))
    module = compiler.compile(graph, seed=0).eval()
    report = export(module, graph, tmp_path / "m.onnx")
    assert report.passed and report.written
    assert [o["name"] for o in report.outputs] == ["bbox_regression", "cls_logits"]


@pytest.mark.parametrize(
    "name",
    [
        "retinanet_resnet50_fpn_v2",
        "fcos_resnet50_fpn",
        "ssd300_vgg16",
        "ssdlite320_mobilenet_v3_large",
    ],
)
def test_published_weights_of_every_detector_load_by_name(
    name: str,
    torch_home: Path,  # noqa: F811
) -> None:
    """--weights torchvision resolves each detector's COCO weights by its name and loads them
    strictly (a file in today's layout, as torchvision saves it)."""
    builders = {n: b for n, (b, *_) in SSDS.items()}
    build = builders.get(name) or (lambda: reference(name))
    state = _cached(torch_home, name, build=lambda _: build())
    ours = compiler.compile(f"detection/{name}", weights="torchvision")
    report = ours.meta["weights"]
    assert report["source"].endswith("COCO_V1")
    assert report["loaded"] == len(state) and not report["absent"] and not report["unused"]
    mine = ours.state_dict()
    assert all(torch.equal(mine[k], v) for k, v in state.items())
