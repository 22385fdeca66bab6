"""ultralytics' YOLOv8 and YOLO11 from the library's specs, proven equal to ultralytics'
DetectionModel built from its own YAML (yolov8.yaml, yolo11.yaml): parameter counts of the five
scales of each and GFLOPs as ultralytics reports them, state_dict keys/order/shapes, strict load,
the raw outputs in training mode (boxes, scores) with gradients and BatchNorm statistics, the
decoded outputs in eval mode (pred) at two input sizes, the aten op sequence, and ONNX with a
dynamic height and width."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

import compiler
from tests.conftest import SPECS
from tests.test_detection import exports_at_any_size
from tests.test_equivalence import aten_ops, layout
from tests.test_zoo import _nontrivial_bn

pytestmark = pytest.mark.zoo

# ultralytics' figures: "YOLOv8n summary: 129 layers, 3157200 parameters ..." (the comments of
# its yolov8.yaml and yolo11.yaml); GFLOPs at 640 as its model_info reports them
PARAMS = {
    "yolov8n": 3_157_200,
    "yolov8s": 11_166_560,
    "yolov8m": 25_902_640,
    "yolov8l": 43_691_520,
    "yolov8x": 68_229_648,
    "yolo11n": 2_624_080,
    "yolo11s": 9_458_752,
    "yolo11m": 20_114_688,
    "yolo11l": 25_372_160,
    "yolo11x": 56_966_176,
}
GFLOPS = {"yolov8n": 8.855, "yolov8s": 28.812, "yolov8m": 79.3, "yolov8l": 165.7, "yolo11n": 6.673}
SIZES = [(256, 320), (224, 224)]  # (height, width), multiples of 32
OUTPUTS = ["pred", "boxes", "scores"]


def spec(name: str) -> Path:
    return SPECS / "yolo" / f"{name}.yaml"


def reference(name: str) -> nn.Module:
    """ultralytics' model from its YAML at this scale, randomly initialised."""
    from ultralytics.nn.tasks import DetectionModel

    return DetectionModel(f"{name}.yaml", verbose=False)


def ultralytics_gflops(graph: compiler.Graph) -> float:
    """GFLOPs as ultralytics reports them (thop at 640): twice the multiply-accumulates (netc's
    MACs: the convolutions, and YOLO11's attention products) and 4 operations per BatchNorm
    output element (thop's rule for a BatchNorm)."""
    bn = sum(math.prod(n.shape) for n in graph.nodes.values() if n.op == "batchnorm")
    return 2 * (graph.macs + 4 * bn) / 1e9


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_counts_match_ultralytics(name: str) -> None:
    graph = compiler.load_spec(spec(name))
    assert graph.input_shape == (3, 640, 640)
    assert graph.params == PARAMS[name]
    if name in GFLOPS:
        digits = len(str(GFLOPS[name]).partition(".")[2])
        assert round(ultralytics_gflops(graph), digits) == GFLOPS[name]
    assert graph.output_keys == OUTPUTS
    assert graph.shape_of(graph.returns[0]) == (84, 8400)  # 4 + 80 classes, 80² + 40² + 20²


@pytest.mark.parametrize("name", ["yolov8s", "yolo11n", "yolo11s"])
def test_gflops_are_what_ultralytics_reports(name: str) -> None:
    """ultralytics' own get_flops on its model, against the rule above on netc's counts."""
    from ultralytics.utils.torch_utils import get_flops

    graph = compiler.load_spec(spec(name))
    assert round(ultralytics_gflops(graph), 4) == round(get_flops(reference(name), 640), 4)


@pytest.fixture(scope="module", params=["yolov8n", "yolov8s", "yolo11n"])
def pair(request: pytest.FixtureRequest) -> tuple[str, nn.Module, nn.Module]:
    name = request.param
    torch.manual_seed(0)
    ref = reference(name)
    _nontrivial_bn(ref)  # random statistics and affine: eval tests more than the identity
    ours = compiler.compile(spec(name))
    assert layout(ours) == layout(ref)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return name, ours, ref


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_eval_decodes_the_same_boxes(
    pair: tuple[str, nn.Module, nn.Module], size: tuple[int, int]
) -> None:
    """Eval mode: pred is ultralytics' decoded output (xywh in pixels and class probabilities),
    boxes and scores its raw predictions, bit for bit."""
    _, ours, ref = pair
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y, raw = ref.eval()(x)
        mine = ours.eval()(x)
    assert list(mine) == OUTPUTS
    assert mine["pred"].shape == y.shape == (2, 84, size[0] * size[1] // 64 * 21 // 16)
    assert torch.equal(mine["pred"], y)
    assert torch.equal(mine["boxes"], raw["boxes"]) and torch.equal(mine["scores"], raw["scores"])


def test_train_mode_raw_outputs_gradients_and_statistics(
    pair: tuple[str, nn.Module, nn.Module],
) -> None:
    _, ours, ref = pair
    x = torch.randn(2, 3, 128, 160, generator=torch.Generator().manual_seed(3))
    ours.train()
    ref.train()
    mine, theirs = ours(x), ref(x)
    assert list(mine) == ["boxes", "scores"]  # decoding is eval-only, as in ultralytics
    assert torch.equal(mine["boxes"], theirs["boxes"])
    assert torch.equal(mine["scores"], theirs["scores"])
    weights = [torch.randn_like(theirs[k]) for k in ("boxes", "scores")]
    sum((mine[k] * w).sum() for k, w in zip(("boxes", "scores"), weights, strict=True)).backward()
    sum((theirs[k] * w).sum() for k, w in zip(("boxes", "scores"), weights, strict=True)).backward()
    grads = dict(ref.named_parameters())
    for key, p in ours.named_parameters():
        if key.endswith(".dfl.conv.weight"):  # fixed in both: requires_grad=False
            assert p.grad is None and grads[key].grad is None and not p.requires_grad
            continue
        assert p.grad is not None and torch.allclose(p.grad, grads[key].grad, atol=1e-6), key
    buffers = dict(ref.named_buffers())
    assert all(torch.equal(b, buffers[k]) for k, b in ours.named_buffers())
    ours.zero_grad(set_to_none=True)
    ref.zero_grad(set_to_none=True)


def test_aten_op_sequence(pair: tuple[str, nn.Module, nn.Module]) -> None:
    """The eval forward's aten ops are ultralytics' (at a size it has not cached anchors for),
    but for its reading each level's stride out of a tensor (select and item, three ops a
    level): netc's strides are numbers."""
    _, ours, ref = pair
    x = torch.randn(1, 3, 192, 160)
    theirs = [
        op
        for op in aten_ops(ref.eval(), x)
        if op not in ("aten.select.int", "aten._local_scalar_dense.default")
    ]
    assert aten_ops(ours.eval(), x) == theirs


def test_training_runs_ultralytics_aten_ops(pair: tuple[str, nn.Module, nn.Module]) -> None:
    """A training forward runs exactly ultralytics' aten ops: the decoding (anchor points, DFL,
    dist2bbox, the sigmoid) is eval-only in both."""
    _, ours, ref = pair
    x = torch.randn(2, 3, 160, 192)
    state = {k: v.clone() for k, v in ref.state_dict().items()}  # the statistics, kept
    try:
        assert aten_ops(ours.train(), x) == aten_ops(ref.train(), x)
    finally:
        ref.load_state_dict(state)
        ours.load_state_dict(state)


@pytest.mark.export
@pytest.mark.parametrize("name", ["yolov8n", "yolo11n"])
def test_onnx_decodes_at_any_size(name: str, tmp_path: Path) -> None:
    """The file decodes the boxes for any height and width that are multiples of 32 (the
    anchor points from the maps' sizes at run time; YOLO11's attention over them), validated in
    onnxruntime at two sizes."""
    graph = compiler.load_spec(spec(name), ["input=[3, 160, 160]"])
    exports_at_any_size(graph, tmp_path / "m.onnx", OUTPUTS)


@pytest.mark.parametrize("name", ["yolov8n", "yolo11n"])
def test_a_fresh_network_starts_where_ultralytics_does(name: str) -> None:
    """Trained from scratch, netc's network starts as ultralytics' does: Detect's biases (box 2.0,
    classes log(5 / nc / cells at 640) per level) and every BatchNorm (eps 0.001, momentum 0.03,
    weight 1, bias 0) equal; every convolution's weights drawn from the same distribution
    (PyTorch's default: the same spread, layer by layer)."""
    torch.manual_seed(0)
    ref = reference(name)
    ours = compiler.compile(spec(name), seed=1)
    mine, theirs = ours.state_dict(), ref.state_dict()
    head = "model.22" if name.startswith("yolov8") else "model.23"
    biases = [k for k in theirs if k.startswith(head) and k.endswith(".2.bias")]
    assert len(biases) == 6 and all(torch.equal(mine[k], theirs[k]) for k in biases)
    norms = [(k, m) for k, m in ours.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all((m.eps, m.momentum) == (0.001, 0.03) for _, m in norms)
    for key, value in theirs.items():
        if key.endswith(("bn.weight", "bn.bias", "running_mean", "running_var")):
            assert torch.equal(mine[key], value), key
        elif key.endswith("conv.weight") and value.numel() >= 4096 and "dfl" not in key:
            assert abs(mine[key].std() / value.std() - 1) < 0.1, key
