"""The caps on what a spec may make netc build, applied while the network is expanded.

A cap refuses the network as soon as it is passed, by the node that passes it: a dense stage of
10,000 blocks is quadratic in its edges and parameters, and checking the totals only once the
whole network was expanded took minutes and gigabytes. The running totals count every node made,
before a backbone's unused head is pruned, so they bound the final figures from above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..ir.graph import Node
from ..ir.passes.stats import BYTES_PER_VALUE
from ..ops import OPS, Shape

DEFAULT_MAX_NODES = 200_000  # a ResNet-1001 has ~3,000; beyond this a spec is a mistake
INPUTS_PER_NODE = 5  # inputs read, summed over nodes, per node of the cap: DenseNet-201 reads ~2

Problem = tuple[str, str]  # (message, note)


@dataclass(frozen=True, kw_only=True)
class Caps:
    """What expansion may make before it refuses (compiler.frontend.load.Limits gives the
    user's)."""

    max_nodes: int = DEFAULT_MAX_NODES
    max_params: int = 2_000_000_000  # 8 GB of float32 weights
    max_activation_bytes: int = 8 << 30  # 8 GiB of outputs per sample


class Tally:
    """Running totals of the nodes made so far, each checked against its cap."""

    def __init__(self, caps: Caps) -> None:
        self.caps = caps
        self.nodes = self.params = self.act_bytes = self.inputs_read = 0

    def reads(self, count: int) -> Problem | None:
        """A node that reads ``count`` inputs is about to be made."""
        self.nodes += 1
        if self.nodes > self.caps.max_nodes:
            return (
                f"the network has more than {self.caps.max_nodes:,} nodes",
                "raise the cap with --max-nodes if this is intended",
            )
        self.inputs_read += count
        most = self.caps.max_nodes * INPUTS_PER_NODE
        if self.inputs_read > most:
            return (
                f"the network's nodes read more than {most:,} inputs in all",
                "raise the cap with --max-nodes if this is intended",
            )
        return None

    def made(self, node: Node, in_shapes: list[Shape], shape: Shape) -> Problem | None:
        """``node`` is made, its output shaped: the figures passes/stats will count."""
        self.params += OPS[node.op].params(node.attrs, in_shapes, shape)
        self.act_bytes += math.prod(shape) * BYTES_PER_VALUE
        if self.params > self.caps.max_params:
            cap = f"{self.caps.max_params:,}"
            return (
                f"the network has more than {cap} parameters by node '{node.name}'; the cap is "
                f"{cap}",
                "raise it with --max-params if this is intended",
            )
        if self.act_bytes > self.caps.max_activation_bytes:
            cap = f"{self.caps.max_activation_bytes / 2**20:,.0f} MiB"
            return (
                f"one sample needs more than {cap} of activations by node '{node.name}'; the "
                f"cap is {cap}",
                "raise it with --max-activation-mb if this is intended",
            )
        return None
