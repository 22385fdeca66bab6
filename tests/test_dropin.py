"""A compiled network is a drop-in for torchvision's in the ways downstream code uses one: hooks on
stages and blocks, indexing and slicing, Grad-CAM, feature extraction, head replacement,
activation checkpointing by block class, pickling and copying, and data-parallel training."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import compiler
from compiler.lowering.lower import block_class
from tests.conftest import ROOT, SPECS
from tests.distributed_worker import SPEC, batch
from tests.test_zoo import reference

pytestmark = pytest.mark.zoo


@pytest.fixture(scope="module")
def pair() -> tuple[nn.Module, nn.Module]:
    """netc's resnet50 and torchvision's, with the same weights and non-trivial BN statistics."""
    ours = compiler.compile(SPECS / "resnet50.yaml", seed=0)
    with torch.no_grad():
        for name, b in ours.named_buffers():
            if name.endswith("running_var"):
                b.uniform_(0.5, 2.0)
            elif name.endswith("running_mean"):
                b.uniform_(-0.1, 0.1)
    ref = torchvision.models.resnet50()
    ref.load_state_dict(ours.state_dict(), strict=True)
    return ours.eval(), ref.eval()


def _hook_order(model: nn.Module, x: torch.Tensor) -> list[str]:
    fired: list[str] = []
    handles = [
        m.register_forward_hook(lambda m, i, o, name=name: fired.append(name))
        for name, m in model.named_modules()
    ]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return fired


def test_hooks_fire_on_network_stages_blocks_and_leaves_in_torchvisions_order(
    pair: tuple[nn.Module, nn.Module],
) -> None:
    ours, ref = pair
    x = torch.randn(1, 3, 64, 64)
    got = _hook_order(ours, x)
    want = _hook_order(ref, x)
    # torchvision's Bottleneck calls one `relu` three times; the library's names each call
    renamed = [
        name.rsplit(".", 1)[0] + ".relu" if name.rsplit(".", 1)[-1] in ("relu1", "relu2", "relu3")
        else name
        for name in got
    ]  # fmt: skip
    assert renamed == want
    for name in ("", "layer4", "layer4.2", "layer4.0.downsample", "layer4.2.conv3"):
        assert name in got


def test_stages_index_slice_iterate_and_call_like_sequential(
    pair: tuple[nn.Module, nn.Module],
) -> None:
    ours, ref = pair
    assert isinstance(ours.layer4, nn.Sequential) and len(ours.layer4) == 3
    assert isinstance(ours.layer4[-1], block_class("bottleneck"))
    assert type(ours.layer4[-1]).__name__ == "Bottleneck"
    assert [type(b).__name__ for b in ours.layer1] == ["Bottleneck"] * 3
    x = torch.randn(2, 64, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(ours.layer1(x), ref.layer1(x), rtol=0, atol=0)
        wide = ref.layer1[0](x)
        torch.testing.assert_close(ours.layer1[1:](wide), ref.layer1[1:](wide), rtol=0, atol=0)
        trunk = nn.Sequential(*list(ours.children())[:-1])
        ref_trunk = nn.Sequential(*list(ref.children())[:-1])
        y = torch.randn(2, 3, 64, 64)
        torch.testing.assert_close(trunk(y), ref_trunk(y), rtol=0, atol=0)
    assert "Bottleneck(" in repr(ours.layer1) and "(downsample): Sequential(" in repr(ours.layer1)


def _grad_cam(model: nn.Module, target: nn.Module, x: torch.Tensor, cls: int) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017) as pytorch-grad-cam computes it: a forward hook keeps the
    target's activation and a tensor hook its gradient."""
    kept: dict[str, torch.Tensor] = {}

    def hook(m: nn.Module, i: object, out: torch.Tensor) -> None:
        kept["act"] = out
        out.register_hook(lambda g: kept.__setitem__("grad", g))

    handle = target.register_forward_hook(hook)
    model.zero_grad()
    model(x)[:, cls].sum().backward()
    handle.remove()
    weights = kept["grad"].mean(dim=(2, 3), keepdim=True)
    return (weights * kept["act"]).sum(1).detach()  # the map before Grad-CAM's final ReLU


def test_grad_cam_on_the_last_block_equals_torchvisions(
    pair: tuple[nn.Module, nn.Module],
) -> None:
    ours, ref = pair
    x = torch.randn(2, 3, 128, 128)
    got = _grad_cam(ours, ours.layer4[-1], x, cls=7)
    want = _grad_cam(ref, ref.layer4[-1], x, cls=7)
    assert got.abs().sum() > 0 and got.shape == (2, 4, 4)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(torch.relu(got), torch.relu(want))


def test_feature_extractor_and_head_replacement(pair: tuple[nn.Module, nn.Module]) -> None:
    from torchvision.models.feature_extraction import create_feature_extractor

    ours, ref = pair
    nodes = ["layer2", "layer3", "layer4"]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        got = create_feature_extractor(ours, return_nodes=nodes)(x)
        want = create_feature_extractor(ref, return_nodes=nodes)(x)
    for n in nodes:
        torch.testing.assert_close(got[n], want[n], rtol=0, atol=0)
    tuned = copy.deepcopy(ours)
    tuned.fc = nn.Linear(2048, 10)
    assert tuned(x).shape == (1, 10)


def test_activation_checkpointing_by_block_class(pair: tuple[nn.Module, nn.Module]) -> None:
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        CheckpointWrapper,
        apply_activation_checkpointing,
    )

    ours, _ = pair
    plain = copy.deepcopy(ours).train()
    wrapped = copy.deepcopy(ours).train()
    apply_activation_checkpointing(
        wrapped, check_fn=lambda m: isinstance(m, block_class("bottleneck"))
    )
    assert sum(isinstance(m, CheckpointWrapper) for m in wrapped.modules()) == 16
    x = torch.randn(2, 3, 64, 64)
    plain(x).sum().backward()
    wrapped(x).sum().backward()
    g_plain = dict(plain.named_parameters())
    for name, p in wrapped.named_parameters():
        clean = name.replace("._checkpoint_wrapped_module", "")
        torch.testing.assert_close(p.grad, g_plain[clean].grad, rtol=1e-4, atol=1e-5)


def test_pickle_deepcopy_script_and_export_keep_working(
    pair: tuple[nn.Module, nn.Module],
) -> None:
    ours, _ = pair
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        want = ours(x)
        for clone in (pickle.loads(pickle.dumps(ours)), copy.deepcopy(ours)):
            torch.testing.assert_close(clone(x), want, rtol=0, atol=0)
        scripted = torch.jit.script(ours)
        torch.testing.assert_close(scripted(x), want)
        exported = torch.export.export(ours, (x,))
        torch.testing.assert_close(exported.module()(x), want)
    for clone in (pickle.loads(pickle.dumps(ours)), copy.deepcopy(ours)):
        assert isinstance(clone.layer1[0], block_class("bottleneck"))  # the class survives


@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_two_gloo_processes_train_it(mode: str, tmp_path: Path) -> None:
    """DistributedDataParallel, and fully_shard per block (selected by the block class) and on
    the network: the gradients both ranks end with are the mean of each rank's own."""
    out = tmp_path / "grads.pt"
    done = subprocess.run(
        [sys.executable, "-m", "tests.distributed_worker", mode, str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    grads = torch.load(out)
    model = compiler.compile(SPEC, seed=0)
    mean: dict[str, torch.Tensor] = {}
    for rank in range(2):
        model.zero_grad()
        model(batch(rank)).sum().backward()
        for k, p in model.named_parameters():
            assert p.grad is not None
            mean[k] = mean.get(k, 0) + p.grad / 2
    assert set(grads) == set(mean)
    for k, g in grads.items():
        torch.testing.assert_close(g, mean[k], rtol=1e-4, atol=1e-5)


INCEPTION_MODULES = ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c"]
INCEPTION_MODULES += ["Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "AuxLogits"]


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("vgg16_bn", set()),
        ("alexnet", set()),
        ("squeezenet1_0", set()),
        ("mnasnet1_0", set()),
        ("shufflenet_v2_x1_0", set()),
        # torchvision calls F.relu and F.adaptive_avg_pool2d after `features`; netc's are modules
        ("densenet121", {"relu", "avgpool"}),
        # its BasicConv2d calls F.relu, its modules pool with F.avg_pool2d / F.max_pool2d
        (
            "inception_v3",
            {*(f"{m}.pool" for m in INCEPTION_MODULES), "AuxLogits.avgpool", "*.relu"},
        ),
    ],
)
def test_module_tree_names_torchvisions_modules(name: str, extra: set[str]) -> None:
    """Every module path of torchvision's model is one of netc's, and a Sequential of numbered
    children there is one here (VGG's `features`, MNASNet's `layers`), so `features[:k]` slices;
    a Sequential of named children (DenseNet's `features`) is a generated module."""
    from compiler.lowering.lower import lower

    with torch.device("meta"):
        ours = lower(compiler.load_spec(SPECS / f"{name}.yaml"))
    ref = reference(name, "meta")
    mine = dict(ours.named_modules())
    # torchvision's stride-1 ShuffleNet units hold an empty Sequential `branch1` (no parameters)
    theirs = {
        path: m for path, m in ref.named_modules() if not (type(m) is nn.Sequential and len(m) == 0)
    }
    functional = {p for p in mine if "*.relu" in extra and p.endswith(".relu")}
    assert set(mine) == set(theirs) | (extra - {"*.relu"}) | functional
    for path, module in theirs.items():
        children = [n for n, _ in module.named_children()]
        if type(module) is nn.Sequential and children == [str(i) for i in range(len(children))]:
            assert isinstance(mine[path], nn.Sequential), path


def test_training_only_outputs_survive_copying_and_pickling() -> None:
    """GoogLeNet: (output, aux2, aux1) in training, the output alone in eval, also for a deep
    copy (what the ONNX validation's float64 reference is) and a pickled copy."""
    model = compiler.compile(SPECS / "googlenet.yaml", seed=0)
    x = torch.randn(2, 3, 64, 64)
    for copied in (model, copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        copied.train()
        out = copied(x)
        assert isinstance(out, tuple) and [o.shape for o in out] == [(2, 1000)] * 3
        copied.eval()
        with torch.no_grad():
            assert copied(x).shape == (2, 1000)
    assert "aux1.fc2.weight" in model.state_dict()
