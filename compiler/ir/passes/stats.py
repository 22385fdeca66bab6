"""Parameters, multiply-accumulates and activation memory, per node, per stage and in total.

MACs count conv and linear layers only (what torchvision's GFLOPS and the ResNet paper's FLOPs
mean); activation memory is the float32 bytes of every node's output for one sample.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ...ops import OPS
from ..graph import Graph, Totals

BYTES_PER_VALUE = 4  # float32


@dataclass(kw_only=True)
class Row:
    """One line of the summary table."""

    stage: str
    blocks: int
    block_type: str
    output_shape: list[int]
    params: int
    macs: int
    activation_bytes: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def run(graph: Graph) -> list[Row]:
    """Annotate each node with params/macs/act and return one row per stage."""
    calls: set[tuple[object, ...]] = set()  # the calls that pieces share, counted once
    for node in graph.nodes.values():
        op = OPS[node.op]
        ins = [graph.shape_of(i) for i in node.inputs]
        # a node that runs another's module (share:) adds none of its own
        node.meta["params"] = 0 if node.shares else op.params(node.attrs, ins, node.shape)
        node.meta["macs"] = op.macs(node.attrs, ins, node.shape)
        if op.pieces_share_macs:  # one call computes every piece: its first piece counts it
            call = (
                node.op,
                tuple(node.inputs),
                *sorted((k, v) for k, v in node.attrs.items() if k != "index"),
            )
            node.meta["macs"] = 0 if call in calls else node.meta["macs"]
            calls.add(call)
        node.meta["act"] = math.prod(node.shape) * BYTES_PER_VALUE
    rows = []
    for st in graph.stages:
        nodes = [graph.nodes[n] for n in st.nodes]
        rows.append(
            Row(
                stage=st.name,
                blocks=len(st.blocks),
                block_type=st.block_type or "-",
                output_shape=list(nodes[-1].shape) if nodes else [],
                params=sum(n.meta["params"] for n in nodes),
                macs=sum(n.meta["macs"] for n in nodes),
                activation_bytes=sum(n.meta["act"] for n in nodes),
            )
        )
    # MACs are an inference forward's: the training-only outputs (aux classifiers) do not run
    skipped = set(graph.nodes) - set(graph.deployed())
    graph.totals = Totals(
        params=sum(r.params for r in rows),
        macs=sum(r.macs for r in rows) - sum(graph.nodes[n].meta["macs"] for n in skipped),
        activation_bytes=sum(r.activation_bytes for r in rows),
        rows=rows,
    )
    return rows
