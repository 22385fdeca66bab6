"""The allocator sees the same program: a forward of netc's module allocates and frees the same
blocks as torchvision's, and never holds more memory at any point (the tensors' lifetimes in the
generated code end no later than in torchvision's forwards); and building a network leaves the
allocator as torchvision's constructors do, having freed no large block."""

from __future__ import annotations

import gc
import itertools

import pytest
import torch
import torchvision
from torch.profiler import ProfilerActivity, profile

import compiler

pytestmark = pytest.mark.zoo


def _memory_events(module: torch.nn.Module, x: torch.Tensor) -> list[int]:
    """What one eval forward allocates (+bytes) and frees (-bytes), in order: each innermost
    op's own memory (its output, less what it freed inside) and each free between ops (a
    "[memory]" event, when the code drops a value's last reference)."""
    with torch.no_grad():
        module(x)
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            module(x)
    timed = sorted(prof.events(), key=lambda e: (e.time_range.start, -e.time_range.end))
    return [
        e.cpu_memory_usage if e.name == "[memory]" else e.self_cpu_memory_usage
        for e in timed
        if e.name == "[memory]" or (e.self_cpu_memory_usage and not e.cpu_children)
    ]


# the networks and an input: ViT's size is fixed, Inception v3 needs 75 pixels at least
LIFETIME_CASES = {
    "resnet50": (2, 64),
    "mobilenet_v2": (2, 64),
    "shufflenet_v2_x1_0": (2, 64),
    "densenet121": (2, 64),
    "googlenet": (2, 64),
    "inception_v3": (2, 96),
    "squeezenet1_1": (2, 64),
    "vit_b_16": (1, 224),
    "swin_t": (1, 224),
    "swin_v2_t": (1, 224),
    "maxvit_t": (1, 224),
}


@pytest.mark.parametrize("name", sorted(LIFETIME_CASES))
def test_a_forward_allocates_and_frees_as_torchvisions_does(name: str) -> None:
    torch.manual_seed(0)
    ref = getattr(torchvision.models, name)().eval()
    ours = compiler.compile(name).eval()
    batch, size = LIFETIME_CASES[name]
    x = torch.randn(batch, 3, size, size)
    theirs, mine = _memory_events(ref, x), _memory_events(ours, x)
    assert len(mine) > 50
    assert sorted(mine) == sorted(theirs)
    live_theirs = list(itertools.accumulate(theirs))
    live_mine = list(itertools.accumulate(mine))
    assert all(m <= t for m, t in zip(live_mine, live_theirs, strict=True))
    # the same program for the allocator, free for free: where torchvision's Python keeps a
    # value longer than its last reader (a local until its function returns, a list freed last
    # item first), the block type's holds say so: DenseNet's concat and bottleneck, the
    # Inception modules' and Fire's branches, ViT's encoder input; and where it loops over a
    # ModuleList, the network's module_lists (MaxViT's blocks)
    assert mine == theirs


@pytest.mark.parametrize("name", ["resnet18", "densenet121"])
def test_building_frees_no_large_block(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # glibc raises its mmap threshold to the largest block freed: a build that freed a 9 MiB
    # temporary put every later weight under that size in the heap instead of pages of its own,
    # unlike torchvision's constructors, and moved where the forwards' activations land
    from compiler.frontend import spec_cache
    from compiler.ops import records

    monkeypatch.setattr(records, "_PROTOTYPES", {})  # every layer configuration built afresh
    spec_cache.clear()
    gc.collect()  # earlier tests' modules, freed now rather than while the build is watched
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        module = compiler.compile(name)
    # an allocation counts on the op that made it; a free outside any op is a "[memory]" event
    events = [e.self_cpu_memory_usage for e in prof.events()]
    weights = sum(p.numel() * p.element_size() for p in module.state_dict().values())
    assert sum(b for b in events if b > 0) >= weights  # the build's allocations were seen
    assert min(events) > -128 * 1024  # glibc's initial mmap threshold
