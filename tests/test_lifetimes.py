"""The allocator sees the same program: a forward of netc's module allocates and frees the same
blocks as torchvision's, and never holds more memory at any point (the tensors' lifetimes in the
generated code end no later than in torchvision's forwards)."""

from __future__ import annotations

import itertools

import pytest
import torch
import torchvision
from torch.profiler import ProfilerActivity, profile

import compiler


def _memory_events(module: torch.nn.Module, x: torch.Tensor) -> list[int]:
    """Each allocation (+bytes) and free (-bytes) of one eval forward, in order."""
    with torch.no_grad():
        module(x)
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            module(x)
    return [e.cpu_memory_usage for e in prof.events() if e.name == "[memory]"]


@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2", "shufflenet_v2_x1_0", "densenet121"])
def test_a_forward_allocates_and_frees_as_torchvisions_does(name: str) -> None:
    torch.manual_seed(0)
    ref = getattr(torchvision.models, name)().eval()
    ours = compiler.compile(name).eval()
    x = torch.randn(2, 3, 64, 64)
    theirs, mine = _memory_events(ref, x), _memory_events(ours, x)
    assert len(mine) > 50
    assert sorted(mine) == sorted(theirs)
    live_theirs = list(itertools.accumulate(theirs))
    live_mine = list(itertools.accumulate(mine))
    assert all(m <= t for m, t in zip(live_mine, live_theirs, strict=True))
    if name != "densenet121":
        assert mine == theirs
    else:
        # torchvision's DenseNet keeps its last feature map (a local variable) until it returns;
        # netc frees it right after the pooling that last reads it
        assert mine != theirs
