"""Expansion: a validated NetworkSpec -> an IR Graph with every shape known.

Stages are unrolled block by block, in order, with shape inference as each node is made: a block's
shortcut rule (project or not) depends on the shape of its input, as in torchvision's
``_make_layer``. Parameter expressions are evaluated here, where their names are bound:

- network ``params`` are visible in the stem, head and stage parameter values;
- a block sees only its own parameters, its ``let`` values, ``in_channels`` (the channels C of a
  map, the width D of a token sequence [L, D], the last dimension of a channels-last [H, W, C]),
  ``index`` (in its stage), ``repeat`` (the blocks of its stage), ``block_index`` and
  ``block_count`` (over the whole network: stochastic depth rules);
- a shortcut rule sees ``in_channels``, ``out``, ``stride`` and ``dilation``.

References: ``in: name`` looks in the block first, then in the whole network by module path
(``layer1.0.conv1``), block path (``layer1.0``, its output) or stage name (``layer1``). Only names
defined earlier resolve, so a graph can never contain a cycle. In a ``connect: dense`` stage a
block's ``input`` is every value the block reads (the stage's input and each earlier block's
output); a flat block's nodes are named by the next free number of their container.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from typing import Any, NoReturn

from ..errors import Diagnostics, Loc, SpecError, suffix_hint
from ..ir.graph import INPUT, Graph, Node, Origin, Stage
from ..ir.passes import prune, shapes
from ..ops import DENSE_JOIN, OPS, REQUIRED, Attr, Shape, ShapeError, channels, input_shape
from . import attribute_values, block_nodes, outputs, parts
from .caps import Caps, Tally
from .context import BLOCK_INPUTS, Context, Failed, Local
from .expr import ExprError, Value, evaluate
from .module_lists import frozen_paths, module_lists
from .nodes import NESTED_OP, SHORTCUT_OP, NodeSpec, loop_bodies
from .sharing import share_module, share_modules
from .spec import STAGE_RESERVED, BlockType, NetworkSpec, StageSpec

MAX_REPEAT = 10_000
# what a template's {expression} may give besides a whole number: a name, or a module path
_PATH_PIECE = re.compile(r"[A-Za-z0-9_.-]*")
# an `in:` entry that names every node of a loop: "bns.{i} for i in range(scale - 1)"
# (with Python's filter too: "input.{k} for k in range(input_count) if k > 0")
_COMPREHENSION = re.compile(
    r"(.*\S)\s+for\s+([A-Za-z_]\w*)\s+in\s+range\((.*?)\)(?:\s+if\s+(.*\S))?\s*"
)


class Expander:
    """Builds the Graph; all errors go to ``diags`` and are raised together at the end."""

    def __init__(self, spec: NetworkSpec, caps: Caps | None = None) -> None:
        self.spec = spec
        self.tally = Tally(caps or Caps())  # a cap refuses by the node that passes it
        self.diags = Diagnostics()
        self.nodes: dict[str, Node] = {}
        self.added: list[str] = []  # node names in the order made (a stage slices its own)
        self.shapes: dict[str, Shape | None] = {INPUT: input_shape(spec.input)}
        self.scope: dict[str, str] = {INPUT: INPUT}  # network-wide names -> node names
        self.later = {e.name for _, es in spec.sections for e in es}
        self.stages: list[Stage] = []
        self.identity_blocks: dict[str, str] = {}  # block path -> kind, where no projection
        self.op_defaults = spec.op_defaults
        self.net_env: dict[str, Value] = {}
        self.blocks_done = 0  # block instances made so far
        self.block_count = 0  # block instances in the whole network
        self.block_params: dict[str, dict[str, Value]] = {}
        self.module_orders: dict[str, list[str]] = {}
        self.numbers: dict[str, int] = {}  # flat containers -> their next member's number
        self.nested_blocks: dict[str, str] = {}  # a block node's path -> its block type
        self.loaded: dict[str, BlockType | None] = {}  # block types block nodes named, read once
        # the block nodes whose type an expression chooses, with where the first was made
        self.offered: dict[int, tuple[NodeSpec, Context]] = {}
        self.loop_lists: dict[str, None] = {}  # block types' module lists, by path, in order
        self.part_lists: list[str] = []  # the parts' module lists, under their paths
        self.idle: set[str] = set()  # the parts' nodes held but never run

    # ---- values ---------------------------------------------------------------------------

    def value(self, raw: Any, env: dict[str, Value], loc: Loc, ctx: Context, what: str) -> Value:
        """A literal, or an expression evaluated in ``env``."""
        if not isinstance(raw, str):
            return raw
        try:
            return evaluate(raw, env)
        except ExprError as e:
            note = e.note or (
                'inside {...} a comma ends the value: quote the expression, like "max(a, b)"'
                if "never closed" in e.message
                else ""
            )
            self.error(ctx, loc.shifted(e.col), f"{what}: {e.message}", note)
            raise Failed from None

    def typed(
        self, raw: Any, attr: Attr, env: dict[str, Value], loc: Loc, ctx: Context, what: str
    ) -> Any:
        """An attribute value, evaluated and checked against the op's schema."""
        return attribute_values.typed(self, raw, attr, env, loc, ctx, what)

    def error(self, ctx: Context, loc: Loc, message: str, *notes: str) -> None:
        if ctx.anchor is not None and loc.file != ctx.anchor.file:
            # the mistake shows inside a block file, but the user wrote the stage: point there
            notes = (*notes, f"in the block type, at {loc}")
            loc = ctx.anchor
        self.diags.error(loc, ctx.where + message, *notes)

    # ---- nodes ----------------------------------------------------------------------------

    def resolve(
        self, name: str, local: Local, loc: Loc, ctx: Context, pending: set[str]
    ) -> str | None:
        if name in local:
            return local[name]
        if name in self.scope:
            return self.scope[name]
        if ctx.prefix and ctx.prefix + name in self.scope:
            # a node inside one of the block's block nodes, by its path in the block
            # (HRNet's next module reads "0.fuse_layers.1", a branch of the module before)
            return self.scope[ctx.prefix + name]
        if name in pending or name in self.later:
            self.error(
                ctx,
                loc,
                f"'{name}' is used before it is defined",
                "inputs must come earlier in the network, so cycles are impossible",
            )
        else:
            visible = [*local, *self.scope]
            self.error(ctx, loc, f"unknown node '{name}'{suffix_hint(name, visible)}")
        raise Failed

    def add_node(self, node: Node, ctx: Context) -> None:
        if node.name in self.nodes:
            self.error(ctx, node.loc, f"duplicate node name '{node.name}'")
            raise Failed
        in_shapes = [self.shapes[i] for i in node.inputs]
        if problem := self.tally.reads(len(node.inputs)):
            self.refuse(node.loc, *problem)
        self.nodes[node.name] = node
        self.added.append(node.name)
        self.scope.setdefault(node.name, node.name)  # any node by module path: layer1.0.conv1
        self.shapes[node.name] = None
        if any(s is None for s in in_shapes):
            return  # an earlier error; do not pile on
        try:
            shape = self.shapes[node.name] = shapes.infer(node, in_shapes)  # type: ignore[arg-type]
            if problem := self.tally.made(node, in_shapes, shape):  # type: ignore[arg-type]
                self.refuse(node.loc, *problem)
        except ShapeError as e:
            loc = node.attr_locs.get(e.attr, node.loc) if e.attr else node.loc
            note = e.note
            if OPS[node.op].joins_shortcut and node.block in self.identity_blocks:
                note = (
                    f"the shortcut here is the identity (kind "
                    f"'{self.identity_blocks[node.block]}'); with a stride or a change of "
                    "channels it must be a projection (shortcut: B)"
                )
            self.error(ctx, loc, f"node '{node.name}' ({node.op}): {e.message}", note)
            raise Failed from None

    def refuse(self, loc: Loc, message: str, note: str) -> NoReturn:
        """Stop at once: a cap is passed, and going on would spend what the cap bounds."""
        self.diags.error(loc, message, note)
        raise SpecError(self.diags.items)

    def make(
        self,
        ns: NodeSpec,
        env: dict[str, Value],
        local: Local,
        prev: str | None,
        ctx: Context,
        pending: set[str],
    ) -> str | None:
        """Make one node (or a shortcut rule's nodes); returns the name its output has, or None
        for a shortcut that its kind removes ('none')."""
        off = ns.when is not None and not self.value(
            ns.when, env, ns.when_loc, ctx, f"'when' of '{ns.name}'"
        )
        # a node switched off passes its first input on, and reads no other: an optional input
        # may name a node that exists only sometimes
        written = list(zip(ns.inputs or [], ns.in_locs, strict=False))[: 1 if off else None]
        names: list[str | None] = []
        for n, loc in written:
            for one in self.references(n, env, local, loc, ctx, f"'in' of '{ns.name}'"):
                resolved = self.resolve(one, local, loc, ctx, pending)
                names.extend(ctx.inputs if resolved == BLOCK_INPUTS else [resolved])
        if ns.inputs is not None:
            inputs = names
        else:
            inputs = list(ctx.inputs) if prev == BLOCK_INPUTS else [prev]
        if off:
            return inputs[0] if inputs else prev
        if ns.like is not None:  # the node whose size it takes: its last input
            loc = ns.like_loc or ns.loc
            like = self.references(ns.like, env, local, loc, ctx, f"'like' of '{ns.name}'")
            inputs.extend(self.resolve(n, local, loc, ctx, pending) for n in like)
        if ns.op == NESTED_OP:
            return block_nodes.nested(self, ns, env, inputs, ctx)
        if ns.op == SHORTCUT_OP:
            project_in = ns.attrs.get("project_in")
            proj = (
                inputs[0]
                if project_in is None
                else self.resolve(str(project_in), local, ns.attr_locs["project_in"], ctx, pending)
            )
            if inputs[0] is None or proj is None:
                self.error(ctx, ns.loc, f"shortcut '{ns.name}' reads a removed shortcut")
                raise Failed
            return self.shortcut(ns, env, inputs[0], proj, ctx)
        present = [i for i in inputs if i is not None]
        op_name = self.op_name(ns, env, ctx)
        op = OPS[op_name]
        if op.joins_shortcut and len(present) == 1 < len(inputs):
            return present[0]  # the join of a removed shortcut ('none'): the plain network
        problem = op.arity_error(len(present))
        if problem:
            note = (
                "in a dense stage a block's input is every earlier value: concat them first"
                if ctx.inputs and len(present) > 1
                else "list the inputs with in: [a, b]"
            )
            self.error(ctx, ns.loc, f"'{ns.name}': {problem}", note)
            raise Failed
        attrs = {}
        defaults = self.op_defaults.get(op_name, {})
        for key, spec in op.attrs.items():
            if key in ns.attrs:
                raw, loc, scope = ns.attrs[key], ns.attr_locs.get(key, ns.loc), env
            elif key in defaults:  # the network's default for this op: network names only
                (raw, loc), scope = defaults[key], self.net_env
            else:
                raw, loc, scope = spec.default, ns.loc, env
            attrs[key] = self.typed(raw, spec, scope, loc, ctx, f"'{key}' of '{ns.name}'")
        node = Node(
            name=self.next_member(ctx.numbered)
            if ctx.numbered
            else ctx.prefix + self.rendered(ns.name, env, ns.loc, ctx),
            op=op_name,
            inputs=present,
            attrs=attrs,
            loc=ns.loc,
            stage=ctx.stage,
            block=ctx.block,
        )
        node.attr_locs = ns.attr_locs
        holds: list[str] = []
        for h, loc in zip(ns.holds, ns.holds_locs, strict=True):
            if "{" in h and h not in local:
                h = self.rendered(h, env, loc, ctx, f"'holds' of '{ns.name}'")
            value = self.resolve(h, local, loc, ctx, pending)
            if value is None or value not in self.nodes or self.nodes[value].block != ctx.block:
                self.error(
                    ctx,
                    loc,
                    f"'{ns.name}' holds '{h}', which is not a node of its block",
                    "holds keeps values of the node's own block (of the stem and head, for "
                    "theirs) until the node has run",
                )
                raise Failed
            holds.append(value)
        node.holds, node.holds_locs = holds, list(ns.holds_locs)
        self.add_node(node, ctx)
        if ns.share is not None:  # the module of an earlier node (SPPF's one max pool)
            loc = ns.share_loc or ns.loc
            target = ns.share if "{" not in ns.share else self.rendered(ns.share, env, loc, ctx)
            owner = self.resolve(target, local, loc, ctx, pending)
            share_module(self, node, owner, loc, ctx)
        return node.name

    def references(
        self, n: str, env: dict[str, Value], local: Local, loc: Loc, ctx: Context, what: str
    ) -> list[str]:
        """The names one entry of ``in:`` stands for: itself; a template of the block's names
        (the U-Net's ``down{level}``); or every name a loop made, ``"bns.{i} for i in
        range(scale - 1)"`` (Res2Net's pieces into one concat), those an ``if`` keeps where it
        has one (``"input.{k} for k in range(input_count) if k > 0"``: a block node's extra
        inputs, none or more)."""
        loop = None if n in local else _COMPREHENSION.fullmatch(n)
        if loop is None:
            return [n] if "{" not in n or n in local else [self.rendered(n, env, loc, ctx, what)]
        template, index, raw, condition = loop.groups()
        count = self.typed(raw, Attr(kind="int", min=0), env, loc, ctx, f"the range of {what}")
        if count > MAX_REPEAT:
            self.error(ctx, loc, f"{what} ranges over {count} names, more than {MAX_REPEAT}")
            raise Failed
        names = []
        for k in range(count):
            here = {**env, index: k}
            if condition is None or self.value(condition, here, loc, ctx, f"the 'if' of {what}"):
                names.append(self.rendered(template, here, loc, ctx, what))
        return names

    def made(
        self,
        body: list[NodeSpec],
        env: dict[str, Value],
        local: Local,
        prev: str | None,
        ctx: Context,
        pending: set[str],
    ) -> str | None:
        """Make a block's node, or a loop's nodes (one node's ``for: {i: count}``, or a loop
        body's, all of them for i = 0, then for i = 1, ...), entering each under its name in
        ``local``; returns the last one's output."""
        first = body[0]
        if first.loop is None:
            out = self.make(first, env, local, prev, ctx, pending)
            local[first.name] = out
            return out
        index, raw = first.loop
        loc = first.loop_loc or first.loc
        what = f"'for' of '{first.loop_body or first.name}'"
        count = self.typed(raw, Attr(kind="int", min=0), env, loc, ctx, what)
        if count > MAX_REPEAT:
            self.error(ctx, loc, f"{what} loops {count} times, more than {MAX_REPEAT}")
            raise Failed
        out = prev
        for k in range(count):
            here = {**env, index: k}
            for ns in body:
                name = self.rendered(ns.name, here, ns.loc, ctx)
                out = self.make(ns, here, local, out, ctx, pending)
                local[name] = out
        return out

    def next_member(self, container: str) -> str:
        """The next numbered member of a flat block's container (``features.7``): numbering goes
        on from the members the container already has."""
        if container not in self.numbers:
            head = container + "."
            taken = [
                int(part)
                for name in self.nodes
                if name.startswith(head) and (part := name[len(head) :].split(".")[0]).isdigit()
            ]
            self.numbers[container] = max(taken, default=-1) + 1
        number = self.numbers[container]
        self.numbers[container] = number + 1
        return f"{container}.{number}"

    def op_name(self, ns: NodeSpec, env: dict[str, Value], ctx: Context) -> str:
        """The node's op: its name, or ``{expression}`` choosing one by the block's parameters
        (MobileNetV3's ``op: "{act}"``, where its ``let`` picks the name by the row's ``hs``),
        whose attributes are checked here, once the op is known."""
        if not (ns.op.startswith("{") and ns.op.endswith("}")):
            return ns.op
        loc = ns.attr_locs.get("op", ns.loc)
        name = self.value(ns.op[1:-1], env, loc, ctx, f"'op' of '{ns.name}'")
        if not isinstance(name, str) or name not in OPS:
            hint = suffix_hint(name, OPS) if isinstance(name, str) else ""
            self.error(ctx, loc, f"'op' of '{ns.name}' gives {name!r}, not an op{hint}")
            raise Failed
        allowed = OPS[name].attrs
        for key in ns.attrs:
            if key not in allowed:
                self.error(
                    ctx,
                    ns.attr_locs.get(key, ns.loc),
                    f"op '{name}' (of '{ns.name}') has no attribute '{key}'"
                    f"{suffix_hint(key, allowed)}",
                )
                raise Failed
        for key, spec in allowed.items():
            if spec.default is REQUIRED and key not in ns.attrs:
                self.error(ctx, ns.loc, f"node '{ns.name}' ({name}) needs '{key}'")
                raise Failed
        return name

    def shortcut(
        self, ns: NodeSpec, env: dict[str, Value], source: str, proj: str, ctx: Context
    ) -> str | None:
        """Expand a block's ``op: shortcut`` node into the kind chosen for this stage.

        ``source`` feeds the identity; ``proj`` feeds a projection (pre-activation blocks project
        the pre-activated input, ``project_in: relu1``, but add the raw input when identity).
        """
        kind = ns.attrs.get("kind") or ctx.shortcut_kind
        rule = self.spec.shortcut_types.get(kind)
        if rule is None:
            self.error(
                ctx,
                ns.attr_locs["kind"],
                f"unknown shortcut kind '{kind}'{suffix_hint(kind, self.spec.shortcut_types)}",
            )
            raise Failed
        if rule.remove:
            return None
        in_shape = self.shapes[source]
        if in_shape is None:
            raise Failed
        int_attr = Attr(kind="int", min=1)
        senv: dict[str, Value] = {
            "in_channels": in_shape[0],
            "stride": 1,
            "dilation": 1,
            "out": in_shape[0],
        }
        for key in ("out", "stride", "dilation"):
            if key in ns.attrs:
                senv[key] = self.typed(
                    ns.attrs[key],
                    int_attr,
                    env,
                    ns.attr_locs[key],
                    ctx,
                    f"'{key}' of shortcut '{ns.name}'",
                )
        sctx = dataclasses.replace(ctx, anchor=ctx.anchor or ns.loc, shortcut_kind=kind)
        if not self.value(rule.when, senv, rule.loc, sctx, f"'when' of shortcut kind '{kind}'"):
            if ctx.block:
                self.identity_blocks[ctx.block] = kind
            return source
        local: Local = {INPUT: proj}
        out: str | None = proj
        for rn in rule.nodes:
            out = self.make(rn, senv, local, out, sctx, set())
            local[rn.name] = out
            if out in self.nodes:
                self.nodes[out].shortcut = kind
        return out

    # ---- blocks and stages ----------------------------------------------------------------

    def block_env(
        self,
        bt: BlockType,
        st: StageSpec,
        index: int,
        in_ch: int,
        ctx: Context,
        net_env: dict[str, Value],
        repeat: int,
    ) -> dict[str, Value]:
        given: dict[str, tuple[Any, Loc]] = {}
        for key, raw in st.params.items():
            if key not in bt.params:
                # a stage's own keys are candidates too: 'repeats' is most likely 'repeat'
                hint = suffix_hint(key, [*bt.params, *STAGE_RESERVED])
                self.error(
                    _top(ctx),
                    st.key_locs.get(key, st.locs[key]),
                    f"block '{bt.name}' has no parameter '{key}'{hint}",
                    "parameters: " + ", ".join(bt.params),
                )
                raise Failed
            if index == 0 or key not in bt.first_only:
                given[key] = (raw, st.locs[key])
        if index == 0:
            for key, raw in st.first.items():
                if key not in bt.params:
                    self.error(
                        _top(ctx),
                        st.locs[f"first.{key}"],
                        f"block '{bt.name}' has no parameter '{key}'{suffix_hint(key, bt.params)}",
                    )
                    raise Failed
                given[key] = (raw, st.locs[f"first.{key}"])
        env: dict[str, Value] = {
            "in_channels": in_ch,
            "index": index,
            "repeat": repeat,  # the blocks in this stage
            "block_index": self.blocks_done,  # over the whole network, from 0
            "block_count": self.block_count,
        }
        for key, default in bt.params.items():
            if key in given:
                raw, loc = given[key]
                env[key] = self.value(raw, net_env, loc, _top(ctx), f"parameter '{key}'")
            elif default is REQUIRED:
                self.error(_top(ctx), st.loc, f"block '{bt.name}' needs parameter '{key}'")
                raise Failed
            else:
                env[key] = self.value(default, env, bt.param_locs[key], ctx, f"default of '{key}'")
        for key, raw in bt.let.items():
            env[key] = self.value(raw, env, bt.let_locs[key], ctx, f"'{key}'")
        return env

    def stage(self, st: StageSpec, section: str, prev: str, net_env: dict[str, Value]) -> str:
        top = Context(prefix="", stage=st.name, block=None, where=f"stage '{st.name}': ")
        bt = self.spec.block_types[st.block]
        repeat = self.typed(
            st.repeat,
            Attr(kind="int", min=1),
            net_env,
            st.locs.get("repeat", st.loc),
            top,
            "'repeat'",
        )
        if repeat > MAX_REPEAT:
            self.error(top, st.locs["repeat"], f"'repeat' is {repeat}; the cap is {MAX_REPEAT}")
            raise Failed
        info = Stage(
            name=st.name,
            section=section,
            block_type=bt.name,
            blocks=[],
            nodes=[],
            # a block type without a shortcut node has none (ViT's encoder block adds its own)
            shortcut=(st.shortcut or self.spec.shortcut)
            if any(n.op == SHORTCUT_OP for n in bt.nodes)
            else None,
            connect=st.connect,
        )
        extra: list[str] = []  # the first block's inputs after its first (a stage's `in:` list)
        if st.input is not None:  # the stage reads another value than the entry before it
            sources = st.input if isinstance(st.input, list) else [st.input]
            loc = st.locs["in"]  # (names may be templates and loops of the network's params)
            names = [r for n in sources for r in self.references(n, net_env, {}, loc, top, "'in'")]
            if not names:
                self.error(top, loc, "'in' names nothing (its loops and conditions leave no name)")
                raise Failed
            found = [self.resolve(n, {}, loc, top, set()) or prev for n in names]
            prev, extra = found[0], found[1:]
        first_node = len(self.added)
        dense = st.connect == "dense"
        if dense and bt.flat:
            self.error(
                top,
                st.locs["connect"],
                f"block '{bt.name}' is flat (not a module): a dense stage needs blocks that "
                "are modules",
            )
            raise Failed
        reads = [prev]  # a dense stage's values so far: its input, then each block's output
        for i in range(repeat):
            path = st.name if bt.flat and st.path is None else self.block_path(st, i, top, net_env)
            if not bt.flat and (path in self.block_params or path in self.nodes):
                self.error(
                    top,
                    st.locs.get("path", st.loc),
                    f"block {i} would be '{path}', which an earlier block or node already is",
                    'number the blocks on from the ones before, like "features.{block_index + 1}"',
                )
                raise Failed
            ctx = Context(
                prefix="" if bt.flat else path + ".",
                stage=st.name,
                block=None if bt.flat else path,
                where=f"stage '{st.name}' block {i}: ",
                anchor=st.loc,
                shortcut_kind=info.shortcut or "B",
                numbered=path if bt.flat else "",
                inputs=tuple(reads) if dense else (),
            )
            in_shapes = [self.shapes[r] for r in (reads if dense else [prev])]
            known = [shape for shape in in_shapes if shape is not None]
            if len(known) < len(in_shapes):
                break
            in_ch = sum(channels(shape) for shape in known)
            env = self.block_env(bt, st, i, in_ch, ctx, net_env, repeat)
            more = extra if i == 0 else []
            env["input_count"] = len(reads) if dense else 1 + len(more)
            for k, value in enumerate(more, start=1):  # each further input's channels
                shape = self.shapes[value]
                if shape is not None:
                    env[f"in_channels_{k}"] = channels(shape)
            local: Local = {INPUT: BLOCK_INPUTS if dense else prev}
            if not dense:  # input.0 is input, then a stage's `in:` list gives input.1, ...
                local.update({f"input.{k}": v for k, v in enumerate([prev, *more])})
            before = len(self.added)
            out = self.block_body(bt, env, local, BLOCK_INPUTS if dense else prev, ctx)
            if st.share is not None:
                share_modules(self, st, path, self.added[before:], ctx)
            if not bt.flat:  # a flat block is no module: it has no path of its own
                self.block_made(bt, path, env, out)
                info.blocks.append(path)
            self.blocks_done += 1
            prev = out
            reads.append(out)
        if dense and len(reads) == repeat + 1:
            prev = self.dense_output(st, reads, info.blocks, top)
        info.nodes = self.added[first_node:]
        self.stages.append(info)
        return prev

    def block_body(
        self, bt: BlockType, env: dict[str, Value], local: Local, prev: str | None, ctx: Context
    ) -> str:
        """Make one block's nodes (its loops, its block nodes); returns its output."""
        out = prev
        pending = {n.name for n in bt.nodes}
        for body in loop_bodies(bt.nodes):
            # the first error in a block is reported; the rest of the stage would repeat it
            out = self.made(body, env, local, out, ctx, pending)
            pending.difference_update(ns.name for ns in body)
        if bt.output:
            out = self.resolve(bt.output, local, bt.loc, ctx, set())
        if out is None or out == BLOCK_INPUTS:
            self.error(ctx, bt.loc, f"block '{bt.name}' ends in a removed shortcut")
            raise Failed
        return out

    def block_made(self, bt: BlockType, path: str, env: dict[str, Value], out: str) -> None:
        """Record a block instance (a module of its type at ``path``) once its nodes are made."""
        self.block_params[path] = dict(env)
        self.loop_lists.update({f"{path}.{name}": None for name in bt.module_lists})
        if bt.module_order:
            self.module_orders[bt.name] = bt.module_order
        self.scope[path] = out

    def dense_output(self, st: StageSpec, reads: list[str], blocks: list[str], top: Context) -> str:
        """A dense stage's output: the concat of its input and every block's output, a node
        beside the blocks (``features.denseblock1.concat``), as torchvision's ``_DenseBlock``
        ends with ``torch.cat(features, 1)``."""
        parent = blocks[0].rpartition(".")[0] or st.name
        node = Node(
            name=f"{parent}.concat",
            op=DENSE_JOIN,
            inputs=reads,
            attrs={"dim": 0},
            loc=st.loc,
            stage=st.name,
            block=None,
        )
        self.add_node(node, top)
        return node.name

    def block_path(self, st: StageSpec, index: int, ctx: Context, net_env: dict[str, Value]) -> str:
        """Block ``index``'s module path: ``<stage>.<index>``, or the stage's ``path`` template
        with each ``{expression}`` evaluated (MobileNet's ``features.{block_index + 1}`` numbers
        blocks across stage rows; RegNet's ``trunk_output.block1.block1-{index}``)."""
        if st.path is None:
            return f"{st.name}.{index}"
        env = {
            **net_env,
            "index": index,
            "block_index": self.blocks_done,
            "block_count": self.block_count,
        }
        return self.rendered(st.path, env, st.locs["path"], ctx, "'path'")

    def rendered(
        self, template: str, env: dict[str, Value], loc: Loc, ctx: Context, what: str = ""
    ) -> str:
        """A module path with each ``{expression}`` replaced by its value, a whole number or a
        name (a str of module path characters): a stage's ``path``, a node name that depends on
        the block's parameters (MobileNet's ``conv.{1 if expand else 0}.0``: torchvision
        numbers the layers a block has), or an ``in:`` that a parameter names (``{skip}``)."""
        if "{" not in template and "}" not in template:
            return template
        what = what or f"name '{template}'"
        if not template.strip("{}"):  # (a name of braces alone gives nothing)
            self.error(ctx, loc, f"{what} gives no module path")
            raise Failed

        def one(m: re.Match[str]) -> str:
            value = self.value(m.group(1), env, loc, ctx, what)
            # a piece of a path ('.0', '' too): the whole is checked below
            if isinstance(value, str) and _PATH_PIECE.fullmatch(value):
                return value
            if not isinstance(value, int) or isinstance(value, bool):
                self.error(
                    ctx,
                    loc,
                    f"{what}: {{{m.group(1)}}} must give a whole number or a name, got {value!r}",
                )
                raise Failed
            return str(value)

        path = re.sub(r"\{([^{}]*)\}", one, template)
        if any(not p or p.strip() != p or "{" in p or "}" in p for p in path.split(".")):
            self.error(ctx, loc, f"{what} gives '{path}', not a module path")
            raise Failed
        return path

    def run(self) -> Graph:
        spec = self.spec
        top = Context(prefix="", stage="", block=None, where="")
        net_env = self.net_env
        for key, raw in spec.params.items():
            with contextlib.suppress(Failed):
                net_env[key] = self.value(
                    raw, net_env, spec.param_locs[key], top, f"parameter '{key}'"
                )
        if self.diags:
            raise SpecError(self.diags.items)
        for part in spec.parts:
            parts.embed(self, part)
        self.block_count = self.count_blocks()
        prev = INPUT
        for section, entries in spec.sections:
            loose: Stage | None = None
            for entry in entries:
                self.later.discard(entry.name)
                try:
                    if isinstance(entry, StageSpec):
                        loose = None
                        prev = self.stage(entry, section, prev, net_env)
                    else:
                        if loose is None:
                            # among stages, loose nodes are a row named by the first of them
                            # (a segmentation network's resize 'out'); the stem's and head's
                            # by their section
                            name = entry.name if section == "stages" else section
                            loose = Stage(
                                name=name, section=section, block_type=None, blocks=[], nodes=[]
                            )
                            self.stages.append(loose)
                        ctx = Context(
                            prefix="",
                            stage=section,
                            block=None,
                            where="",
                            shortcut_kind=spec.shortcut,
                        )
                        before = len(self.nodes)
                        made = self.make(entry, net_env, {}, prev, ctx, set())
                        if made is None:
                            self.error(ctx, entry.loc, f"'{entry.name}' reads a removed shortcut")
                            raise Failed
                        prev = made
                        if len(self.nodes) > before:  # not a node switched off by 'when'
                            loose.nodes.append(prev)
                except Failed:
                    prev = entry.name
                    self.shapes[prev] = None
                self.scope[entry.name] = prev
        block_nodes.unoffered(self)
        self.diags.raise_if_any()
        output = prev
        if spec.output:
            output = self.resolve(spec.output, {}, spec.loc("output"), top, set()) or output
            self.diags.raise_if_any()
        features = outputs.eval_only(self, top, outputs.features(self, top))
        aux = outputs.features(self, top, "aux_outputs")
        if aux and features:
            self.error(
                top,
                spec.loc("aux_outputs"),
                "a network returns feature maps (outputs) or has training outputs "
                "(aux_outputs), not both",
            )
            self.diags.raise_if_any()
        _name_loose_stages(self.stages)
        kept = {b for st in self.stages for b in st.blocks}
        graph = Graph(
            name=spec.name,
            input_shape=input_shape(spec.input),
            sizes=spec.sizes,
            parts={p.path: parts.info(p) for p in spec.parts},
            idle=self.idle,
            nodes=self.nodes,
            output=output,
            stages=[s for s in self.stages if s.nodes],
            description=spec.description,
            family=spec.family,
            features=features,
            aux=aux,
            block_params={
                b: p for b, p in self.block_params.items() if b in kept or b in self.nested_blocks
            },
            nested_blocks=self.nested_blocks,
            module_orders=self.module_orders,
            origin=Origin(
                file=spec.file,
                name_loc=spec.loc("name"),
                zero_init_residual=spec.zero_init_residual,
                data=spec.source.data,
                weights_from=spec.source.data.get("weights_from") or "",
                published_weights=tuple(spec.source.data.get("published_weights") or ()),
            ),
        )
        graph = prune.keep_what_feeds_the_outputs(graph)
        graph.module_lists = module_lists(spec, graph.nodes, graph.block_params, self.diags)
        graph.frozen = frozen_paths(spec, graph.nodes, self.diags)
        self.diags.raise_if_any()
        if self.loop_lists:  # a block type's lists, where its instance has members in them
            heads = {
                ".".join(parts[:k])
                for n in graph.nodes
                for parts in [n.split(".")]
                for k in range(1, len(parts))
            }
            graph.module_lists += [p for p in self.loop_lists if p in heads]
        graph.module_lists += [
            p for p in self.part_lists if any(n.startswith(p + ".") for n in graph.nodes)
        ]
        return graph

    def count_blocks(self) -> int:
        """How many block instances the stages make (a repeat that does not evaluate counts as
        one here; the stage reports it)."""
        total = 0
        for _, entries in self.spec.sections:
            for e in entries:
                if isinstance(e, StageSpec):
                    try:
                        value = (
                            evaluate(e.repeat, self.net_env)
                            if isinstance(e.repeat, str)
                            else e.repeat
                        )
                    except ExprError:
                        value = 1
                    total += value if isinstance(value, int) and value > 0 else 1
        return total


def _top(ctx: Context) -> Context:
    """The same place, with errors located in the network file (not the block file)."""
    return dataclasses.replace(ctx, anchor=None)


def _name_loose_stages(stages: list[Stage]) -> None:
    # several runs of loose nodes in one section get numbered names: head, head.2, ...
    seen: dict[str, int] = {}
    for st in stages:
        if st.block_type is None:
            seen[st.name] = seen.get(st.name, 0) + 1
            if seen[st.name] > 1:
                st.name = f"{st.name}.{seen[st.name]}"


def expand(spec: NetworkSpec, caps: Caps | None = None) -> Graph:
    """Expand a validated spec into a shaped IR graph; raises SpecError with every problem."""
    return Expander(spec, caps).run()
