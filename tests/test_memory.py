"""The compiler's peak activation memory (compiler.ir.passes.memory) against what the running module
holds (compiler.lowering.measure), to the byte: views, in-place ops, skips held across blocks and
the arguments a module call keeps alive until it returns."""

from __future__ import annotations

import pytest
import torch

import compiler
from compiler.ir.passes.memory import inplace_plan, peak_bytes
from compiler.lowering.measure import peak_live_bytes
from tests.conftest import SPECS

SMALL = ["input=[3, 64, 64]"]
CASES = [
    "resnet18",
    "resnet50",
    "densenet121",
    "vgg11_bn",
    "shufflenet_v2_x1_0",
    "squeezenet1_1",
    "unet/unet_padded",
    "mobilenet_v2",
    "efficientnet_b0",
    "convnext_tiny",
    "googlenet",  # its Inception modules hold their branches past the concat
]


@pytest.mark.parametrize("name", CASES)
def test_peak_activation_memory_matches_the_running_module(name: str) -> None:
    graph = compiler.load_spec(SPECS / f"{name}.yaml", SMALL)
    module = compiler.compile(graph).eval()
    x = torch.randn(2, *graph.input_shape)
    predicted = peak_bytes(graph, batch=2)
    measured = peak_live_bytes(module, x)
    assert predicted == measured


def test_the_papers_unet_is_predicted_exactly() -> None:
    """At 188x188 to the byte; at the paper's 572x572 210 MiB per sample are alive at once, where
    keeping every output (what the per-stage table sums, and training roughly keeps) is 1.2 GiB:
    the peak is the last level: the first level's map copied across, the one below it (held by
    the call of the level), the upsampled map and their concat."""
    graph = compiler.load_spec(SPECS / "unet" / "unet.yaml", ["input=[1, 188, 188]"])
    module = compiler.compile(graph).eval()
    assert peak_bytes(graph) == peak_live_bytes(module, torch.randn(1, 1, 188, 188))
    full = compiler.load_spec(SPECS / "unet" / "unet.yaml")
    largest = max(n.meta["act"] for n in full.nodes.values())
    assert 2 * largest < peak_bytes(full) < full.activation_bytes / 5


def test_in_place_follows_the_readers() -> None:
    """A ReLU after BN may overwrite it; one whose input a skip also reads may not."""
    allowed = inplace_plan(compiler.load_spec(SPECS / "resnet18.yaml"))
    assert allowed["relu"] and allowed["layer1.0.relu1"]
    assert not allowed["layer1.0.conv1"]  # its input (the maxpool) is the identity shortcut too
    assert not allowed["conv1"]  # the caller's input is never overwritten
