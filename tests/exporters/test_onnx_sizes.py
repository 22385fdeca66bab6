"""ONNX of networks that accept many input sizes (``sizes:``): a dynamic height and width,
validated in onnxruntime at the written size and at a rectangle of two other accepted sides,
with every exporter; a file that bakes one size in is caught by that validation, and nothing is
written."""

from __future__ import annotations

from pathlib import Path

import pytest

import compiler
from compiler.lowering.folding import fold_module
from exporters.onnx import ExportError, export, other_sizes
from tests.conftest import SPECS

pytestmark = pytest.mark.export

CASES = {  # spec -> overrides that keep it small
    "smp/unet_resnet34": ["input=[3, 64, 64]"],
    "smp/fpn_resnet50": ["input=[3, 64, 64]"],
    "smp/deeplabv3plus_resnet50": ["input=[3, 64, 64]"],
    "smp/linknet_resnet18": ["input=[3, 64, 64]"],
    "segmentation/deeplabv3_mobilenet_v3_large": ["input=[3, 64, 64]"],
    "unet/unet": ["input=[1, 188, 188]", "params.width=8"],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_dynamic_sides_validate_at_two_sizes(name: str, tmp_path: Path) -> None:
    graph = compiler.load_spec(SPECS / f"{name}.yaml", CASES[name])
    module = compiler.compile(graph, seed=0).eval()
    folded, fgraph = fold_module(module, graph)
    report = export(folded, fgraph, tmp_path / "m.onnx", folded=True)
    assert report.passed and report.written
    assert report.inputs[0]["shape"][2:] == ["height", "width"]
    sizes = {c.input for c in report.comparisons}
    assert len(sizes) == 2 and len(report.comparisons) == 10  # 3 batches x 2, then 2 x 2


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_the_torch_exporters_write_dynamic_sides(exporter: str, tmp_path: Path) -> None:
    graph = compiler.load_spec(SPECS / "smp" / "unet_resnet34.yaml", ["input=[3, 64, 64]"])
    module = compiler.compile(graph, seed=0).eval()
    report = export(module, graph, tmp_path / "m.onnx", exporter=exporter)
    assert report.passed and report.inputs[0]["shape"][2:] == ["height", "width"]
    assert {c.input for c in report.comparisons} == {"3x64x64", "3x96x32"}


def test_a_size_baked_into_the_file_fails_validation(tmp_path: Path) -> None:
    """An adaptive pool to 2x2 writes the windows of the written size: right at 64x64, wrong at
    the others; the export is refused and the previous file stays."""
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "name: baked\ninput: [3, 64, 64]\nsizes: {multiple: 8}\nstem:\n"
        "  conv: {op: conv, out: 4, kernel: 3}\n"
        "  pool: {op: adaptive_avgpool, size: 2}\n"
        "  up: {op: resize, like: input, mode: bilinear}\n"
    )
    graph = compiler.load_spec(spec)
    assert other_sizes(graph) == [(3, 40, 48)]
    module = compiler.compile(graph, seed=0).eval()
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous good file")
    with pytest.raises(ExportError) as e:
        export(module, graph, path)
    report = e.value.report
    assert report is not None and not report.written
    assert "3x40x48" in str(e.value)
    assert report.verdict.endswith("export that size alone with --set sizes=null")
    assert path.read_bytes() == b"previous good file"
