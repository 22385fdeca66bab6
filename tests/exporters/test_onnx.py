"""ONNX export: every block family exports and validates in onnxruntime; metadata is present; a
wrong export is caught; a failure never leaves a partial file or harms the previous one."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch

import compiler
from compiler.lowering.folding import fold_module
from exporters.onnx import ExportError, export, spec_hash
from tests.conftest import SPECS, run_cli

pytestmark = pytest.mark.export

SMALL = ["input=[3, 64, 64]"]  # the op set is what matters here; resnet50 is also done at 224
FAMILIES = {
    "resnet18": ("resnet18.yaml", SMALL),
    "resnext50_32x4d": ("resnext50_32x4d.yaml", SMALL),
    "resnet50d": ("resnet50d.yaml", SMALL),
    "cifar_option_a": ("cifar/resnet20.yaml", None),
    "preact": ("cifar/preact_resnet164.yaml", None),
    "wide": ("cifar/wrn_28_10.yaml", ["params.k=2"]),
    "dilated": ("resnet50_dilated.yaml", None),  # at 64 or 128 px a logit near 0 misses atol
    "res2net": ("res2net50_26w_4s.yaml", SMALL),
    "dla": ("dla34.yaml", SMALL),
    "sknet": ("skresnet18.yaml", SMALL),
    "ghostnet": ("ghostnet_100.yaml", SMALL),
    "cspnet": ("cspresnet50.yaml", SMALL),
    "dpn": ("dpn68.yaml", SMALL),
    "hrnet": ("hrnet_w18_small.yaml", SMALL),
}


def calibrated(graph: compiler.Graph) -> torch.nn.Module:
    """Random weights with realistic BatchNorm statistics (a few train-mode batches), each
    BatchNorm's scale and shift its own (two of one input, as DPN's, would otherwise be one
    computation, which the exporter's optimiser rightly merges)."""
    m = compiler.compile(graph, seed=0)
    m.train()
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the same statistics whichever tests ran before
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.momentum = None  # a cumulative average over the batches below
                if mod.affine:
                    mod.weight.uniform_(0.5, 1.5)
                    mod.bias.uniform_(-0.1, 0.1)
        for _ in range(2):
            m(torch.randn(4, *graph.input_shape))
    return m.eval()


def build(spec: str, overrides: list[str] | None = None) -> tuple[torch.nn.Module, compiler.Graph]:
    graph = compiler.load_spec(SPECS / spec, overrides)
    return calibrated(graph), graph


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_exports_and_validates(family: str, tmp_path: Path) -> None:
    module, graph = build(*FAMILIES[family])
    folded, fgraph = fold_module(module, graph)
    report = export(folded, fgraph, tmp_path / "m.onnx", folded=True, exporter="dynamo")
    assert report.passed and report.verdict.startswith("PASS")
    assert len(report.comparisons) == 6  # batches 1, 2, 5 x optimisation off / all
    assert {c.batch for c in report.comparisons} == {1, 2, 5}
    assert all(c.argmax_agree == 1.0 for c in report.comparisons)
    convs_after_bn = sum(1 for n in graph.nodes.values() if n.op == "batchnorm") - sum(
        1 for n in fgraph.nodes.values() if n.op == "batchnorm"
    )
    assert convs_after_bn > 0
    assert report.batchnorm_nodes == sum(1 for n in fgraph.nodes.values() if n.op == "batchnorm")
    assert report.inputs[0]["shape"][0] == "batch" and report.outputs[0]["shape"][0] == "batch"


def test_resnet50_at_full_size_with_metadata(tmp_path: Path) -> None:
    module, graph = build("resnet50.yaml")
    folded, fgraph = fold_module(module, graph)
    path = tmp_path / "resnet50.onnx"
    report = export(folded, fgraph, path, folded=True)  # the default exporter: netc
    assert report.passed and report.batchnorm_nodes == 0 and report.exporter == "netc"
    assert report.op_counts["Conv"] == 53 and report.op_counts["Add"] == 16
    model = onnx.load(path)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["netc.spec"] == "resnet50"
    assert meta["netc.spec_sha256"] == spec_hash(graph) and len(meta["netc.spec_sha256"]) == 64
    assert meta["netc.version"] == compiler.__version__
    assert model.opset_import[0].version == 18
    assert not list(tmp_path.glob("*.data")) and not list(tmp_path.glob(".*.tmp"))  # one file
    out = model.graph.output[0].type.tensor_type.shape.dim
    assert out[0].dim_param == "batch" and out[1].dim_value == 1000
    # shape inference is saved: intermediate values have shapes for viewers such as Netron
    assert len(model.graph.value_info) > 50


def test_torchscript_exporter(tmp_path: Path) -> None:
    module, graph = build("resnet18.yaml", SMALL)
    report = export(module, graph, tmp_path / "ts.onnx", exporter="torchscript")
    assert report.passed and report.exporter == "torchscript"
    assert report.batchnorm_nodes == 0  # the TorchScript exporter folds BN itself in eval mode


def test_a_wrong_export_is_caught_and_nothing_is_written(tmp_path: Path) -> None:
    module, graph = build("resnet18.yaml", SMALL)
    altered = compiler.compile(graph, seed=0)
    altered.load_state_dict(module.state_dict())
    with torch.no_grad():
        altered.get_submodule("layer3.1.conv2").weight.mul_(1.5)  # the module changed after export
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous good file")
    with pytest.raises(ExportError) as e:
        export(module, graph, path, reference=altered.eval())
    assert "validation failed" in str(e.value) and e.value.report is not None
    assert not e.value.report.passed and e.value.report.verdict.startswith("FAIL")
    assert path.read_bytes() == b"previous good file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_export_failure_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, graph = build("cifar/resnet20.yaml")
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous good file")

    def broken(model: object, args: object, f: str | None = None, **kw: object) -> None:
        Path(f or next(tmp_path.glob(".netc-*.tmp"))).write_bytes(b"half a model")
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(ExportError) as e:
        export(module, graph, path, exporter="dynamo")
    assert "exporter crashed" in str(e.value)
    assert path.read_bytes() == b"previous good file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_refuses_training_mode(tmp_path: Path) -> None:
    graph = compiler.load_spec(SPECS / "cifar" / "resnet20.yaml")
    with pytest.raises(ExportError, match="training mode"):
        export(compiler.compile(graph).train(), graph, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_cli_export_and_report(tmp_path: Path) -> None:
    out, rep = tmp_path / "r20.onnx", tmp_path / "r20.json"
    code, stdout, err = run_cli(
        "export",
        str(SPECS / "cifar" / "resnet20.yaml"),
        "-o",
        str(out),
        "--report",
        str(rep),
        "--opset",
        "17",
        "--exporter",
        "torchscript",
    )
    assert code == 0, err
    assert "verdict    PASS" in stdout and "BatchNorm  0 nodes left" in stdout
    data = json.loads(rep.read_text())
    assert data["passed"] and data["opset"] == 17 and data["spec"] == "resnet20"
    assert data["exporter"] == "torchscript"
    assert onnx.load(out).opset_import[0].version == 17
    code, stdout, err = run_cli(
        "compile", str(SPECS / "cifar" / "resnet20.yaml"), "--onnx", str(tmp_path / "c.onnx")
    )
    assert code == 0 and "269,722" in stdout and "verdict    PASS" in stdout


def test_cli_export_with_bad_weights_fails_cleanly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"junk")
    code, _, err = run_cli(
        "export",
        str(SPECS / "cifar" / "resnet20.yaml"),
        "-o",
        str(tmp_path / "m.onnx"),
        "--weights",
        str(bad),
    )
    assert code == 1 and "cannot read checkpoint" in err and not (tmp_path / "m.onnx").exists()


def test_dynamo_refuses_old_opsets(tmp_path: Path) -> None:
    graph = compiler.load_spec(SPECS / "cifar" / "resnet20.yaml")
    with pytest.raises(ExportError, match="use --exporter torchscript for opset 17"):
        export(
            compiler.compile(graph).eval(), graph, tmp_path / "m.onnx", opset=17, exporter="dynamo"
        )


def test_the_json_report_is_strict_json() -> None:
    """Unmeasured float64 errors are null, an infinite difference (wrong output shape) too:
    no NaN or Infinity, which strict JSON parsers reject."""
    import numpy as np

    from exporters.onnx import Report, _compare

    versions = dict.fromkeys(("netc", "torch", "onnx", "onnxruntime"), "0")
    report = Report(
        spec="m",
        spec_hash="0" * 64,
        path="m.onnx",
        exporter="netc",
        opset=18,
        versions=versions,
        folded_batchnorm=True,
    )
    want = np.zeros((2, 10), dtype=np.float32)
    report.comparisons.append(_compare(2, "off", want, want, want, measured=False))
    report.comparisons.append(_compare(2, "all", np.zeros((2, 9), np.float32), want, want, True))

    def refuse(constant: str) -> None:
        raise ValueError(constant)

    data = json.loads(report.as_json(), parse_constant=refuse)
    assert data["comparisons"][0]["ort_error_vs_f64"] is None
    assert data["comparisons"][0]["allclose"] is True
    assert data["comparisons"][1]["max_abs_diff"] is None
    assert "-" in report.text()  # the text shows unmeasured values as '-'


# one model per zoo family, at 64x64: depthwise and grouped convs, squeeze-and-excitation,
# hard-swish / SiLU gates, channels-last layer norm and MLP, layer scale, concatenations (dense
# stages, Fire modules), ceil-mode pools, x.mean([2, 3]), chunks and channel shuffles, and
# training-only classifiers left out of the file, non-square kernels
ZOO_FAMILIES = [
    "mobilenet_v3_large",
    "efficientnet_b0",
    "regnet_y_400mf",
    "convnext_tiny",
    "densenet121",
    "squeezenet1_1",
    "mnasnet0_5",
    "shufflenet_v2_x0_5",
    "googlenet",
    "inception_v3",  # 1x7 and 7x1 kernels; at 299x299, which its training-only classifier needs
    "vit_b_16",  # token sequences, a class token, a position embedding, self-attention
    "swin_t",  # shifted window attention with its mask, padding to whole windows, patch merging
    "swin_v2_t",  # cosine attention, the position-bias MLP, post-norm blocks and patch merging
    "maxvit_t",  # block and grid partitions, relative attention; at 224x224, its smallest input
]
ZOO_INPUT: dict[str, list[str] | None] = {"inception_v3": None, "maxvit_t": None}


@pytest.mark.parametrize("exporter", ["netc", "dynamo", "torchscript"])
@pytest.mark.parametrize("name", ZOO_FAMILIES)
def test_modern_families_export_with_every_exporter(
    name: str, exporter: str, tmp_path: Path
) -> None:
    module, graph = build(f"{name}.yaml", ZOO_INPUT.get(name, SMALL))
    folded, fgraph = fold_module(module, graph)
    report = export(folded, fgraph, tmp_path / "m.onnx", folded=True, exporter=exporter)
    assert report.passed and report.verdict.startswith("PASS")
    assert all(c.argmax_agree == 1.0 for c in report.comparisons)
    assert report.inputs[0]["shape"][0] == "batch" and report.outputs[0]["shape"][0] == "batch"
