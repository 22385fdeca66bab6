"""Stochastic depth whose probability follows a block's index over the whole network, drawing
the same random numbers as torchvision's StochasticDepth."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.ops import StochasticDepth

import compiler

SPEC = """
name: sd
input: [3, 8, 8]
block_types:
  res:
    params: {width: null}
    nodes:
      conv: {op: conv, out: width, kernel: 3}
      bn: {op: batchnorm}
      drop: {op: stochastic_depth, p: "0.2 * block_index / block_count"}
      shortcut: {op: shortcut, in: input, out: width}
      add: {op: add, in: [drop, shortcut]}
stem:
  conv1: {op: conv, out: 4, kernel: 3}
stages:
  layer1: {block: res, repeat: 2, width: 4}
  layer2: {block: res, repeat: 3, width: 8}
"""


def test_probability_by_global_block_index(tmp_path: Path) -> None:
    spec = tmp_path / "sd.yaml"
    spec.write_text(SPEC)
    graph = compiler.load_spec(spec)
    ps = [n.attrs["p"] for n in graph.nodes.values() if n.op == "stochastic_depth"]
    assert ps == [0.2 * i / 5 for i in range(5)]  # EfficientNet's rule: 0.2 * i / N


def test_train_mode_draws_what_torchvision_draws(tmp_path: Path) -> None:
    spec = tmp_path / "one.yaml"
    spec.write_text(
        "name: one\ninput: [4, 5, 5]\nstem:\n  sd: {op: stochastic_depth, p: 0.4}\n"
        "  sd_batch: {op: stochastic_depth, p: 0.3, mode: batch}\n"
    )
    ours = compiler.compile(spec).train()
    ref = torch.nn.Sequential(StochasticDepth(0.4, "row"), StochasticDepth(0.3, "batch")).train()
    x = torch.randn(64, 4, 5, 5)
    torch.manual_seed(7)
    got = ours(x)
    torch.manual_seed(7)
    want = ref(x)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert (got.flatten(1).abs().sum(1) == 0).any()  # some rows were dropped
    ours.eval()
    torch.testing.assert_close(ours(x), x, rtol=0, atol=0)  # the identity in eval mode
