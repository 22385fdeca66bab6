"""The IR: a flat, ordered graph of primitive-op nodes named by their module paths.

Every node's inputs come earlier in ``Graph.nodes`` (the expansion only allows backward
references), so a single pass in order is a topological walk. Passes annotate ``Node.meta``
(``shape``, ``params``, ``macs``, ``act``) instead of rebuilding nodes. :func:`dump` gives the
readable text form that golden tests compare.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import Loc
from ..ops import Shape
from .size_rule import SizeRule

INPUT = "input"  # the name of the network's input in node inputs
MODULE_PART = re.compile(r"[A-Za-z0-9_-]+")  # one part of a module path ('block1-0')


@dataclass(kw_only=True)
class Node:
    """One primitive op instance. ``name`` is its module path (``layer1.0.downsample.0``)."""

    name: str
    op: str
    inputs: list[str]
    attrs: dict[str, Any]
    loc: Loc
    stage: str  # the stem/stages/head entry it belongs to ('stem' and 'head' for loose nodes)
    block: str | None = None  # the block instance path, e.g. 'layer1.0'
    shortcut: str | None = None  # the shortcut kind, for nodes a shortcut rule created
    # the node whose module this one runs (the spec's ``share:``): it has none of its own, and
    # its weights are that node's (a detection head's tower called on each level)
    shares: str | None = None
    # values of its block the node keeps alive until it has run (the spec's ``holds:``), and
    # where the spec names each
    holds: list[str] = field(default_factory=list)
    holds_locs: list[Loc] = field(default_factory=list)
    attr_locs: dict[str, Loc] = field(default_factory=dict)  # where the spec sets each attribute
    meta: dict[str, Any] = field(default_factory=dict)  # what passes annotate: shape, counts

    @property
    def shape(self) -> Shape:
        return self.meta["shape"]


def within(block: str | None, outer: str) -> bool:
    """Whether a node of block ``block`` lies in block ``outer``: it is that block, or a block
    nested in it (``level3.tree1`` lies in ``level3``)."""
    return block is not None and (block == outer or block.startswith(outer + "."))


@dataclass(kw_only=True)
class Stage:
    """A row of the summary table: a stage of repeated blocks, or the stem or head nodes."""

    name: str
    section: str  # 'stem', 'stages' or 'head'
    block_type: str | None
    blocks: list[str]  # block instance paths
    nodes: list[str]  # node names, in order
    shortcut: str | None = None
    connect: str = "chain"  # 'dense': each block reads every earlier one (DenseNet)


@dataclass(frozen=True, kw_only=True)
class Origin:
    """Where a graph came from: what the front end hands the back ends besides the nodes."""

    file: str
    name_loc: Loc  # the spec's 'name:' line, where whole-network errors point
    zero_init_residual: bool  # the spec's own setting; compile() may override it
    data: Mapping[str, object]  # the resolved spec data (after extends and overrides), hashed
    weights_from: str = ""  # the torchvision model whose published weights it takes ('' : name)
    # the --set overrides torchvision's builder applies for its published weights
    published_weights: tuple[str, ...] = ()

    @property
    def spec_sha256(self) -> str:
        """sha256 of the resolved spec data as canonical JSON (computed when asked: only the
        ONNX metadata needs it, not `netc check`)."""
        text = json.dumps(self.data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class Totals:
    """The network's counts, set by :func:`compiler.ir.passes.stats.run`."""

    params: int
    macs: int
    activation_bytes: int  # float32 bytes of every node's output, for one sample
    rows: list[Any]  # stats.Row per stage: the summary table


@dataclass(frozen=True, kw_only=True)
class Feature:
    """One of the feature maps a backbone returns (``outputs: [layer2, layer3]``)."""

    name: str  # as the spec names it: a stage, a block path or a node
    node: str  # the IR node whose value it is
    key: str = ""  # its name in the returned dict (`outputs: {out: classifier}`); '': a list
    eval_only: bool = False  # returned in eval mode only (the spec's ``eval_only:``)


@dataclass(frozen=True, kw_only=True)
class PartInfo:
    """A network held as a part (the spec's ``parts:``): where, and whose weights it takes."""

    path: str  # its module path here ('backbone')
    module: str  # the part's own module that the path stands for ('features'; '': the whole)
    weights_from: str  # the torchvision model whose published weights fit it ('resnet50')


@dataclass(kw_only=True)
class Graph:
    """A whole network after expansion. ``origin`` is None for graphs not built from a spec
    file; ``totals`` is None until the stats pass has run."""

    name: str
    input_shape: Shape
    nodes: dict[str, Node]
    output: str
    stages: list[Stage]
    description: str = ""
    family: str = ""
    origin: Origin | None = None
    totals: Totals | None = None
    # the input sides the network accepts besides ``input_shape``'s (None: that size only)
    sizes: SizeRule | None = None
    # the networks it holds as parts, by module path
    parts: dict[str, PartInfo] = field(default_factory=dict)
    # nodes whose modules it holds but never runs (a part's idle values): in the state_dict and
    # the parameter count, not in the forward, the MACs or an ONNX file
    idle: set[str] = field(default_factory=set)
    # set when the network returns feature maps (a list, in this order) instead of ``output``
    features: list[Feature] = field(default_factory=list)
    # each block instance's parameters as evaluated (its params, in_channels, index, lets)
    block_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    # values returned beside the output in training mode only (auxiliary classifiers)
    aux: list[Feature] = field(default_factory=list)
    # loaded with the spec's settings for torchvision's published weights (load_spec's flag)
    published_weights: bool = False
    # block nodes' instances (a block inside a block): path -> block type; their nodes' ``block``
    # is the innermost block's path
    nested_blocks: dict[str, str] = field(default_factory=dict)
    # block type -> the order its modules are registered in, where not the order they run
    module_orders: dict[str, list[str]] = field(default_factory=dict)
    # containers whose children the enclosing module calls one by one (an nn.ModuleList), so
    # each child's input is freed once that child has run, not when the last one has
    module_lists: list[str] = field(default_factory=list)
    # module paths whose parameters are built with requires_grad=False (the spec's ``freeze:``:
    # torchvision's detectors freeze a pretrained backbone's first stages)
    frozen: list[str] = field(default_factory=list)
    # what the lowering derives from the structure alone, kept for a graph that nothing changes
    # any more (compiler.frontend.spec_cache sets it to {}); None: derived afresh each time
    # (not copied by dataclasses.replace: a changed copy derives its own)
    memo: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def deployed(self) -> list[str]:
        """The nodes an eval-mode forward runs: all of them but those only the training-mode
        ``aux`` outputs need, in order."""
        if not self.aux and not self.idle:
            return list(self.nodes)
        needed = feeding(self.nodes, self.returns)
        return [n for n in self.nodes if n in needed]

    @property
    def output_keys(self) -> list[str]:
        """The returned dict's keys, in order; [] where the network returns a tensor or a list."""
        return [f.key for f in self.features] if any(f.key for f in self.features) else []

    @property
    def trained(self) -> list[int] | None:
        """The positions of the outputs a training forward returns, where some are eval-only
        (``eval_only:``); None: a training forward returns them all."""
        if not any(f.eval_only for f in self.features):
            return None
        return [k for k, f in enumerate(self.features) if not f.eval_only]

    @property
    def returns(self) -> list[str]:
        """The IR nodes whose values the network returns, in order."""
        return [f.node for f in self.features] if self.features else [self.output]

    @property
    def counted(self) -> Totals:
        """The totals; an error for a graph the stats pass has not seen."""
        if self.totals is None:
            raise ValueError(f"graph '{self.name}' has no counts: run compiler.ir.passes.stats")
        return self.totals

    @property
    def params(self) -> int:
        return self.counted.params

    @property
    def macs(self) -> int:
        return self.counted.macs

    @property
    def activation_bytes(self) -> int:
        return self.counted.activation_bytes

    def block_types(self) -> dict[str, str]:
        """The block type of each block instance path (``layer1.0`` -> ``bottleneck``)."""
        made = {b: s.block_type for s in self.stages if s.block_type for b in s.blocks}
        return {**made, **self.nested_blocks}

    def shape_of(self, name: str) -> Shape:
        return self.input_shape if name == INPUT else self.nodes[name].shape

    def consumers(self) -> dict[str, list[str]]:
        """For each node (and the input), the nodes that read it."""
        out: dict[str, list[str]] = {INPUT: [], **{n: [] for n in self.nodes}}
        for node in self.nodes.values():
            for i in node.inputs:
                out[i].append(node.name)
        return out


def _fmt(value: Any) -> str:
    return (
        repr(value)
        if isinstance(value, str)
        else str(value).lower()
        if isinstance(value, bool)
        else str(value)
    )


def dump(graph: Graph) -> str:
    """A readable, stable text form of the graph: one line per node with its shape."""
    lines = [f"graph {graph.name}(input: {list(graph.input_shape)}) -> %{graph.output}"]
    lines += [f"  module list {path}" for path in graph.module_lists]
    for n in graph.nodes.values():
        attrs = ", ".join(f"{k}={_fmt(v)}" for k, v in n.attrs.items())
        args = ", ".join(f"%{i}" for i in n.inputs)
        shape = "x".join(map(str, n.meta.get("shape", ()))) or "?"
        held = "".join(f" holds %{h}" for h in n.holds)
        lines.append(f"  %{n.name} = {n.op}({args}) {{{attrs}}} : {shape}{held}")
    return "\n".join(lines) + "\n"


def feeding(nodes: dict[str, Node], wanted: list[str]) -> set[str]:
    """The nodes that ``wanted`` depend on, themselves included (the input excluded)."""
    needed: set[str] = set()
    todo = list(wanted)
    while todo:
        name = todo.pop()
        if name != INPUT and name not in needed:
            needed.add(name)
            todo.extend(nodes[name].inputs)
    return needed
