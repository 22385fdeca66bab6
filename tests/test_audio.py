"""A 1-D network: M5 (Dai et al. 2017) as docs/examples/m5.yaml equals the network built by hand
from the paper's Table 1, and its output lengths and size are the table's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import compiler
from tests.conftest import ROOT, run_cli
from tests.test_equivalence import assert_same_training_step, aten_ops, close

M5_SPEC = ROOT / "docs" / "examples" / "m5.yaml"


class M5(nn.Module):
    """M5 from the paper's Table 1: [80/4, 128], then [3, 128], [3, 256], [3, 512], each with
    batch norm, ReLU and a 4x max pool; global average pooling; a linear layer."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(1, 128, 80, stride=4, padding=38, bias=False)
        self.bn1 = nn.BatchNorm1d(128)
        self.relu1 = nn.ReLU(inplace=True)
        self.pool1 = nn.MaxPool1d(4)
        widths = [(128, 128), (128, 256), (256, 512)]
        for k, (cin, cout) in enumerate(widths, start=2):
            self.add_module(f"conv{k}", nn.Conv1d(cin, cout, 3, padding=1, bias=False))
            self.add_module(f"bn{k}", nn.BatchNorm1d(cout))
            self.add_module(f"relu{k}", nn.ReLU(inplace=True))
            self.add_module(f"pool{k}", nn.MaxPool1d(4))
        self.avgpool = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for k in range(1, 5):
            for part in ("conv", "bn", "relu", "pool"):
                x = getattr(self, f"{part}{k}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def test_m5_has_the_papers_output_lengths_and_size() -> None:
    graph = compiler.load_spec(M5_SPEC)
    assert graph.input_shape == (1, 32000)
    lengths = [graph.shape_of(f"pool{k}")[1] for k in range(1, 5)]
    assert graph.shape_of("conv1") == (128, 8000) and lengths == [2000, 500, 125, 31]
    assert graph.params == sum(p.numel() for p in M5().parameters()) == 558_090
    assert round(graph.params / 1e6, 1) == 0.6 and graph.params // 100_000 == 5  # "0.5M"


def test_m5_equals_the_hand_written_network() -> None:
    torch.manual_seed(0)
    ref = M5()
    ours = compiler.compile(M5_SPEC, seed=1)
    theirs = ref.state_dict()
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, v.shape) for k, v in theirs.items()
    ]
    ours.load_state_dict(theirs, strict=True)
    for m in (ours, ref):  # running statistics that are not the identity
        for name, b in m.named_buffers():
            if name.endswith("running_mean") or name.endswith("running_var"):
                b.copy_(torch.linspace(0.5, 1.5, b.numel()))
    x = torch.randn(2, 1, 4000)  # half a second: the lengths divide the same way
    with torch.no_grad():
        assert close(ours.eval()(x), ref.eval()(x))
    assert aten_ops(ours.eval(), x) == aten_ops(ref.eval(), x)
    assert_same_training_step(ours, ref, x)


@pytest.mark.export
def test_m5_exports_and_validates(tmp_path: Path) -> None:
    out = tmp_path / "m5.onnx"
    code, stdout, err = run_cli("export", str(M5_SPEC), "-o", str(out), "--set", "input=[1, 8000]")
    assert code == 0, err
    assert "PASS" in stdout + err and out.exists()
