"""Published weights by name and partial loading, offline: a temporary TORCH_HOME holds a
checkpoint under the file name torchvision's registry expects (made from a randomly initialised
torchvision model), so the real resolution and cache path run without a network."""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest
import torch
from torch import nn

import compiler
from compiler.lowering import pretrained
from compiler.lowering.weights import WeightsError
from tests.conftest import SPECS, run_cli
from tests.test_video import reference as video_reference
from tests.test_zoo import reference


def _cached(
    torch_home: Path,
    model: str,
    chosen: str = "DEFAULT",
    build: Callable[[str], nn.Module] = reference,
) -> dict[str, torch.Tensor]:
    """Save a random torchvision ``model``'s weights where torch.hub would keep the download."""
    import torchvision

    url = torchvision.models.get_model_weights(model)[chosen].url
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(7)
    state = build(model).state_dict()
    torch.save(state, folder / os.path.basename(urllib.parse.urlparse(url).path))
    return state


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url: str, path: str) -> None:
        raise OSError("network is unreachable")

    def as_named(path: str) -> str:
        """The sha256 a cached file's name promises: random stand-ins cannot have the real one
        (the check itself is tested in tests/adversarial/test_weights.py)."""
        match = pretrained._HASH.search(os.path.basename(path))
        assert match is not None
        return match.group(1).ljust(64, "0")

    monkeypatch.setattr(pretrained, "_download", offline)
    monkeypatch.setattr(pretrained, "_sha256", as_named)
    monkeypatch.setattr(pretrained, "_digests", {})  # no stand-in's verdict outlives the test
    return tmp_path


def test_torchvision_weights_by_name_from_the_cache(torch_home: Path) -> None:
    import torchvision

    state = _cached(torch_home, "resnet18")
    ours = compiler.compile("resnet18", weights="torchvision").eval()
    ref = torchvision.models.resnet18()
    ref.load_state_dict(state)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref.eval()(x), rtol=0, atol=0)
    loaded = ours.meta["weights"]
    assert loaded["source"] == "ResNet18_Weights.IMAGENET1K_V1"
    assert loaded["loaded"] == len(state) and not loaded["absent"] and not loaded["unused"]
    pre = loaded["preprocess"]
    assert pre["crop_size"] == [224] and pre["resize_size"] == [256]
    assert pre["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert pre["interpolation"] == "bilinear"


def test_video_weights_by_name_from_the_cache(torch_home: Path) -> None:
    """A video network's Kinetics-400 weights, by name, with the clip preprocessing
    torchvision's weights meta gives (112x112 crops of frames resized to 128x171)."""
    state = _cached(torch_home, "mc3_18", build=video_reference)
    ours = compiler.compile("mc3_18", weights="torchvision").eval()
    ref = video_reference("mc3_18")
    ref.load_state_dict(state)
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref.eval()(x), rtol=0, atol=0)
    loaded = ours.meta["weights"]
    assert loaded["source"] == "MC3_18_Weights.KINETICS400_V1"
    assert loaded["loaded"] == len(state) and not loaded["absent"] and not loaded["unused"]
    pre = loaded["preprocess"]
    assert pre["crop_size"] == [112, 112] and pre["resize_size"] == [128, 171]
    assert pre["mean"] == pytest.approx([0.43216, 0.394666, 0.37645])


def test_a_named_set_and_a_spec_that_says_whose_weights_it_takes(
    torch_home: Path, tmp_path: Path
) -> None:
    state = _cached(torch_home, "mobilenet_v3_small", "IMAGENET1K_V1")
    m = compiler.compile("mobilenet_v3_small", weights="torchvision:IMAGENET1K_V1")
    assert torch.equal(m.state_dict()["classifier.3.weight"], state["classifier.3.weight"])
    variant = tmp_path / "my_net.yaml"
    variant.write_text(
        "extends: mobilenet_v3_small\nname: my_net\nweights_from: mobilenet_v3_small\n"
    )
    m = compiler.compile(variant, weights="torchvision")
    assert m.meta["weights"]["source"] == "MobileNet_V3_Small_Weights.IMAGENET1K_V1"


@pytest.mark.zoo
def test_published_weights_build_the_network_torchvision_builds_for_them(
    torch_home: Path,
) -> None:
    """torchvision's GoogLeNet and Inception v3 builders turn transform_input on when they load
    their weights: netc's specs say so (`published_weights:`), so `--weights torchvision` gives
    torchvision's network, bit for bit; a --set still wins, and a graph loaded without the
    settings is refused rather than silently fed differently."""
    import torchvision

    state = _cached(torch_home, "googlenet")
    ours = compiler.compile("googlenet", weights="torchvision").eval()
    ref = torchvision.models.googlenet(transform_input=True, init_weights=True)
    ref.load_state_dict(state)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ours(x), ref.eval()(x))
    assert "transform_input" in ours.code
    kept = compiler.compile("googlenet", ["params.transform_input=false"], weights="torchvision")
    assert "transform_input" not in kept.code
    code, stdout, err = run_cli(
        "compile", "googlenet", "--weights", "torchvision", "--print-module"
    )
    assert code == 0 and "transform_input" in stdout, err
    with pytest.raises(WeightsError, match="transform_input=true; load the spec with"):
        compiler.compile(compiler.load_spec(SPECS / "googlenet.yaml"), weights="torchvision")
    plain = compiler.load_spec(SPECS / "inception_v3.yaml")
    assert plain.origin is not None and plain.origin.data["params"]["transform_input"] is False
    graph = compiler.load_spec(SPECS / "inception_v3.yaml", published_weights=True)
    assert graph.origin is not None and graph.origin.data["params"]["transform_input"] is True


def test_clear_errors_offline(torch_home: Path, tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as e:
        compiler.compile("resnet18", weights="torchvision")  # nothing cached, no network
    text = str(e.value)
    assert "resnet18-f37072fd.pth" in text and str(torch_home / "hub" / "checkpoints") in text
    assert "network is unreachable" in text and "TORCH_HOME" in text
    with pytest.raises(WeightsError, match=r"no weights 'IMAGENET9K' for resnet18.*IMAGENET1K_V1"):
        compiler.compile("resnet18", weights="torchvision:IMAGENET9K")
    mine = tmp_path / "mine.yaml"
    mine.write_text("extends: resnet18\nname: mine\n")
    with pytest.raises(WeightsError, match=r"(?s)'mine' is not a torchvision model.*weights_from"):
        compiler.compile(mine, weights="torchvision")


def test_partial_loading_into_a_ten_class_variant(torch_home: Path) -> None:
    state = _cached(torch_home, "resnet18")
    fresh = compiler.compile("resnet18", ["params.num_classes=10"], seed=3).state_dict()
    m = compiler.compile(
        "resnet18", ["params.num_classes=10"], seed=3, weights="torchvision", partial=True
    )
    got = m.state_dict()
    report = m.meta["weights"]
    assert set(report["shape_differs"]) == {"fc.weight", "fc.bias"}
    assert report["shape_differs"]["fc.weight"] == {"checkpoint": [1000, 512], "spec": [10, 512]}
    assert report["loaded"] == len(state) - 2 and not report["absent"] and not report["unused"]
    assert torch.equal(got["layer4.1.conv2.weight"], state["layer4.1.conv2.weight"])
    assert torch.equal(got["fc.weight"], fresh["fc.weight"])  # kept as initialised
    with pytest.raises(WeightsError, match=r"wrong shape: fc\.weight"):
        compiler.compile("resnet18", ["params.num_classes=10"], weights="torchvision")


def test_partial_loading_into_a_variant_with_new_layers(torch_home: Path) -> None:
    """MobileNetV2's weights into the README's SE + hard-swish variant: the layers it shares by
    name load, the squeeze-excitation convs are new, the renamed ones are reported."""
    state = _cached(torch_home, "mobilenet_v2")
    variant = Path(__file__).parent.parent / "docs" / "examples" / "mobilenet_v2_se_hardswish.yaml"
    m = compiler.compile(variant, weights=str(_file(torch_home)), partial=True)
    report = m.meta["weights"]
    assert "features.0.0.weight" not in report["absent"] and report["loaded"] >= 5
    assert "features.2.se.fc1.weight" in report["absent"]
    assert "features.2.conv.0.0.weight" in report["unused"]
    assert torch.equal(m.state_dict()["classifier.1.weight"], state["classifier.1.weight"])


def _file(torch_home: Path) -> Path:
    return next((torch_home / "hub" / "checkpoints").glob("mobilenet_v2-*.pth"))


def test_cli_reports_and_the_onnx_metadata(torch_home: Path, tmp_path: Path) -> None:
    _cached(torch_home, "resnet18")
    code, out, err = run_cli("compile", "resnet18", "--weights", "torchvision", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["weights"]["preprocess"]["crop_size"] == [224]
    code, out, err = run_cli(
        "compile", "resnet18", "--set", "params.num_classes=10", "--weights", "torchvision",
        "--partial",
    )  # fmt: skip
    assert code == 0, err
    assert "weights: 120 of 122 entries loaded from ResNet18_Weights.IMAGENET1K_V1" in out
    assert "kept as initialised, shape differs: fc.weight: checkpoint [1000, 512]" in out
    assert "resnet18.yaml:24:3, node 'fc')" in out  # located at the spec's node
    onnx_path = tmp_path / "r.onnx"
    code, out, err = run_cli(
        "export", "resnet18", "--weights", "torchvision", "-o", str(onnx_path), "-q"
    )
    assert code == 0, err
    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    pre = json.loads(meta["netc.preprocess"])
    assert pre["weights"] == "ResNet18_Weights.IMAGENET1K_V1" and pre["std"][0] == 0.229


def test_every_library_spec_named_after_a_torchvision_model_resolves() -> None:
    """The registry knows every library network named after a torchvision model (no download)."""
    import torchvision

    known = set(torchvision.models.list_models(module=torchvision.models))
    names = [p.stem for p in SPECS.glob("*.yaml") if p.stem in known]
    assert len(names) >= 40
    for name in names:
        published = pretrained.resolve("torchvision", name)
        assert published.path.endswith(".pth") and published.preprocess["crop_size"]


def test_a_download_is_checked_against_the_hash_in_its_name(tmp_path: Path) -> None:
    """The download itself, from a file:// URL: written whole through a temporary file, and
    refused (nothing left behind) when its sha256 does not start with the name's hash."""
    import hashlib

    source = tmp_path / "weights.bin"
    source.write_bytes(b"not really weights" * 1000)
    prefix = hashlib.sha256(source.read_bytes()).hexdigest()[:8]
    good = tmp_path / "cache" / f"net-{prefix}.pth"
    good.parent.mkdir()
    pretrained._download(source.as_uri(), str(good))
    assert good.read_bytes() == source.read_bytes()
    bad = tmp_path / "cache" / "net-00000000.pth"
    with pytest.raises(ValueError, match="sha256 does not start with 00000000"):
        pretrained._download(source.as_uri(), str(bad))
    assert sorted(p.name for p in good.parent.iterdir()) == [good.name]
