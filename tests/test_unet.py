"""The U-Net (Ronneberger, Fischer and Brox 2015) and its common padded variant from the library's
specs, proven equal to a reference written by hand from the paper (tests/unet_reference.py):
the paper's shapes and parameter count, keys, strict load, eval and train outputs, gradients, the
aten op sequence, MACs against FlopCounterMode, and ONNX export of a segmentation output."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import compiler
from compiler.lowering.folding import fold_module
from exporters.onnx import export
from tests.conftest import SPECS
from tests.test_equivalence import assert_same_training_step, aten_ops, close
from tests.unet_reference import UNet

pytestmark = pytest.mark.zoo

PAPER = SPECS / "unet" / "unet.yaml"
PADDED = SPECS / "unet" / "unet_padded.yaml"
# (spec, reference arguments, a reduced input side: the paper's valid convolutions need
# side = 16 * k + 124 to keep every pool even; 188 gives a 4x4 map, 252 an 68x68 one)
CASES = {
    "paper": (PAPER, {"in_channels": 1}, 252),
    "padded": (PADDED, {"in_channels": 3, "padded": True}, 64),
}


def test_the_papers_figure_1() -> None:
    """572x572 in, 388x388 out; each level's maps as Fig. 1 draws them; 31,030,658 parameters
    (the count every re-implementation of the paper's network reports)."""
    graph = compiler.load_spec(PAPER)
    assert graph.input_shape == (1, 572, 572)
    assert graph.shape_of(graph.output) == (2, 388, 388)
    side = {n: graph.nodes[f"{n}.relu2"].shape for n in ("down1", "down2", "down3", "down4")}
    assert side == {
        "down1": (64, 568, 568),
        "down2": (128, 280, 280),
        "down3": (256, 136, 136),
        "down4": (512, 64, 64),
    }
    assert graph.nodes["down5.relu2"].shape == (1024, 28, 28)
    assert graph.nodes["up4.up"].shape == (512, 56, 56)
    assert graph.nodes["up4.crop"].shape == (512, 56, 56)  # 64x64 cropped to 56x56
    assert graph.nodes["up4.cat"].shape == (1024, 56, 56)
    ups = [graph.nodes[f"up{k}.relu2"].shape for k in (4, 3, 2, 1)]
    assert ups == [(512, 52, 52), (256, 100, 100), (128, 196, 196), (64, 388, 388)]
    assert graph.params == 31_030_658


def test_the_padded_variant_keeps_the_input_size() -> None:
    graph = compiler.load_spec(PADDED)
    assert graph.shape_of(graph.output) == (2, 256, 256)
    assert not any(n.op == "crop" for n in graph.nodes.values())
    assert graph.params == sum(p.numel() for p in UNet(3, padded=True).parameters())


@pytest.mark.parametrize("case", sorted(CASES))
def test_equal_to_the_papers_network(case: str) -> None:
    spec, kwargs, side = CASES[case]
    torch.manual_seed(0)
    ref = UNet(**kwargs)  # type: ignore[arg-type]
    ours = compiler.compile(spec)
    mine = [(k, tuple(v.shape)) for k, v in ours.state_dict().items()]
    assert mine == [(k, tuple(v.shape)) for k, v in ref.state_dict().items()]
    ours.load_state_dict(ref.state_dict(), strict=True)
    channels = kwargs["in_channels"]
    x = torch.randn(2, channels, side, side, generator=torch.Generator().manual_seed(1))
    assert_same_training_step(ours, ref, x, grad_tol=1e-4)
    ours.eval()
    ref.eval()
    with torch.no_grad():
        assert close(ours(x), ref(x))
    assert aten_ops(ours, x[:1]) == aten_ops(ref, x[:1])


@pytest.mark.parametrize("case", sorted(CASES))
def test_macs_equal_flop_counter(case: str) -> None:
    """The up-convolution's MACs (every input position scatters its kernel) included."""
    spec, _, side = CASES[case]
    graph = compiler.load_spec(spec, [f"input=[{CASES[case][1]['in_channels']}, {side}, {side}]"])
    with torch.device("meta"):
        module = compiler.lowering.lower.lower(graph)
    with FlopCounterMode(display=False) as counter:
        module.eval()(torch.empty(1, *graph.input_shape, device="meta"))
    assert counter.get_total_flops() == 2 * graph.macs


@pytest.mark.parametrize("exporter", ["netc", "dynamo"])
def test_onnx_segmentation_output_with_a_dynamic_batch_and_size(
    exporter: str, tmp_path: Path
) -> None:
    """The padded U-Net accepts any multiple of 16 (sizes:): its file takes any batch, height
    and width, validated at 64x64 and at another size."""
    graph = compiler.load_spec(PADDED, ["input=[3, 64, 64]"])
    module = compiler.compile(graph, seed=0)
    with torch.no_grad():
        for name, buffer in module.named_buffers():  # non-trivial BN statistics
            if name.endswith("running_var"):
                buffer.uniform_(0.5, 2.0)
            elif name.endswith("running_mean"):
                buffer.uniform_(-0.1, 0.1)
    folded, fgraph = fold_module(module.eval(), graph)
    report = export(folded, fgraph, tmp_path / "unet.onnx", folded=True, exporter=exporter)
    assert report.passed and report.verdict.startswith("PASS")
    assert report.inputs[0]["shape"] == ["batch", 3, "height", "width"]
    out = report.outputs[0]["shape"]
    assert out[:2] == ["batch", 2] and all(isinstance(d, str) for d in out[2:])
    assert len({c.input for c in report.comparisons}) == 2
