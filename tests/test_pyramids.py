"""What a feature pyramid of many levels needs from the language, beside the EfficientDet proof
(tests/test_efficientdet.py): weighted_sum's three fusions computed as EfficientDet writes them,
a stage's `in:` and the outputs written as templates of the network's params, and a sizes proof
that does not compound the strides of paths that a resize `like:` ends."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import compiler
from compiler.ir.passes.sizes import period
from tests.conftest import SPECS, TESTS

FUSION = TESTS / "specs" / "fusion.yaml"
RESDET = SPECS / "detection" / "resdet50.yaml"


def test_the_fusions_are_effdets_formulas() -> None:
    graph = compiler.load_spec(FUSION)
    # a fusion of n maps learns n weights; the plain sum none
    assert [graph.nodes[n].meta["params"] for n in ("fast", "soft", "plain", "one")] == [2, 2, 0, 1]
    module = compiler.compile(graph, seed=0).eval()
    state = module.state_dict()
    assert torch.equal(state["fast"], torch.ones(2)) and "plain" not in state
    with torch.no_grad():
        state["fast"].copy_(torch.tensor([0.7, -0.2]))  # relu keeps the second out
        state["soft"].copy_(torch.tensor([0.3, 1.1]))
        state["one"].copy_(torch.tensor([2.0]))
        x = torch.randn(2, 3, 8, 8)
        fast, soft, plain, one = module(x)
        a, b = module.get_submodule("a")(x), module.get_submodule("b")(x)
    w = F.relu(torch.tensor([0.7, -0.2]))
    assert torch.allclose(fast, (a * w[0] + b * w[1]) / (w.sum() + 1e-4))
    s = torch.softmax(torch.tensor([0.3, 1.1]), 0)
    assert torch.allclose(soft, a * s[0] + b * s[1])
    assert torch.allclose(plain, a + b)
    assert torch.allclose(one, a * 2.0 / (2.0 + 1e-4))


def test_the_fusion_weights_train() -> None:
    module = compiler.compile(FUSION, seed=0).train()
    sum(o.sum() for o in module(torch.randn(2, 3, 8, 8))).backward()
    grads = {k: p.grad for k, p in module.named_parameters()}
    assert all(grads[k] is not None and grads[k].abs().sum() > 0 for k in ("fast", "soft", "one"))


def test_a_stage_reads_and_the_outputs_are_templates_of_the_params() -> None:
    """resdet50's nets read the last BiFPN layer's outputs, whichever layer that is and
    whichever its layout (`in: ["fpn.cell.{fpn_repeats - 1}.fnode.{first_out + k}...
    for k in range(5)"]`); its first prediction is named by `separable`."""
    graph = compiler.load_spec(RESDET, ["params.fpn_repeats=2", "params.separable=true"])
    first = graph.nodes["class_net.conv_rep.0.conv_dw"]
    assert first.inputs == ["fpn.cell.1.fnode.3.after_combine.conv.bn"]
    assert graph.features[0].node == "class_net.predict.conv_pw"
    pan = compiler.load_spec(RESDET, ["params.fpn_layer=\"'pan_layer'\""])
    assert pan.nodes["box_net.level4.conv0"].inputs == ["fpn.cell.3.fnode.9.after_combine.conv.bn"]


def test_a_resize_like_ends_the_strides_of_its_path() -> None:
    """BiFPN's four layers each pool P3 down to P7 and resize back up (like: the finer map):
    the period of its sizes is P7's stride, 128, not a product over the layers, so `sizes:
    any` is proven by checking 128 remainders; one network runs at sizes no multiple of 128."""
    graph = compiler.load_spec(RESDET)
    assert period(graph) == 128
    small = compiler.load_spec(RESDET, ["input=[3, 100, 150]", "params.fpn_repeats=1"])
    module = compiler.compile(small, seed=0).eval()
    with torch.no_grad():
        out = module(torch.randn(1, 3, 100, 150))
    assert [tuple(out[k].shape[2:]) for k in list(out)[:5]] == [
        (13, 19),
        (7, 10),
        (4, 5),
        (2, 3),
        (1, 2),
    ]
