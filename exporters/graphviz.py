"""Graphviz diagrams drawn from the checked IR (never by tracing torch modules).

- :func:`block_diagram`: one block, in the style of the ResNet paper's Fig. 2 and Fig. 5: weight
  layers labelled "3x3 conv, 64, /2", ReLU, the addition as a circled +, the skip connection as its
  own edge on the right (identity solid, projection dotted and labelled, zero-padding dashed) and
  the channel count on the input ("256-d").
- :func:`network_diagram`: a whole network at three levels of detail: ``stages`` (one node per
  stage, "bottleneck x6 · 1024x14x14", as in the paper's Table 1), ``blocks`` (a node per block in
  a cluster per stage; long stages collapsed around a "⋮ N more" node), ``ops`` (every op,
  clustered by stage and block). Shapes label the edges; long skips are red and dashed.

The ``graphviz`` package only writes DOT text; rendering to svg/png/pdf needs the ``dot`` program.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Iterable
from typing import Any

import graphviz

from compiler.atomic import write_bytes, write_text
from compiler.ir.graph import INPUT, Graph, Node, within
from compiler.ops import OPS, channels, is_tokens

from .options import DOT_TIMEOUT_S, MAX_STATEMENTS

FORMATS = ("svg", "png", "pdf", "dot")
DETAILS = ("stages", "blocks", "ops")
INSTALL_HINT = (
    "rendering needs Graphviz's 'dot' program: apt-get install graphviz (Debian/Ubuntu), "
    "brew install graphviz (macOS), or conda install -c conda-forge graphviz; "
    "'-o FILE.dot' works without it"
)

FONT = "Helvetica"
PNG_DPI = "144"  # sharp enough for slides and READMEs; svg and pdf are vector anyway
WEIGHT = {"shape": "box", "style": "rounded,filled", "fillcolor": "#dbe9f6", "color": "#4a7ab5"}
NORM = {
    "shape": "box",
    "style": "rounded,filled",
    "fillcolor": "#eeeeee",
    "color": "#999999",
    "fontsize": "10",
    "height": "0.3",
}
PLAIN = {"shape": "plaintext", "fontsize": "11", "height": "0.25"}
ADD = {
    "shape": "circle",
    "fontsize": "16",
    "width": "0.32",
    "fixedsize": "true",
    "tooltip": "merge",
    "style": "bold",
}
POOL = {"shape": "box", "style": "rounded,filled", "fillcolor": "#e8f4e4", "color": "#5d9b4f"}
STAGE = {
    "shape": "box",
    "style": "rounded,filled",
    "fillcolor": "#dbe9f6",
    "color": "#4a7ab5",
    "fontsize": "12",
    "margin": "0.2,0.1",
}
LONG_SKIP = {"color": "#c0392b", "fontcolor": "#c0392b", "style": "dashed,bold"}


class RenderError(Exception):
    """Rendering failed (no ``dot`` program, bad format); the message says what to do."""


def _width(shape: tuple[int, ...]) -> str:
    """The paper's label of a block's input or output: its channels ('256-d'; a channels-last
    map's too), or for a token sequence [L, D] its tokens and width ('196 x 768-d')."""
    return f"{shape[0]} x {channels(shape)}-d" if is_tokens(shape) else f"{channels(shape)}-d"


def shape_text(shape: Iterable[int]) -> str:
    return "x".join(map(str, shape))


def op_label(node: Node) -> str:
    return OPS[node.op].label(node.attrs, node.shape)


# the look of each diagram kind an op declares (Op.diagram)
STYLES: dict[str, dict[str, str]] = {
    "weight": WEIGHT,
    "norm": NORM,
    "activation": PLAIN,
    "reshape": PLAIN,
    "merge": ADD,
    "pool": POOL,
}


def _node_style(node: Node) -> dict[str, str]:
    style = dict(STYLES[OPS[node.op].diagram])
    if "tooltip" in style:  # the circled sign alone does not say which merge it is
        style["tooltip"] = f"{OPS[node.op].label(node.attrs, node.shape)} {node.op}"
    return style


def _joins(node: Node) -> bool:
    return OPS[node.op].joins_shortcut


TEXT_ATTRIBUTES = ("label", "xlabel", "headlabel", "taillabel", "tooltip")


def _text(attrs: dict[str, object]) -> dict[str, object]:
    """Text attributes as plain text: a backslash stays a backslash (no \\N, \\G expansion)
    and ``<...>`` stays text (python-graphviz writes such a string as an HTML-like label)."""
    return {
        k: graphviz.escape(v) if k in TEXT_ATTRIBUTES and isinstance(v, str) else v
        for k, v in attrs.items()
    }


class _Digraph(graphviz.Digraph):
    """A Digraph whose every label and tooltip is written as text: names and descriptions come
    from the spec, and a spec must not be able to add markup to a diagram. Subgraphs are of
    the same class (graphviz builds them with ``self.__class__``)."""

    def node(
        self, name: str, label: str | None = None, _attributes: Any = None, **attrs: Any
    ) -> None:
        escaped = None if label is None else graphviz.escape(label)
        super().node(name, escaped, _attributes=_attributes, **_text(attrs))

    def edge(
        self,
        tail_name: str,
        head_name: str,
        label: str | None = None,
        _attributes: Any = None,
        **attrs: Any,
    ) -> None:
        escaped = None if label is None else graphviz.escape(label)
        super().edge(tail_name, head_name, escaped, _attributes=_attributes, **_text(attrs))

    def attr(self, kw: str | None = None, _attributes: Any = None, **attrs: Any) -> None:
        super().attr(kw, _attributes=_attributes, **_text(attrs))


def _digraph(name: str, rankdir: str = "TB") -> graphviz.Digraph:
    dot = _Digraph(name=graphviz.escape(name))
    dot.attr(rankdir=rankdir, fontname=FONT, nodesep="0.25", ranksep="0.3")
    dot.attr("node", fontname=FONT, fontsize="12")
    dot.attr("edge", fontname=FONT, fontsize="9", color="#555555", arrowsize="0.7")
    return dot


def _id(name: str) -> str:
    # the path itself ('a.b' and 'a_b' are two nodes; the quoting is graphviz's), never a ':',
    # which DOT would read as a port
    return "n_" + name


# ---- blocks -----------------------------------------------------------------------------------


def _shortcut_edge(nodes: list[Node]) -> tuple[str, dict[str, str]]:
    """Label and style of a collapsed shortcut path (projection or zero-padding)."""
    labels = " + ".join(op_label(n) for n in nodes)
    if any(n.meta.get("params", 0) for n in nodes):
        return f"projection\n{labels}", {"style": "dotted", "penwidth": "1.6"}
    return f"{labels}", {"style": "dashed"}


def block_diagram(graph: Graph, block: str, title: str | None = None) -> graphviz.Digraph:
    """The paper-style figure of one block instance of ``graph`` (e.g. ``layer1.1``)."""
    members = [n for n in graph.nodes.values() if within(n.block, block)]
    if not members:
        raise ValueError(f"no block '{block}' in {graph.name}")
    names = {n.name for n in members}
    main = [n for n in members if n.shortcut is None]
    short = {n.name: n for n in members if n.shortcut is not None}
    dot = _digraph(f"{graph.name}:{block}")
    if title:
        dot.attr(label=title, labelloc="t", fontsize="14")
    outside = list(dict.fromkeys(i for n in members for i in n.inputs if i not in names))
    entry = outside[0]
    dot.node("x", _width(graph.shape_of(entry)), **{**PLAIN, "fontsize": "13"})
    # any other value the block reads (the U-Net's copied map, a dense layer's earlier outputs)
    tails = {entry: "x", **{n: _id(n) for n in names}}
    for k, other in enumerate(outside[1:], 1):
        tails[other] = f"x{k}"
        label = f"{other}\n{shape_text(graph.shape_of(other))}"
        dot.node(f"x{k}", label, **{**PLAIN, "fontsize": "11"})
    _nested_clusters(dot, graph, block, [n for n in main if n.block == block], main)
    for n in main:
        for i in n.inputs:
            if i in short:
                continue
            if _joins(n) and i == entry:  # identity shortcut into the addition
                dot.edge("x", _id(n.name), label="  identity", tailport="e", headport="e")
            else:
                dot.edge(tails[i], _id(n.name))
        for i in n.inputs:
            if i in short:  # a projection or padding path, drawn as one edge on the right
                path = _chain(short, i)
                label, style = _shortcut_edge(path)
                src = path[0].inputs[0]
                tail = tails[src]
                dot.edge(
                    tail,
                    _id(n.name),
                    label="  " + label.replace("\n", "\n  "),
                    tailport="e",
                    headport="e",
                    **style,
                )
    out = graph.nodes[main[-1].name]
    dot.node("y", _width(out.shape), **{**PLAIN, "fontsize": "13"})
    dot.edge(_id(out.name), "y")
    return dot


def _nested_clusters(
    dot: graphviz.Digraph, graph: Graph, block: str, own: list[Node], nodes: list[Node]
) -> None:
    """The nodes of ``block`` itself, then each block nested in it as a cluster (labelled with
    its path and block type) holding its own nodes and its nested blocks' clusters."""
    for n in own:
        dot.node(_id(n.name), op_label(n), **_node_style(n))
    inner = [b for b in graph.nested_blocks if b.startswith(block + ".")]
    # the blocks directly inside this one: no other nested block lies between
    direct = [b for b in inner if not any(b.startswith(o + ".") for o in inner if o != b)]
    for b in direct:
        with dot.subgraph(name=f"cluster_{_id(b)}") as c:
            c.attr(
                label=f"{b.removeprefix(block + '.')} · {graph.nested_blocks[b]}",
                style="rounded,dashed",
                color="#9bb7d4",
                fontsize="10",
                labeljust="l",
            )
            _nested_clusters(c, graph, b, [n for n in nodes if n.block == b], nodes)


def _chain(short: dict[str, Node], last: str) -> list[Node]:
    path = [short[last]]
    while path[0].inputs and path[0].inputs[0] in short:
        path.insert(0, short[path[0].inputs[0]])
    return path


# ---- networks ---------------------------------------------------------------------------------


def _stage_of(graph: Graph) -> dict[str, str]:
    return {n: st.name for st in graph.stages for n in st.nodes}


def _stage_summary(graph: Graph, st_index: int) -> str:
    st = graph.stages[st_index]
    out = graph.nodes[st.nodes[-1]].shape
    if st.block_type:
        return f"{st.name}\n{st.block_type} x{len(st.blocks)} · {shape_text(out)}"
    labels = [op_label(graph.nodes[n]) for n in st.nodes]
    lines = [" → ".join(labels[k : k + 3]) for k in range(0, len(labels), 3)]
    return "\n".join([st.name, *lines, shape_text(out)])


def network_diagram(graph: Graph, detail: str = "stages", max_blocks: int = 6) -> graphviz.Digraph:
    """The whole network at ``detail`` 'stages', 'blocks' or 'ops'."""
    if detail not in DETAILS:
        raise ValueError(f"detail must be one of {', '.join(DETAILS)}")
    dot = _digraph(graph.name)
    params, macs = graph.params, graph.macs
    deployed = sum(graph.nodes[n].meta["params"] for n in graph.deployed())
    kept = f" ({deployed / 1e6:.2f} M deployed)" if deployed != params else ""
    dot.attr(
        label=f"{graph.name} · {params / 1e6:.2f} M params{kept} · {macs / 1e9:.2f} GMACs",
        labelloc="t",
        fontsize="14",
    )
    dot.node(INPUT, f"input\n{shape_text(graph.input_shape)}", **{**PLAIN, "fontsize": "12"})
    if detail == "stages":
        _stages_level(dot, graph)
    else:
        _fine_level(dot, graph, detail, max_blocks)
    return dot


def _stages_level(dot: graphviz.Digraph, graph: Graph) -> None:
    stage_of = _stage_of(graph)
    for k, st in enumerate(graph.stages):
        dot.node(_id(st.name), _stage_summary(graph, k), **STAGE)
    prev = INPUT
    edges: set[tuple[str, str]] = set()
    skips: list[tuple[str, str]] = []
    for st in graph.stages:
        for n in st.nodes:
            for i in graph.nodes[n].inputs:
                src = stage_of.get(i, INPUT)
                if src != st.name and (src, st.name) not in edges:
                    edges.add((src, st.name))
                    shape = shape_text(graph.shape_of(i))
                    tail = INPUT if src == INPUT else _id(src)
                    if src == prev:
                        dot.edge(tail, _id(st.name), label=f" {shape}")
                    else:
                        dot.edge(tail, _id(st.name), label=f" skip {shape}", **LONG_SKIP)
                        skips.append((src, st.name))
        prev = st.name
    _u_shape(dot, graph, skips)
    ends = [*graph.returns, *(a.node for a in graph.aux)]
    _output(dot, graph, {n: _id(stage_of[n]) for n in ends})


def _u_shape(dot: graphviz.Digraph, graph: Graph, skips: list[tuple[str, str]]) -> None:
    """Nested long skips (each later source feeding an earlier target: an encoder-decoder such as
    the U-Net) are drawn as the paper draws them: the source and target of each skip side by
    side, so the encoder runs down the left, the decoder back up the right and the copies across."""
    order = {st.name: k for k, st in enumerate(graph.stages)}
    pairs = sorted((order[a], order[b], a, b) for a, b in skips if a != INPUT)
    targets = [t for _, t, _, _ in pairs]
    nested = len(pairs) >= 2 and all(x > y for x, y in itertools.pairwise(targets))
    if not nested:
        return
    for _, _, src, dst in pairs:
        with dot.subgraph() as level:
            level.attr(rank="same")
            level.node(_id(src))
            level.node(_id(dst))


def _output(dot: graphviz.Digraph, graph: Graph, tails: dict[str, str]) -> None:
    """The network's output, or each feature map it returns (bold, numbered in order; those
    only eval returns marked), and the outputs only training returns (dashed)."""
    for k, a in enumerate(graph.aux):
        label = f"training only: {a.name}\n{shape_text(graph.shape_of(a.node))}"
        dot.node(f"aux_{k}", label, **{**PLAIN, "fontcolor": "#666666"})
        dot.edge(tails[a.node], f"aux_{k}", style="dashed")
    if not graph.features:
        dot.node("output", f"output\n{shape_text(graph.shape_of(graph.output))}", **PLAIN)
        dot.edge(tails[graph.output], "output")
        return
    for k, f in enumerate(graph.features):
        mode = " (eval only)" if f.eval_only else ""
        label = f"output {k}{mode}: {f.name}\n{shape_text(graph.shape_of(f.node))}"
        dot.node(f"output_{k}", label, **{**PLAIN, "fontname": f"{FONT} Bold"})
        dot.edge(tails[f.node], f"output_{k}", style="bold")


def _fine_level(dot: graphviz.Digraph, graph: Graph, detail: str, max_blocks: int) -> None:
    """Blocks or ops: clusters per stage (and per block for ops)."""
    shown: dict[str, str] = {INPUT: INPUT}  # IR node -> the diagram node that stands for it
    outer = _outer_blocks(graph)
    for st in graph.stages:
        with dot.subgraph(name=f"cluster_{_id(st.name)}") as c:
            out = graph.nodes[st.nodes[-1]].shape
            label = f"{st.name} · {st.block_type} x{len(st.blocks)}" if st.block_type else st.name
            c.attr(
                label=f"{label} · {shape_text(out)}",
                style="rounded",
                color="#9bb7d4",
                fontsize="12",
                labeljust="l",
            )
            hidden = _hidden_blocks(st.blocks, max_blocks)
            dense = st.connect == "dense"
            for n in st.nodes:
                node = graph.nodes[n]
                block = outer.get(node.block or "", node.block)
                if block is None or detail == "ops":
                    target = _id(n)
                    if block is None:
                        c.node(target, op_label(node), **_node_style(node))
                elif block in hidden:
                    target = "more_" + _id(st.name)
                else:
                    target = _id(block)
                shown[n] = target
            if detail == "ops":
                _op_clusters(c, graph, st.nodes)
            else:
                for b in st.blocks:
                    if b not in hidden:
                        last = [n for n in st.nodes if within(graph.nodes[n].block, b)][-1]
                        # a dense stage's wiring is its shortcut: no per-block kind to show
                        kind = "" if dense else "\n" + _kind_text(_block_kind(graph, b))
                        c.node(
                            _id(b),
                            f"{b}\n{st.block_type} · {shape_text(graph.nodes[last].shape)}{kind}",
                            **STAGE,
                        )
                if hidden:
                    c.node(
                        "more_" + _id(st.name),
                        f"⋮  {len(hidden)} more {st.block_type} blocks",
                        **PLAIN,
                    )
    _edges(dot, graph, shown, detail)
    ends = [*graph.returns, *(a.node for a in graph.aux)]
    _output(dot, graph, {n: shown[n] for n in ends})


def _outer_blocks(graph: Graph) -> dict[str, str]:
    """Each nested block's path -> the stage's block it lies in (a network figure draws a
    block with everything nested in it)."""
    tops = {b for st in graph.stages for b in st.blocks}
    out = {}
    for b in graph.nested_blocks:
        parts = b.split(".")
        for k in range(1, len(parts)):
            if ".".join(parts[:k]) in tops:
                out[b] = ".".join(parts[:k])
                break
    return out


def _hidden_blocks(blocks: list[str], max_blocks: int) -> set[str]:
    if len(blocks) <= max_blocks:
        return set()
    keep = max(max_blocks - 1, 2)
    return set(blocks[keep - 1 : -1])  # first keep-1 blocks, "more", the last block


def _block_kind(graph: Graph, block: str) -> tuple[str, str]:
    """The block's shortcut: ('projection' | 'padded' | 'identity' | 'no', its kind names)."""
    members = [n for n in graph.nodes.values() if within(n.block, block)]
    kinds = {n.shortcut for n in members if n.shortcut}
    if kinds:
        params = any(n.meta.get("params", 0) for n in members if n.shortcut)
        what = "projection" if params else "padded"
        return what, ", ".join(sorted(k for k in kinds if k != what))
    # (a join inside a nested block is that block's own: DLA's leaves do not make its tree's)
    own = [n for n in members if n.block == block]
    return ("identity" if any(_joins(n) for n in own) else "no"), ""


def _kind_text(kind: tuple[str, str]) -> str:
    what, names = kind
    return f"{what} shortcut" + (f" ({names})" if names else "")


def _op_clusters(c: graphviz.Digraph, graph: Graph, names: list[str]) -> None:
    blocks: dict[str, list[Node]] = {}
    for n in names:
        node = graph.nodes[n]
        if node.block:
            blocks.setdefault(node.block, []).append(node)
    for b, nodes in blocks.items():
        with c.subgraph(name=f"cluster_{_id(b)}") as bc:
            bc.attr(label=b, style="dashed", color="#bbbbbb", fontsize="10")
            for node in nodes:
                bc.node(_id(node.name), op_label(node), **_node_style(node))


def _is_long_skip(
    graph: Graph,
    node: Node,
    src: str,
    entry: dict[str, str],
    previous: dict[str, str],
    stage_gap: int,
    outer: dict[str, str],
) -> bool:
    """True for an edge that is not the network's default flow: inside a block, anything but its
    own nodes and its input; for a loose node, a source from an earlier stage than the one before,
    or a node of its own stage other than the one just before it."""
    if node.block is not None:
        other = graph.nodes.get(src)
        block = outer.get(node.block, node.block)
        same = other is not None and outer.get(other.block or "", other.block) == block
        return not (same or src == entry[block])
    return stage_gap > 1 or (stage_gap == 0 and src != previous[node.name])


def _edges(dot: graphviz.Digraph, graph: Graph, shown: dict[str, str], detail: str) -> None:
    names = [INPUT, *graph.nodes]
    previous = {n: names[k] for k, n in enumerate(names[1:])}
    stage_of = _stage_of(graph)
    order = {st.name: k for k, st in enumerate(graph.stages)}
    dense = {st.name: st.connect == "dense" for st in graph.stages}
    entry: dict[str, str] = {}
    outer = _outer_blocks(graph)
    for node in graph.nodes.values():
        block = outer.get(node.block or "", node.block)
        if block is not None and block not in entry:
            entry[block] = node.inputs[0]
    drawn: set[tuple[str, str]] = set()
    for node in graph.nodes.values():
        head = shown[node.name]
        for i in node.inputs:
            tail = shown[i]
            if tail == head or (tail, head) in drawn:
                continue
            drawn.add((tail, head))
            shape = shape_text(graph.shape_of(i))
            gap = order[stage_of[node.name]] - order.get(stage_of.get(i, ""), -1)
            source = graph.nodes.get(i)
            reads_in = (
                source is None
                or node.block is None
                or not within(source.block, outer.get(node.block, node.block))
            )
            if dense.get(stage_of[node.name]) and reads_in:
                if tail == shown[previous[node.name]]:
                    dot.edge(tail, head, label=f" {shape}")
                else:  # a dense stage's wiring: every earlier value, drawn light
                    dot.edge(tail, head, color="#8a8a8a")
            elif _is_long_skip(graph, node, i, entry, previous, gap, outer):
                dot.edge(tail, head, label=f" skip {shape}", **LONG_SKIP)
            elif node.shortcut or (_joins(node) and detail == "ops"):
                dot.edge(tail, head, style="dotted" if node.shortcut else "solid")
            else:
                dot.edge(tail, head, label=f" {shape}")
        # (a join inside a nested block is that block's business, not the stage block's skip)
        if detail == "blocks" and node.block and node.block not in outer and _joins(node):
            _block_skip(dot, graph, node, shown, entry[node.block])


def _block_skip(
    dot: graphviz.Digraph, graph: Graph, add: Node, shown: dict[str, str], entry: str
) -> None:
    """At block level, each block's shortcut as its own edge, styled by kind (paper Fig. 3)."""
    if add.block is None or shown[entry] == shown[add.name]:
        return
    what, _ = _block_kind(graph, add.block)
    style = {
        "projection": {"style": "dotted", "penwidth": "1.6"},
        "padded": {"style": "dashed"},
    }.get(what, {})
    dot.edge(
        shown[entry],
        shown[add.name],
        tailport="e",
        headport="e",
        fontsize="8",
        label=" " + what,
        **style,
    )


# ---- output -----------------------------------------------------------------------------------


def render(
    dot: graphviz.Digraph,
    path: str | os.PathLike[str],
    fmt: str | None = None,
    timeout: float = DOT_TIMEOUT_S,
) -> str:
    """Write ``dot`` to ``path`` atomically, in the format its extension names. Layout time
    grows faster than the drawing (DenseNet-201 at --detail ops: 3,562 statements, 200 s), so
    ``dot`` gets at most ``timeout`` seconds and a drawing of more than MAX_STATEMENTS lines is
    refused before it starts."""
    path = os.fspath(path)
    fmt = fmt or os.path.splitext(path)[1].lstrip(".").lower()
    if fmt not in FORMATS:
        raise RenderError(f"cannot write '{fmt}': use one of {', '.join(FORMATS)}")
    if fmt == "dot":
        write_text(path, dot.source)
        return path
    if len(dot.body) > MAX_STATEMENTS:
        raise RenderError(
            f"the drawing has {len(dot.body):,} nodes and edges; Graphviz lays out at most "
            f"{MAX_STATEMENTS:,} here: draw it with --detail blocks or stages, or write .dot"
        )
    if fmt == "png":
        dot = dot.copy()
        dot.attr(dpi=PNG_DPI)
    data = _run_dot(dot.source, fmt, timeout)
    write_bytes(path, data)
    return path


def _run_dot(source: str, fmt: str, timeout: float) -> bytes:
    """Graphviz's ``dot -T<fmt>`` on ``source``, killed after ``timeout`` seconds."""
    exe = shutil.which("dot")
    if exe is None:
        raise RenderError(INSTALL_HINT)
    try:
        done = subprocess.run(
            [exe, f"-T{fmt}"], input=source.encode(), capture_output=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise RenderError(
            f"dot ran past {timeout:g} s laying out the drawing and was stopped: draw it with "
            "--detail blocks or stages, write .dot, or raise --dot-timeout"
        ) from None
    if done.returncode != 0:
        raise RenderError(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout
