"""``netc diff A B``: two specs compared as networks, not as text.

Per stage: blocks, block type, the first block's parameters (widths, strides) and the shortcut
kind, before and after; the counts before, after and the delta; the nodes added and removed by
module path; and whether B can load A's checkpoint, from the state_dict keys and shapes of both
modules built on the meta device (no memory, no weights).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..ir.graph import Graph

# a stage's block parameters shown whether or not they change (the others: where they do)
_SHOWN_PARAMS = ("width", "out", "stride", "groups", "expand_ratio", "kernel", "group_width")
# what the expansion gives every block beside its parameters: no change of the spec's
_GIVEN = ("input_count", "index", "repeat", "block_index", "block_count")


@dataclass(kw_only=True)
class StageChange:
    stage: str
    before: dict[str, Any] | None  # None: the stage is new
    after: dict[str, Any] | None  # None: the stage is gone


@dataclass(kw_only=True)
class Diff:
    a: str
    b: str
    stages: list[StageChange] = field(default_factory=list)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (A, B)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # same path, another op/attrs/shape
    keys_match: int = 0
    keys_shape_differs: dict[str, tuple[list[int], list[int]]] = field(default_factory=dict)
    keys_new: list[str] = field(default_factory=list)
    keys_gone: list[str] = field(default_factory=list)
    # the module paths whose parameters do not train (``freeze:``), in A and in B
    frozen: tuple[list[str], list[str]] = ([], [])
    # what each returns (``outputs:``, ``aux_outputs:``, ``eval_only:``), in A and in B
    returns: tuple[list[str], list[str]] = ([], [])

    @property
    def equal(self) -> bool:
        return (
            not (self.stages or self.added or self.removed or self.changed)
            and all(x == y for x, y in self.counts.values())
            and self.frozen[0] == self.frozen[1]
            and self.returns[0] == self.returns[1]
        )

    @property
    def loads(self) -> bool:
        """Every entry of A's checkpoint fits B (B may have new ones, left as initialised)."""
        return not (self.keys_shape_differs or self.keys_gone)

    @property
    def loads_strictly(self) -> bool:
        return self.loads and not self.keys_new

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "equal": self.equal,
            "stages": [
                {"stage": s.stage, "before": s.before, "after": s.after} for s in self.stages
            ],
            "counts": {k: {"a": x, "b": y, "delta": y - x} for k, (x, y) in self.counts.items()},
            "nodes": {"added": self.added, "removed": self.removed, "changed": self.changed},
            "frozen": {"a": self.frozen[0], "b": self.frozen[1]},
            "returns": {"a": self.returns[0], "b": self.returns[1]},
            "checkpoint": {
                "every_key_of_a_loads": self.loads,
                "b_loads_a_strictly": self.loads_strictly,
                "match": self.keys_match,
                "shape_differs": {
                    k: {"a": x, "b": y} for k, (x, y) in self.keys_shape_differs.items()
                },
                "new_in_b": self.keys_new,
                "gone_from_a": self.keys_gone,
            },
        }

    def text(self) -> str:
        lines = [f"{self.a} -> {self.b}"]
        if self.equal:
            lines.append("  the same network")
        for s in self.stages:
            before, after = _stage_text(s.before, s.after), _stage_text(s.after, s.before)
            lines.append(f"  stage {s.stage}: {before} -> {after}")
        for name, (x, y) in self.counts.items():
            if x != y:
                lines.append(f"  {name}: {x:,} -> {y:,} ({y - x:+,})")
        limit = 8
        for what, names in (
            ("added", self.added),
            ("removed", self.removed),
            ("changed", self.changed),
        ):
            if names:
                more = f", ... ({len(names)} in all)" if len(names) > limit else ""
                lines.append(f"  nodes {what}: {', '.join(names[:limit])}{more}")
        if self.frozen[0] != self.frozen[1]:
            before, after = (", ".join(f) or "none" for f in self.frozen)
            lines.append(f"  not trained (freeze): {before} -> {after}")
        if self.returns[0] != self.returns[1]:
            before, after = (", ".join(r) for r in self.returns)
            lines.append(f"  returns: {before} -> {after}")
        counts = (
            f"{self.keys_match:,} keys match, {len(self.keys_shape_differs):,} differ in shape, "
            f"{len(self.keys_new):,} new, {len(self.keys_gone):,} gone"
        )
        if self.loads_strictly:
            verdict = f"{self.b} loads {self.a}'s checkpoint strictly"
        elif self.loads:
            verdict = (
                f"every key of {self.a}'s checkpoint loads into {self.b}; its new keys keep "
                "their initial values (--weights ... --partial)"
            )
        elif self.keys_match:
            verdict = f"{self.a}'s checkpoint loads into {self.b} only in part (--partial)"
        else:
            verdict = f"{self.a}'s checkpoint does not load into {self.b}: no key matches"
        lines.append(f"  checkpoint: {verdict} ({counts})")
        for k, (old, new) in list(self.keys_shape_differs.items())[:limit]:
            lines.append(f"    shape differs: {k}: {old} -> {new}")
        return "\n".join(lines)


def _stage_text(row: dict[str, Any] | None, other: dict[str, Any] | None = None) -> str:
    """A stage as ``3 x bottleneck, width 64, stride 1, ...``: the usual parameters, and any
    other whose value ``other`` (the stage on the other side) does not share."""
    if row is None:
        return "(none)"
    parts = [f"{row['blocks']} x {row['block_type']}" if row["block_type"] else "nodes"]
    theirs = other["params"] if other is not None else {}
    parts += [
        f"{k} {v}"
        for k, v in row["params"].items()
        if k in _SHOWN_PARAMS or (other is not None and (k not in theirs or theirs[k] != v))
    ]
    if row.get("shortcut"):
        parts.append(f"shortcut {row['shortcut']}")
    if row.get("output_shape"):
        parts.append(f"output {row['output_shape']}")
    return ", ".join(parts)


def _stage_rows(graph: Graph) -> dict[str, dict[str, Any]]:
    rows = {}
    for st in graph.stages:
        first = graph.block_params.get(st.blocks[0], {}) if st.blocks else {}
        rows[st.name] = {
            "blocks": len(st.blocks),
            "block_type": st.block_type,
            "params": {
                k: v
                for k, v in first.items()
                if k not in _GIVEN and not k.startswith("in_channels")
            },
            "shortcut": st.shortcut if st.block_type else None,
            "output_shape": list(graph.shape_of(st.nodes[-1])) if st.nodes else None,
        }
    return rows


def _state_shapes(graph: Graph) -> dict[str, list[int]]:
    import torch

    from ..lowering.lower import lower

    with torch.device("meta"):
        module = lower(graph)
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def diff(a: Graph, b: Graph) -> Diff:
    out = Diff(a=a.name, b=b.name)
    rows_a, rows_b = _stage_rows(a), _stage_rows(b)
    for name in [*rows_a, *(n for n in rows_b if n not in rows_a)]:
        before, after = rows_a.get(name), rows_b.get(name)
        if before != after:
            out.stages.append(StageChange(stage=name, before=before, after=after))
    out.counts = {
        "params": (a.params, b.params),
        "MACs": (a.macs, b.macs),
        "activation bytes": (a.activation_bytes, b.activation_bytes),
    }
    out.added = [n for n in b.nodes if n not in a.nodes]
    out.removed = [n for n in a.nodes if n not in b.nodes]
    out.changed = [
        n
        for n, node in b.nodes.items()
        if n in a.nodes
        and (node.op, node.attrs, node.shape, node.shares)
        != (a.nodes[n].op, a.nodes[n].attrs, a.nodes[n].shape, a.nodes[n].shares)
    ]
    out.frozen = (list(a.frozen), list(b.frozen))
    out.returns = (_returns(a), _returns(b))
    keys_a, keys_b = _state_shapes(a), _state_shapes(b)
    out.keys_match = sum(1 for k, s in keys_a.items() if keys_b.get(k) == s)
    out.keys_shape_differs = {
        k: (s, keys_b[k]) for k, s in keys_a.items() if k in keys_b and keys_b[k] != s
    }
    out.keys_new = [k for k in keys_b if k not in keys_a]
    out.keys_gone = [k for k in keys_a if k not in keys_b]
    return out


def _returns(g: Graph) -> list[str]:
    """What ``g`` returns, an entry a value: ``pred: model.22.pred (eval only)``."""
    if not g.features:
        return [g.output, *(f"{a.name} (training only)" for a in g.aux)]
    return [
        (f"{f.key}: " if f.key else "") + f.name + (" (eval only)" if f.eval_only else "")
        for f in g.features
    ]
