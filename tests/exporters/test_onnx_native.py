"""The netc exporter (ONNX written from the IR by the op table's rules): every family and every op
export and validate in onnxruntime like the torch exporters' files; the graph is the IR, node for
node, under the module's names; what ONNX cannot express exactly is refused, never approximated."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

import compiler
from compiler.lowering.folding import fold_module
from exporters.onnx import ExportError, export
from tests.conftest import SPECS, run_cli
from tests.exporters.test_onnx import FAMILIES, build, calibrated

pytestmark = pytest.mark.export

EVERY_OP = Path(__file__).resolve().parent.parent / "specs" / "every_op.yaml"
EVERY_OP_BY_RANK = [EVERY_OP.with_name("every_op_1d.yaml"), EVERY_OP.with_name("every_op_3d.yaml")]


@pytest.mark.parametrize("exporter", ["netc", "dynamo", "torchscript"])
@pytest.mark.parametrize("folded", [False, True], ids=["batchnorm_kept", "batchnorm_folded"])
def test_every_op_exports_and_validates(exporter: str, folded: bool, tmp_path: Path) -> None:
    graph = compiler.load_spec(EVERY_OP)
    module = calibrated(graph)
    target, tgraph = fold_module(module, graph) if folded else (module, graph)
    report = export(target, tgraph, tmp_path / "m.onnx", exporter=exporter, folded=folded)
    assert report.passed and report.exporter == exporter
    assert {c.batch for c in report.comparisons} == {1, 2, 5}
    # ceil-mode pooling, a broadcast gate, channel padding and a bias-free linear are in there
    for op_type in ("MaxPool", "AveragePool", "Mul", "Sigmoid", "Pad", "Conv"):
        assert report.op_counts.get(op_type, 0) >= 1, op_type
    if exporter == "netc":  # the IR's own ops, one to one: seven Sums, BN kept unless folded
        # Sum: the adds of three or more values (4) and the three weighted_sums' (each sums
        # its weighted terms); Gemm: the linears of flat vectors (fc, and the two that join the
        # detectors' ops)
        assert report.op_counts["Sum"] == 7 and report.op_counts["Gemm"] == 3
        # folding leaves only the BatchNorm after flatten (no conv before it)
        assert report.batchnorm_nodes == (1 if folded else 2)


@pytest.mark.parametrize("exporter", ["netc", "dynamo", "torchscript"])
@pytest.mark.parametrize("spec", EVERY_OP_BY_RANK, ids=["1d", "3d"])
def test_every_op_on_1d_and_3d_maps_exports_and_validates(
    spec: Path, exporter: str, tmp_path: Path
) -> None:
    graph = compiler.load_spec(spec)
    module = calibrated(graph)
    for folded in (False, True):
        target, tgraph = fold_module(module, graph) if folded else (module, graph)
        report = export(target, tgraph, tmp_path / "m.onnx", exporter=exporter, folded=folded)
        assert report.passed and report.exporter == exporter
        assert report.op_counts.get("Conv", 0) >= 4


@pytest.mark.parametrize("shape", [[4, 10], [4, 6, 7, 5]], ids=["1d", "3d"])
def test_adaptive_pooling_of_1d_and_3d_maps_exports_with_netcs_exporter(
    shape: list[int], tmp_path: Path
) -> None:
    """PyTorch's exporters cannot write these (the TorchScript one loses the input's size, the
    dynamo one has no rule for unequal windows); netc's averages each band of each axis."""
    spec = tmp_path / "adaptive.yaml"
    spec.write_text(
        f"name: adaptive\ninput: {shape}\nstem:\n"
        "  conv: {op: conv, out: 4, kernel: 1}\n"
        "  pool: {op: adaptive_avgpool, size: 3}\n"
        "  flat: {op: flatten}\n"
    )
    graph = compiler.load_spec(spec)
    report = export(calibrated(graph), graph, tmp_path / "m.onnx", exporter="netc")
    assert report.passed and report.op_counts["AveragePool"] >= 3


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_exports_and_validates(family: str, tmp_path: Path) -> None:
    module, graph = build(*FAMILIES[family])
    folded, fgraph = fold_module(module, graph)
    report = export(folded, fgraph, tmp_path / "m.onnx", folded=True, exporter="netc")
    assert report.passed and report.verdict.startswith("PASS")
    # what the fold left (a pre-activation BN has no conv before it) and nothing else
    assert report.batchnorm_nodes == sum(n.op == "batchnorm" for n in fgraph.nodes.values())
    assert report.op_counts["Conv"] == sum(n.op == "conv" for n in fgraph.nodes.values())


def test_the_graph_is_the_ir_under_the_modules_names(tmp_path: Path) -> None:
    module, graph = build("cifar/resnet20.yaml")
    folded, fgraph = fold_module(module, graph)
    path = tmp_path / "r20.onnx"
    export(folded, fgraph, path, folded=True, exporter="netc")
    model = onnx.load(path)
    nodes = {n.name: n for n in model.graph.node}
    # one ONNX node per IR node, named by module path; a strided option-A shortcut adds a Slice
    extra = {name for name in nodes if "/" in name}
    assert set(nodes) - extra == set(fgraph.nodes)
    assert {nodes[e].op_type for e in extra} == {"Slice"}
    assert nodes["layer2.0.shortcut"].op_type == "Pad"
    # weights are initializers under their state_dict names, each stored once
    params = {k for k, _ in folded.named_parameters()}
    weights = {t.name for t in model.graph.initializer if "/" not in t.name}
    assert weights == params
    # values are named by node: layer1.0's add reads its conv branch and the stem's ReLU
    assert list(nodes["layer1.0.add"].input) == ["layer1.0.conv2", "relu"]
    assert model.graph.output[0].name == "output" and nodes["fc"].output[0] == "output"
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["netc.exporter"] == "netc" and model.producer_name == "netc"


def _ceil_spec(tmp_path: Path) -> Path:
    path = tmp_path / "ceil.yaml"
    path.write_text(
        "name: ceil\ninput: [3, 6, 5]\n"
        "stem:\n  pool: {op: maxpool, kernel: 2, stride: 2, padding: 1, ceil_mode: true}\n"
        "head:\n  gap: {op: global_avgpool}\n  flat: {op: flatten}\n"
        "  fc: {op: linear, out: 2}\n"
    )
    return path


def test_a_pool_whose_last_window_pytorch_drops_is_exact(tmp_path: Path) -> None:
    """PyTorch drops a ceil-mode window that would start in the padding (5 -> 3 here), ONNX's
    formula keeps it (5 -> 4). Each side is checked: here the height (6 -> 4) agrees and only
    the width differs; the netc exporter writes that side in floor mode with the end padding
    that gives PyTorch's size, and onnxruntime agrees."""
    graph = compiler.load_spec(_ceil_spec(tmp_path))
    assert graph.nodes["pool"].shape == (3, 4, 3)
    report = export(compiler.compile(graph).eval(), graph, tmp_path / "m.onnx", exporter="netc")
    assert report.passed


def test_a_module_that_does_not_match_its_graph_is_refused(tmp_path: Path) -> None:
    graph = compiler.load_spec(SPECS / "cifar" / "resnet20.yaml")
    other = compiler.compile(compiler.load_spec(SPECS / "cifar" / "resnet32.yaml")).eval()
    with pytest.raises(ExportError, match=r"does not use the module's layer1\.3"):
        export(other, graph, tmp_path / "m.onnx", exporter="netc")
    fewer = compiler.compile(graph).eval()
    del fewer.fc
    with pytest.raises(ExportError, match=r"no 'fc\.weight'"):
        export(fewer, graph, tmp_path / "m.onnx", exporter="netc")


def test_old_opsets_are_refused_with_a_hint(tmp_path: Path) -> None:
    graph = compiler.load_spec(SPECS / "cifar" / "resnet20.yaml")
    with pytest.raises(ExportError, match=r"opset 13 or newer.*torchscript"):
        export(
            compiler.compile(graph).eval(), graph, tmp_path / "m.onnx", exporter="netc", opset=12
        )


def test_cli_export_with_the_netc_exporter(tmp_path: Path) -> None:
    out = tmp_path / "r20.onnx"
    code, stdout, err = run_cli(
        "export", str(SPECS / "cifar" / "resnet20.yaml"), "-o", str(out), "--exporter", "netc"
    )
    assert code == 0, err
    assert "exporter   netc, opset 18" in stdout and "verdict    PASS" in stdout
    assert onnx.load(out).graph.node[0].name == "conv1"


def test_a_ceil_mode_window_pytorch_drops_is_written_exactly(tmp_path: Path) -> None:
    """PyTorch drops a last ceil-mode window that starts in the padding; ONNX's ceil mode keeps
    it. The netc exporter writes floor mode with the end padding that gives PyTorch's size."""
    spec = tmp_path / "cm.yaml"
    spec.write_text(
        "name: cm\ninput: [2, 5, 1]\nstem:\n"
        "  pool: {op: maxpool, kernel: 2, padding: 1, ceil_mode: true}\n"
        "  avg: {op: avgpool, kernel: 2, padding: 1, ceil_mode: true, count_include_pad: false}\n"
    )
    graph = compiler.load_spec(spec)
    assert graph.shape_of("pool") == (2, 3, 1)  # ONNX's ceil mode would give 4x2
    report = export(compiler.compile(graph).eval(), graph, tmp_path / "cm.onnx", exporter="netc")
    assert report.passed


@pytest.mark.parametrize("exporter", ["netc", "dynamo"])
@pytest.mark.parametrize(
    ("h", "w", "size"), [(5, 7, 3), (7, 7, 4), (2, 3, 5), (9, 4, 2), (6, 6, 3), (4, 8, 2)]
)
def test_adaptive_pooling_with_unequal_windows(
    exporter: str, h: int, w: int, size: int, tmp_path: Path
) -> None:
    """PyTorch's adaptive windows [floor(i*n/o), ceil((i+1)*n/o)) differ in size when o does
    not divide n: the netc exporter averages bands of rows, then of columns; equal windows are
    one AveragePool. (TorchScript's exporter writes only the 1x1 case with a dynamic batch.)"""
    spec = tmp_path / "a.yaml"
    spec.write_text(
        f"name: a\ninput: [2, {h}, {w}]\nstem:\n  pool: {{op: adaptive_avgpool, size: {size}}}\n"
    )
    graph = compiler.load_spec(spec)
    report = export(compiler.compile(graph).eval(), graph, tmp_path / "a.onnx", exporter=exporter)
    assert report.passed


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "op"),
    [
        (2, 1, 2, 0, "maxpool"),
        (3, 2, 3, 0, "avgpool"),
        (2, 2, 3, 1, "avgpool"),
        (5, 3, 2, 1, "maxpool"),
    ],
)
def test_every_ceil_mode_pool_is_written_exactly(
    size: int, kernel: int, stride: int, padding: int, op: str, tmp_path: Path
) -> None:
    """Where PyTorch's ceil-mode output already ends inside the input (no end padding needed),
    floor mode with none is exact too; average pools count the padding as PyTorch does."""
    spec = tmp_path / "p.yaml"
    spec.write_text(
        f"name: p\ninput: [2, {size}, {size}]\nstem:\n  pool: {{op: {op}, kernel: {kernel}, "
        f"stride: {stride}, padding: {padding}, ceil_mode: true}}\n"
    )
    graph = compiler.load_spec(spec)
    report = export(compiler.compile(graph).eval(), graph, tmp_path / "p.onnx", exporter="netc")
    assert report.passed
