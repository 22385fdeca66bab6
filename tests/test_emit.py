"""`netc emit`: standalone PyTorch source from a spec. Run where netc cannot be imported, it gives
the same state_dict keys, the same initial weights, the same outputs and the same aten op
sequence as compiler.compile, and it passes `ruff check`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import compiler
from compiler.ir.passes.fold import fold_affine
from compiler.tools.emit import emit
from tests.conftest import ROOT, SPECS, run_cli
from tests.test_equivalence import aten_ops

# one spec per structure the emitter must unify: projection (B), option A padding (a netc
# helper module), ResNet-D's avg_down (a part switched off by 'when'), pre-activation projections
# reading inside the block, the plain nets' removed shortcut, and a backbone's feature outputs
CASES = {
    "resnet50": ([], 64),
    "cifar/resnet20": ([], 32),
    "resnet50d": ([], 64),
    "cifar/preact_resnet164": (["params.n=2"], 32),
    "paper/plain18": ([], 64),
    "resnet18_features": (["outputs=[layer2, layer4]"], 64),
    # blocks whose layers are numbered by what they have, squeeze-and-excitation, module paths
    # that are no identifiers (block1-0), a bare parameter (layer_scale), channels-last layers
    "mobilenet_v3_small": ([], 64),
    "efficientnet_b0": ([], 64),
    "regnet_y_400mf": ([], 64),
    "convnext_tiny": (["stages.features.5.repeat=2"], 64),
    # flat blocks numbered in their container; a dense stage's layers (forward(*xs)) and concat
    "vgg11_bn": ([], 32),
    "densenet121": (["params.blocks3=3", "params.blocks4=2"], 64),
    "squeezenet1_1": ([], 64),
    # pieces of one torch.chunk call, the unit's two forms reading different values into concat
    "shufflenet_v2_x0_5": ([], 64),
    # non-square kernels; token sequences with bare parameters and attention; Swin's windows
    "inception_v3": (["aux_outputs=null", "stages.AuxLogits=null"], 75),
    "vit_b_16": (["input=[3, 32, 32]", "params.layers=2"], 32),
    "swin_t": (["params.depths_3=2"], 64),
    # a block whose modules are registered in another order than they run (module_order)
    "swin_v2_t": (["params.depths_3=2"], 64),
    # functions of two inputs (departition reads the map it restores), einsum attention
    "maxvit_t": (["params.depths_3=1"], 224),
    # a block's loop: numbered convs and BNs in containers, a list of pieces into one concat
    "res2net50_26w_4s": (["stages.layer3.repeat=2"], 64),
    # blocks inside blocks, a block type inside itself (DLA's trees), a block's extra inputs
    "dla34": ([], 64),
    # branches stacked on a new dimension, a view, a softmax over the branches
    "skresnet18": ([], 64),
    # a block node of one type with and without its ReLUs, a narrowed concat
    "ghostnet_100": ([], 64),
    # a loop of block nodes (a cross stage's bottlenecks), their type a parameter
    "cspdarknet53": (["stages.s2.depth=2", "stages.s3.depth=2"], 64),
    # two paths in one map: slices of the input or of its projection, chosen by a parameter
    "dpn68": (["stages.conv4.repeat=2"], 64),
    # a stage of several inputs, modules reading the branches inside the module before
    "hrnet_w18_small": ([], 64),
    # a part (the backbone) under its path, resizes to another value's size, a dict returned
    "segmentation/deeplabv3_resnet50": (["parts.backbone.set=[stages.layer3.repeat=2]"], 48),
    "segmentation/lraspp_mobilenet_v3_large": ([], 48),
}

RUNNER = """
import importlib.util, json, sys
sys.modules["compiler"] = None  # netc cannot be imported here
sys.modules["exporters"] = None
import torch
from torch.utils._python_dispatch import TorchDispatchMode

spec = importlib.util.spec_from_file_location("emitted", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
sys.modules["emitted"] = mod
spec.loader.exec_module(mod)
model = mod.build(seed=0).eval()
assert type(model)().training  # constructible with no arguments
x = torch.load(sys.argv[2])
seen = []

class Record(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        seen.append(str(func))
        return func(*args, **(kwargs or {}))

with torch.no_grad(), Record():
    out = model(x)
torch.save({"state": model.state_dict(), "out": out}, sys.argv[3])
json.dump(seen, open(sys.argv[4], "w"))
"""


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.zoo
def test_emitted_source_is_the_compiled_network(name: str, tmp_path: Path) -> None:
    overrides, size = CASES[name]
    spec = SPECS / f"{name.removesuffix('_features').replace('_features', '')}.yaml"
    if name.endswith("_features"):
        spec = SPECS / "resnet18.yaml"
    graph = compiler.load_spec(spec, [*overrides, f"input=[3, {size}, {size}]"])
    _check_emitted(graph, size, tmp_path)


@pytest.mark.slow
def test_a_folded_network_emits_its_sequentials_by_name(tmp_path: Path) -> None:
    """Folding removes each BatchNorm from its Sequential (a conv-BN-activation [0, 1, 2] keeps
    0 and 2); the emitted source builds those from an OrderedDict, as the lowering does."""
    graph = compiler.load_spec(SPECS / "mobilenet_v3_small.yaml", ["input=[3, 64, 64]"])
    folded, pairs = fold_affine(graph)
    assert pairs
    source = _check_emitted(folded, 64, tmp_path)
    assert "OrderedDict(" in source


def _check_emitted(graph: compiler.Graph, size: int | None, tmp_path: Path) -> str:
    """Run ``emit(graph)``'s source where netc cannot be imported and compare it with
    compiler.compile(graph): keys, initial weights, outputs, aten ops, lint, on a batch of two
    3 x size x size images (None: the spec's own input). Returns the source."""
    text = emit(graph)
    source = tmp_path / "model.py"
    source.write_text(text)
    x = torch.randn(2, *graph.input_shape) if size is None else torch.randn(2, 3, size, size)
    torch.save(x, tmp_path / "x.pt")
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    done = subprocess.run(
        [sys.executable, str(runner), str(source), str(tmp_path / "x.pt"),
         str(tmp_path / "out.pt"), str(tmp_path / "ops.json")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = torch.load(tmp_path / "out.pt")
    ours = compiler.compile(graph, seed=0).eval()
    mine = ours.state_dict()
    assert list(theirs["state"]) == list(mine)  # same keys, same order
    for key, value in mine.items():
        assert torch.equal(theirs["state"][key], value), key  # the same initial weights
    with torch.no_grad():
        want = ours(x)
    got = theirs["out"]
    if isinstance(want, dict):  # named outputs: the same keys, in order
        assert list(got) == list(want)
        got, want = list(got.values()), list(want.values())
    for a, b in zip(
        got if isinstance(got, list) else [got],
        want if isinstance(want, list) else [want],
        strict=True,
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert json.loads((tmp_path / "ops.json").read_text()) == aten_ops(ours, x)
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", str(source)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout
    return text


@pytest.mark.subprocess
def test_every_op_has_a_source_form(tmp_path: Path) -> None:
    """tests/specs/every_op.yaml: each op's module or function call is written as the lowering
    builds it (a layer norm over a 5x5 map keeps its shape (5, 5), not 5)."""
    graph = compiler.load_spec(ROOT / "tests" / "specs" / "every_op.yaml")
    source = _check_emitted(graph, 20, tmp_path)
    assert "nn.LayerNorm((5, 5))" in source


@pytest.mark.parametrize("rank", ["1d", "3d"])
def test_every_op_on_1d_and_3d_maps_has_a_source_form(rank: str, tmp_path: Path) -> None:
    graph = compiler.load_spec(ROOT / "tests" / "specs" / f"every_op_{rank}.yaml")
    source = _check_emitted(graph, None, tmp_path)
    assert f"nn.Conv{rank}(" in source
    assert f"class PaddedConv{rank}(_PaddedConv, nn.Conv{rank}):" in source


def run_source(source: str, name: str = "emitted.py") -> dict[str, Any]:
    """What importing an emitted file gives: its namespace, the file executed."""
    namespace: dict[str, Any] = {}
    exec(compile(source, name, "exec"), namespace)
    return namespace


def test_one_class_per_block_type_reads_like_torchvision() -> None:
    text = emit(compiler.load_spec(SPECS / "resnet50.yaml"))
    assert text.count("class Bottleneck(nn.Module):") == 1
    assert "import compiler" not in text and "netc" not in text.split('"""', 2)[2].split("def")[0]
    assert "self.downsample = nn.Sequential(" in text
    assert "downsample = self.downsample(x) if self.downsample is not None else x" in text
    assert "bn3 += downsample" in text


def test_netc_emit_command(tmp_path: Path) -> None:
    out = tmp_path / "resnet18.py"
    code, stdout, err = run_cli("emit", "resnet18", "-o", str(out))
    assert code == 0, err
    assert out.read_text().startswith('"""resnet18: ')
    assert f"wrote {out}" in stdout
    code, _, err = run_cli("emit", str(ROOT / "tests" / "invalid" / "cycle.yaml"), "-o", str(out))
    assert code == 2 and "error" in err and out.read_text().startswith('"""resnet18: ')


def test_training_only_outputs_are_refused_with_the_reason() -> None:
    from compiler.tools.emit import EmitError

    with pytest.raises(EmitError, match="training-only outputs"):
        emit(compiler.load_spec(SPECS / "googlenet.yaml"))


def test_a_part_inside_one_of_its_own_name_is_a_class_of_its_own(tmp_path: Path) -> None:
    """A part named as the part it lies in (MaxViT's ``layers.MBconv.layers``, here ``mlp`` in
    a block type ``mlp``) is its own class, named after the class it lies in: one class per
    structure, not one per instance, and the weights netc builds."""
    spec = tmp_path / "nested.yaml"
    spec.write_text(
        "name: nested\ninput: [8]\n"
        "block_types:\n  mlp:\n    nodes:\n"
        "      mlp.a: {op: linear, out: 16}\n"
        "      mlp.b: {op: linear, out: 8}\n"
        "      sum: {op: add, in: [input, mlp.b]}\n"
        "stages:\n  layers: {block: mlp, repeat: 3, path: 'mlp.{index}'}\n"
    )
    graph = compiler.load_spec(spec)
    source = emit(graph)
    classes = [line.split("(")[0][6:] for line in source.splitlines() if line.startswith("class ")]
    assert {"Mlp", "MlpMlp"} <= set(classes) and len(classes) == len(set(classes))
    built = run_source(source, str(tmp_path / "nested.py"))["build"](seed=0)
    ours = compiler.compile(graph, seed=0)
    assert list(built.state_dict()) == list(ours.state_dict())
    for key, value in ours.state_dict().items():
        assert torch.equal(built.state_dict()[key], value), key
