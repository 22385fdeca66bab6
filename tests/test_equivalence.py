"""Equivalence, not resemblance: each library spec is the reference model, proven by loading its
state_dict strictly and comparing outputs, batch statistics and gradients on random input."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import compiler
from tests.conftest import SPECS
from tests.reference import TIMM, TORCHVISION

pytestmark = pytest.mark.zoo


def _torchvision(name: str, **kw: object) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        return getattr(torchvision.models, name)(**kw)  # type: ignore[no-any-return]

    return build


def _timm(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import timm

        return timm.create_model(name, pretrained=False)  # type: ignore[no-any-return]

    return build


REFERENCES: dict[str, tuple[Callable[[], nn.Module], tuple[int, int] | None]] = {
    **{name: (_torchvision(name), figures) for name, figures in TORCHVISION.items()},
    **{name: (_timm(name), figures) for name, figures in TIMM.items()},
    "resnet50_dilated": (
        _torchvision("resnet50", replace_stride_with_dilation=[False, True, True]),
        None,
    ),
}
# resnet50 is checked at full size; the rest at 128x128 to keep the suite fast on 2 CPUs
SIZE = {"resnet50": 224}
DEEP = {"resnet152", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet101_2"}


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> bool:
    """max abs diff <= tol, relative to the magnitude where values are large."""
    a, b = a.detach(), b.detach()
    scale = max(1.0, float(b.abs().max()))
    return float((a - b).abs().max()) <= tol * scale


@pytest.fixture(scope="module", params=sorted(REFERENCES))
def pair(request: pytest.FixtureRequest) -> tuple[str, nn.Module, nn.Module]:
    name = request.param
    torch.manual_seed(0)
    ref = REFERENCES[name][0]()
    ours = compiler.compile(SPECS / f"{name}.yaml", seed=1)
    return name, ours, ref


def test_counts_match_reference_table(pair: tuple[str, nn.Module, nn.Module]) -> None:
    name, ours, ref = pair
    graph = compiler.load_spec(SPECS / f"{name}.yaml")
    figures = REFERENCES[name][1]
    if figures is not None:
        assert (graph.params, graph.macs) == figures
    assert graph.params == sum(p.numel() for p in ours.parameters())
    assert graph.params == sum(p.numel() for p in ref.parameters())
    # two samples: a BatchNorm after a global pool (SKNet's attention) needs more than one value
    # per channel in train mode
    x = torch.empty(2, *graph.input_shape, device="meta")
    with FlopCounterMode(display=False) as counter:
        copy.deepcopy(ours).to("meta")(x)
    assert counter.get_total_flops() == 2 * 2 * graph.macs


def test_state_dict_keys_and_shapes(pair: tuple[str, nn.Module, nn.Module]) -> None:
    _, ours, ref = pair
    mine = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert mine == theirs
    assert list(mine) == list(theirs)  # same order, too
    ours.load_state_dict(ref.state_dict(), strict=True)


def test_outputs_stats_and_gradients_agree(pair: tuple[str, nn.Module, nn.Module]) -> None:
    name, ours, ref = pair
    ours.load_state_dict(ref.state_dict(), strict=True)
    size = SIZE.get(name, 128)
    torch.manual_seed(2)
    x = torch.randn(2, 3, size, size)
    ours.eval()
    ref.eval()
    with torch.no_grad():
        assert close(ours(x), ref(x))
    if name in DEEP:
        return  # eval equivalence is enough for the largest nets' time budget; train below
    assert_same_training_step(ours, ref, x)


def assert_same_training_step(
    ours: nn.Module, ref: nn.Module, x: torch.Tensor, grad_tol: float = 1e-5
) -> None:
    """Train mode: outputs (under the same random draws), gradients and BN buffers agree."""
    ours.train()
    ref.train()
    torch.manual_seed(4)
    out_ours = ours(x)
    torch.manual_seed(4)
    out_ref = ref(x)
    # a network with training-only outputs returns (output, *aux); torchvision a named tuple;
    # a segmentation network a dict ({out, aux}), the same keys in the same order
    if isinstance(out_ref, dict):
        assert isinstance(out_ours, dict) and list(out_ours) == list(out_ref)
        out_ours, out_ref = tuple(out_ours.values()), tuple(out_ref.values())
    many_ours = list(out_ours) if isinstance(out_ours, tuple) else [out_ours]
    many_ref = list(out_ref) if isinstance(out_ref, tuple) else [out_ref]
    assert len(many_ours) == len(many_ref)
    assert all(close(a, b) for a, b in zip(many_ours, many_ref, strict=True))
    weights = [torch.randn_like(r) for r in many_ref]
    sum((a * w).sum() for a, w in zip(many_ours, weights, strict=True)).backward()  # type: ignore[union-attr]
    sum((b * w).sum() for b, w in zip(many_ref, weights, strict=True)).backward()  # type: ignore[union-attr]
    grads_ref = dict(ref.named_parameters())
    for key, p in ours.named_parameters():
        if grads_ref[key].grad is None:  # held, never run (smp's PSPNet's last stages)
            assert p.grad is None, key
            continue
        assert p.grad is not None and close(p.grad, grads_ref[key].grad, grad_tol), key  # type: ignore[arg-type]
    buffers_ref = dict(ref.named_buffers())
    for key, b in ours.named_buffers():
        assert torch.allclose(b.float(), buffers_ref[key].float(), atol=1e-5), key


def layout(module: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    """The state_dict's keys in order, each with its shape: what a strict load needs alike."""
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


def aten_ops(model: nn.Module, x: torch.Tensor) -> list[str]:
    """The aten ops a forward dispatches, in order (the zero-overhead proof)."""
    return recorded(model, x)[1]


def recorded(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
    """A forward without gradients and the aten ops it dispatches, in order (one forward where
    a forward takes seconds)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    seen: list[str] = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            seen.append(str(func))
            return func(*args, **(kwargs or {}))

    with torch.no_grad(), Record():
        out = model(x)
    return out, seen


# timm's nn.ModuleLists that are other modules here: HRNet's transitions 2 and 3 hold Identity
# modules at 0 to 2 (a module list here is numbered from 0), each fuse layer is a block instance
_NOT_LISTS = re.compile(r"transition[23]$|stage\d\.\d+\.fuse_layers\.\d+$")


def test_module_lists_are_the_references(pair: tuple[str, nn.Module, nn.Module]) -> None:
    """A container the reference fills in a loop (an nn.ModuleList: Res2Net's convs, SKNet's
    paths, HRNet's branches) is one here too, from a loop in the block type."""
    _, ours, ref = pair
    mine = dict(ours.named_modules())
    lists = [p for p, m in ref.named_modules() if isinstance(m, nn.ModuleList)]
    assert [
        p for p in lists if not _NOT_LISTS.search(p) and not isinstance(mine.get(p), nn.ModuleList)
    ] == []


def test_aten_op_sequence_is_the_references(pair: tuple[str, nn.Module, nn.Module]) -> None:
    _, ours, ref = pair
    x = torch.randn(1, 3, 64, 64)
    assert aten_ops(ours.eval(), x) == aten_ops(ref.eval(), x)


@pytest.mark.parametrize("name", sorted(DEEP))
def test_deep_nets_train_mode(name: str) -> None:
    """The deepest nets in train mode at a small size: batch statistics and gradients agree."""
    torch.manual_seed(0)
    ref = REFERENCES[name][0]()
    ours = compiler.compile(SPECS / f"{name}.yaml")
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    out_ours, out_ref = ours(x), ref(x)
    assert close(out_ours, out_ref)
    out_ours.square().mean().backward()
    out_ref.square().mean().backward()
    grads_ref = dict(ref.named_parameters())
    for key, p in ours.named_parameters():
        assert close(p.grad, grads_ref[key].grad), key  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_zero_init_residual_matches_torchvision(name: str) -> None:
    import torchvision

    ref = getattr(torchvision.models, name)(zero_init_residual=True)
    ours = compiler.compile(SPECS / f"{name}.yaml", zero_init_residual=True)
    zeroed_ref = {k for k, v in ref.state_dict().items() if k.endswith(".weight") and not v.any()}
    zeroed = {k for k, v in ours.state_dict().items() if k.endswith(".weight") and not v.any()}
    assert zeroed == zeroed_ref
    assert len(zeroed) == {"resnet18": 8, "resnet50": 16}[name]  # one per block
    plain = compiler.compile(SPECS / f"{name}.yaml")
    assert not any(k.endswith(".weight") and not v.any() for k, v in plain.state_dict().items())
