"""``netc gradflow``: how large the gradient is at each weight layer, input to output.

For each spec: the module from ``compile(seed=...)`` in train mode, one batch of random inputs
and random labels, cross-entropy on the output (flattened per sample), one backward; the L2 norm
of each weight layer's gradient (conv, linear, attention: its weights taken together), in the
order the layers run; a network that returns several values has them flattened side by side.
With ``steps`` the model first takes that many SGD steps on fresh random batches and labels. The
same data for every spec (same seed), so the curves compare the networks, not the draws.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from ..ir.graph import Graph


@dataclass(kw_only=True)
class Flow:
    name: str
    layers: list[str]  # module paths of the weight layers, input to output
    norms: list[float]  # their weight-gradient L2 norms
    steps: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "steps": self.steps,
            "layers": [
                {"path": p, "grad_norm": n} for p, n in zip(self.layers, self.norms, strict=True)
            ],
            "first_over_last": self.first_over_last,
        }

    @property
    def first_over_last(self) -> float:
        """The first weight layer's gradient norm over the last's: how much reaches the input."""
        return self.norms[0] / self.norms[-1] if self.norms[-1] else math.inf


def measure(
    graph: Graph, *, steps: int = 0, batch: int = 8, seed: int = 0, lr: float = 0.01
) -> Flow:
    import torch
    import torch.nn.functional as F

    from .. import compile as build
    from ..ops import OPS

    module = build(graph, seed=seed).train()
    # a module shared by several nodes (share:) is one layer, at its first place: its gradient
    # is the sum over every call
    layers = [n.name for n in graph.nodes.values() if OPS[n.op].weighted and not n.shares]
    weights = [_weights_of(module, p) for p in layers]
    gen = torch.Generator().manual_seed(seed)

    def loss() -> torch.Tensor:
        x = torch.randn(batch, *graph.input_shape, generator=gen)
        got = module(x)
        # several values (feature maps, training outputs beside the output): all of them,
        # flattened side by side, so every branch gets a gradient
        if isinstance(got, dict):  # named outputs: {out: ..., aux: ...}
            got = list(got.values())
        values = got if isinstance(got, (tuple, list)) else [got]
        out = torch.cat([v.reshape(batch, -1) for v in values], dim=1)
        labels = torch.randint(0, out.shape[1], (batch,), generator=gen)
        return F.cross_entropy(out, labels)

    optimiser = torch.optim.SGD(module.parameters(), lr=lr, momentum=0.9)
    for _ in range(steps):
        optimiser.zero_grad()
        loss().backward()
        optimiser.step()
    optimiser.zero_grad()
    loss().backward()
    norms = [_grad_norm(ws) for ws in weights]
    return Flow(name=graph.name, layers=layers, norms=norms, steps=steps)


def _weights_of(module: Any, path: str) -> list[Any]:
    """The weight tensors of the layer at ``path``: a conv's or linear's ``weight``, an
    attention's projection weights (``in_proj_weight``, ``qkv.weight``...), or a bare parameter
    (a layer scale)."""
    try:
        layer = module.get_submodule(path)
    except AttributeError:
        return [module.get_parameter(path)]
    named = list(layer.named_parameters())
    return [p for n, p in named if n.rsplit(".", 1)[-1].endswith("weight")] or [p for _, p in named]


def _grad_norm(weights: list[Any]) -> float:
    """The L2 norm of the gradients of ``weights`` taken together (0 where none reached)."""
    grads = [w.grad for w in weights if w.grad is not None]
    return math.sqrt(sum(float(g.norm()) ** 2 for g in grads))


def plot(flows: list[Flow], path: str) -> None:
    """One line per network: gradient norm (log scale) against relative depth, so networks of
    different depths share the axis; written atomically in the format of the extension."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    from ..atomic import atomic_path

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for f in flows:
        n = len(f.norms)
        depth = [k / max(n - 1, 1) for k in range(n)]
        label = f"{f.name} ({n} weight layers, first/last {f.first_over_last:.2g})"
        ax.plot(depth, f.norms, marker=".", linewidth=1.2, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("relative depth of the weight layer (0: input, 1: output)")
    ax.set_ylabel("L2 norm of the weight gradient")
    steps = sorted({f.steps for f in flows})
    when = "at initialisation" if steps == [0] else f"after {', '.join(map(str, steps))} SGD steps"
    ax.set_title(f"Gradient flow {when}, one batch of random data")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    ext = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=ext)
    plt.close(fig)


def table(flows: list[Flow]) -> str:
    from .summary import aligned

    rows = [("network", "weight layers", "first grad norm", "last grad norm", "first / last")]
    for f in flows:
        rows.append(
            (
                f.name,
                str(len(f.norms)),
                f"{f.norms[0]:.3g}",
                f"{f.norms[-1]:.3g}",
                f"{f.first_over_last:.3g}",
            )
        )
    return "\n".join(aligned(rows, right={1, 2, 3, 4}))
