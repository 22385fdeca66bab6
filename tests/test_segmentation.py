"""torchvision's segmentation models from the library's specs, proven equal to torchvision's at
three input sizes, one of them not a multiple of 8: counts against the weights meta (params, and
MACs at its 520x520), state_dict keys/order/shapes, strict load, eval outputs ({out, aux}) and
the aten op sequence at each size, train mode under the same random draws with gradients and
BatchNorm statistics, published weights by name (offline), and ONNX with a dynamic height and
width validated in onnxruntime at two sizes. Each spec composes a library backbone (``parts:``)
with its heads, returns a dict (``outputs: {out: ..., aux: ...}``) and accepts any size
(``sizes: any``, proven by ``netc check``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import compiler
from compiler.lowering.folding import fold_module
from exporters.onnx import export
from tests.conftest import SPECS, run_cli
from tests.test_equivalence import assert_same_training_step, aten_ops, close
from tests.test_pretrained import _cached, torch_home  # noqa: F401 - the fixture, used below
from tests.test_zoo import _nontrivial_bn

pytestmark = pytest.mark.zoo

# torchvision 0.29's weights meta (COCO_WITH_VOC_LABELS_V1): params (aux classifier included)
# and GFLOPS at 520x520, which netc's MACs (conv and linear layers) equal
META = {
    "fcn_resnet50": (35_322_218, 152.717),
    "fcn_resnet101": (54_314_346, 232.738),
    "deeplabv3_resnet50": (42_004_074, 178.722),
    "deeplabv3_resnet101": (60_996_202, 258.743),
    "deeplabv3_mobilenet_v3_large": (11_029_328, 10.452),
    "lraspp_mobilenet_v3_large": (3_221_538, 2.086),
}
SIZES = [(64, 64), (97, 80), (128, 128)]  # (height, width); 97x80: no multiple of 8
TRAIN_SIZE = (97, 80)


def spec(name: str) -> Path:
    return SPECS / "segmentation" / f"{name}.yaml"


def reference(name: str, device: str = "cpu") -> nn.Module:
    """torchvision's model as its published weights build it (aux classifier where they hold
    one), randomly initialised."""
    from torchvision.models import segmentation

    kwargs: dict[str, object] = {"weights": None, "weights_backbone": None, "num_classes": 21}
    if not name.startswith("lraspp"):
        kwargs["aux_loss"] = True
    with torch.device(device):
        return getattr(segmentation, name)(**kwargs)  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", sorted(META))
def test_counts_and_keys_match_torchvision(name: str) -> None:
    params, gflops = META[name]
    graph = compiler.load_spec(spec(name))
    assert graph.input_shape == (3, 520, 520) and graph.sizes is not None
    assert graph.params == params
    assert round(graph.macs / 1e9, 3) == gflops
    assert graph.output_keys == (["out"] if name.startswith("lraspp") else ["out", "aux"])
    with torch.device("meta"):
        ours = compiler.lowering.lower.lower(graph)
    mine = [(k, tuple(v.shape)) for k, v in ours.state_dict().items()]
    theirs = [(k, tuple(v.shape)) for k, v in reference(name, "meta").state_dict().items()]
    assert mine == theirs


@pytest.fixture(scope="module", params=sorted(META))
def pair(request: pytest.FixtureRequest) -> tuple[str, nn.Module, nn.Module]:
    name = request.param
    torch.manual_seed(0)
    ref = reference(name)
    _nontrivial_bn(ref)  # (random BatchNorm statistics and affine values)
    ours = compiler.compile(spec(name))
    ours.load_state_dict(ref.state_dict(), strict=True)
    return name, ours, ref


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_eval_outputs_and_aten_ops_at_any_size(
    pair: tuple[str, nn.Module, nn.Module], size: tuple[int, int]
) -> None:
    _, ours, ref = pair
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(2))
    ours.eval()
    ref.eval()
    with torch.no_grad():
        mine, theirs = ours(x), ref(x)
    assert isinstance(mine, dict) and list(mine) == list(theirs)
    for key in theirs:
        assert mine[key].shape == (2, 21, *size)
        assert close(mine[key], theirs[key])
    assert aten_ops(ours, x[:1]) == aten_ops(ref, x[:1])


def test_train_mode_same_draws_stats_and_gradients(pair: tuple[str, nn.Module, nn.Module]) -> None:
    """Dropout draws the same numbers in the same order; both outputs, every gradient and every
    BatchNorm buffer agree."""
    _, ours, ref = pair
    x = torch.randn(2, 3, *TRAIN_SIZE, generator=torch.Generator().manual_seed(3))
    assert_same_training_step(ours, ref, x, grad_tol=1e-4)


@pytest.mark.parametrize("name", ["fcn_resnet50", "lraspp_mobilenet_v3_large"])
def test_published_weights_load_by_name(name: str, torch_home: Path) -> None:  # noqa: F811
    state = _cached(torch_home, name, build=reference)
    ours = compiler.compile(f"segmentation/{name}", weights="torchvision").eval()
    ref = reference(name)
    ref.load_state_dict(state)
    x = torch.randn(1, 3, 72, 56)
    with torch.no_grad():
        mine, theirs = ours(x), ref.eval()(x)
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    loaded = ours.meta["weights"]
    assert loaded["source"].endswith("COCO_WITH_VOC_LABELS_V1")
    assert loaded["loaded"] == len(state) and not loaded["absent"] and not loaded["unused"]
    assert loaded["preprocess"]["resize_size"] == [520]


@pytest.mark.export
@pytest.mark.parametrize("name", ["deeplabv3_resnet50", "lraspp_mobilenet_v3_large"])
def test_onnx_has_a_dynamic_height_and_width(name: str, tmp_path: Path) -> None:
    """The file takes any height and width: validated in onnxruntime at the written input and at
    a rectangle of two other sizes, with the outputs named as the dict's keys."""
    graph = compiler.load_spec(spec(name), ["input=[3, 64, 64]"])
    module = compiler.compile(graph, seed=0).eval()
    folded, fgraph = fold_module(module, graph)
    report = export(folded, fgraph, tmp_path / "m.onnx", folded=True)
    assert report.passed and report.written
    assert report.inputs[0]["shape"] == ["batch", 3, "height", "width"]
    assert [o["name"] for o in report.outputs] == graph.output_keys
    assert report.outputs[0]["shape"] == ["batch", 21, "out_height", "out_width"]
    assert sorted({c.input for c in report.comparisons}) == ["3x40x48", "3x64x64"]


def test_a_part_takes_its_own_networks_published_weights(torch_home: Path) -> None:  # noqa: F811
    """--part-weights backbone=torchvision: the backbone gets ResNet-50's published weights (the
    part's weights_from), as torchvision's weights_backbone gives them; the heads stay as
    initialised; the classifier the part leaves out is reported unused."""
    from torchvision.models import resnet50

    state = _cached(torch_home, "resnet50", build=lambda _: resnet50())
    module = compiler.compile(
        "segmentation/fcn_resnet50", seed=0, part_weights={"backbone": "torchvision"}
    )
    report = module.meta["part_weights"]["backbone"]
    assert report["source"] == "ResNet50_Weights.IMAGENET1K_V2 (into part 'backbone')"
    assert report["loaded"] == len(state) - 2 and report["unused"] == ["fc.weight", "fc.bias"]
    mine = module.state_dict()
    assert all(torch.equal(mine[f"backbone.{k}"], v) for k, v in state.items() if k[:3] != "fc.")
    fresh = compiler.compile("segmentation/fcn_resnet50", seed=0).state_dict()
    assert torch.equal(mine["classifier.0.weight"], fresh["classifier.0.weight"])
    code, out, err = run_cli(
        "compile", "segmentation/fcn_resnet50", "--part-weights", "backbone=torchvision"
    )
    assert code == 0, err
    assert "318 of 318 entries loaded from ResNet50_Weights.IMAGENET1K_V2 (into part" in out


def test_part_weights_name_a_part_and_fit_it(tmp_path: Path) -> None:
    from torchvision.models import resnet50

    path = tmp_path / "r50.pth"
    torch.save(resnet50().state_dict(), path)
    code, _, err = run_cli("check", "segmentation/fcn_resnet50")
    assert code == 0, err
    code, _, err = run_cli(
        "compile", "segmentation/fcn_resnet50", "--part-weights", f"backbon={path}"
    )
    assert code == 1 and "has no part 'backbon'; did you mean 'backbone'?" in err
    code, _, err = run_cli("compile", "segmentation/fcn_resnet50", "--part-weights", "backbone")
    assert code == 2 and "must look like PART=FILE.pth" in err
    # a ResNet-50 does not fit MobileNetV3's features: every entry of the part is missing
    code, _, err = run_cli(
        "compile", "segmentation/lraspp_mobilenet_v3_large", "--part-weights", f"backbone={path}"
    )
    assert code == 1 and "(into part 'backbone'): error: the checkpoint does not fit" in err
    assert "missing: backbone.0.0.weight  (specs/mobilenet_v3_large.yaml" in err
