"""Checked nodes: one node entry of a spec (its op, attributes, inputs, holds, loop) checked and
located, and the checker that walks a spec's mappings for :mod:`compiler.frontend.spec`."""

from __future__ import annotations

import keyword
from dataclasses import dataclass, field
from typing import Any

from ..errors import Diagnostic, Diagnostics, Loc, suffix_hint
from ..ops import OPS, REQUIRED, plugins
from ..pysource import is_attribute
from .expr import ExprError, check_syntax
from .source import Path, Source

# every node's own keys; the rest are attributes
NODE_KEYS = ("op", "in", "like", "when", "holds", "for", "share")
SECTIONS = ("stem", "stages", "head")
SHORTCUT_OP = "shortcut"  # pseudo-op inside block types: expands to the chosen shortcut kind
# pseudo-op of a block node inside a block type (`tree1: {block: dla_tree, levels: 2}`): an
# instance of another block type (or of its own: recursion), its other keys that type's params
NESTED_OP = "block"
# the nodes of a nested block's nested block's ... : deeper is refused, as a recursion that
# never ends would otherwise be stopped only by the caps on nodes
MAX_NESTING = 32
SHORTCUT_RULE_ATTRS = ("out", "stride", "dilation")  # what a shortcut kind's rule reads
# a shortcut node's attributes: the rule's, the projection's input and a fixed kind
SHORTCUT_ATTRS = (*SHORTCUT_RULE_ATTRS, "project_in", "kind")

Raw = Any  # a literal or an expression string, evaluated during expansion


@dataclass(kw_only=True)
class NodeSpec:
    """One node as written: ``name: {op: conv, out: 64, kernel: 3, in: x}``."""

    name: str
    op: str
    inputs: list[str] | None  # None: the previous node
    attrs: dict[str, Raw]
    when: Raw
    loc: Loc  # of the name
    attr_locs: dict[str, Loc]
    in_locs: list[Loc]
    when_loc: Loc
    # nodes of the same block whose memory is released only after this node has run, as a
    # Python local lives until its function returns (torchvision's DenseNet layer keeps its
    # concat until its bottleneck conv returns); changes no value, only when memory is freed
    holds: list[str] = field(default_factory=list)
    holds_locs: list[Loc] = field(default_factory=list)
    # `for: {i: count}`: the node is made count times, i = 0 .. count - 1, its name a template
    # of i ('convs.{i}'); in a block type only
    loop: tuple[str, Raw] | None = None
    loop_loc: Loc | None = None
    # the label of the loop body it belongs to (`name: {for: ..., nodes: {...}}`): the body's
    # nodes are made in order for i = 0, then all again for i = 1, ...
    loop_body: str = ""
    # a block node's block type (op NESTED_OP): a name, or "{expression}" giving one
    block: str = ""
    # `like: name`: one more input after `in:`'s (or the previous node), whose size the op
    # takes (a resize to another node's height and width)
    like: str | None = None
    like_loc: Loc | None = None
    # `share: node`: an earlier node whose module this one runs (SPPF's one max pool, run thrice)
    share: str | None = None
    share_loc: Loc | None = None


class Checker:
    """Validates one Source; collects all errors in ``diags``."""

    def __init__(self, src: Source, diags: Diagnostics) -> None:
        self.src, self.diags = src, diags
        # numbers written out of their range: reported beside the file's other errors when it
        # has some (the expansion, which would report them, does not run then)
        self.out_of_range: list[Diagnostic] = []

    def names(self, data: Any, path: Path, what: str) -> None:
        """Each key of the mapping at ``path`` names a parameter: an ASCII identifier, no
        keyword (expressions read it, and generated source writes it as an argument)."""
        for key in data if isinstance(data, dict) else ():
            if not is_attribute(key):
                self.diags.error(
                    self.src.key_loc((*path, key)),
                    f"{what} {key!r} must be a name: ASCII letters, digits and '_', not "
                    "starting with a digit, and no Python keyword",
                )

    def mapping(
        self,
        data: Any,
        path: Path,
        schema: dict[str, tuple[tuple[type, ...], str, bool]],
        what: str,
    ) -> dict[str, Any]:
        """Check keys against a schema: unknown keys, missing keys, wrong types."""
        if not isinstance(data, dict):
            self.diags.error(self.src.loc(path), f"{what} must be a mapping")
            return {}
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key not in schema:
                self.diags.error(
                    self.src.key_loc((*path, key)),
                    f"unknown key '{key}' in {what}{suffix_hint(key, schema)}",
                )
                continue
            types, expect, _ = schema[key]
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                self.diags.error(
                    self.src.loc((*path, key)), f"'{key}' must be {expect}, got {describe(value)}"
                )
                continue
            out[key] = value
        for key, (_, _, required) in schema.items():
            if required and key not in data:
                self.diags.error(self.src.loc(path), f"{what} has no '{key}'")
        return out

    def nodes(self, data: dict[str, Any], path: Path, what: str) -> list[NodeSpec]:
        out = []
        for name, entry in data.items():
            if isinstance(entry, dict) and "nodes" in entry and "op" not in entry:
                out.extend(self.body(name, entry, (*path, name), what))
                continue
            node = self.entry(name, entry, (*path, name), what)
            if node:
                out.append(node)
        return out

    def body(self, label: str, data: dict[str, Any], path: Path, what: str) -> list[NodeSpec]:
        """A loop body, ``label: {for: {i: count}, nodes: {...}}``: its nodes, each looped."""
        for key in (k for k in data if k not in ("for", "nodes")):
            self.diags.error(
                self.src.key_loc((*path, key)),
                f"loop '{label}' has no '{key}'{suffix_hint(key, ['for', 'nodes'])}",
                "a loop body is for: {i: count} and nodes: {...}",
            )
        loop = self.loop(label, data, path, what, named=False)
        inner = data["nodes"]
        if loop is None or not isinstance(inner, dict) or not inner:
            if loop is not None:
                self.diags.error(self.src.loc((*path, "nodes")), f"loop '{label}' has no nodes")
            return []
        out = []
        for name, entry in inner.items():
            if isinstance(entry, dict) and "for" in entry:
                self.diags.error(
                    self.src.key_loc((*path, "nodes", name, "for")),
                    f"node '{name}' is in loop '{label}' already: loops do not nest",
                )
                continue
            node = self.entry(name, entry, (*path, "nodes", name), what)
            if node is None:
                continue
            if "{" not in name:
                self.diags.error(
                    self.src.key_loc((*path, "nodes", name)),
                    f"node '{name}' is made by loop '{label}', so its name must hold the "
                    f"index, like '{name}.{{{loop[0]}}}'",
                )
                continue
            node.loop, node.loop_loc, node.loop_body = loop, self.src.loc((*path, "for")), label
            out.append(node)
        return out

    def entry(self, name: str, data: Any, path: Path, what: str) -> NodeSpec | None:
        """One node entry: an op's node, or a block node (``block:`` instead of ``op:``)."""
        if isinstance(data, dict) and "block" in data and "op" not in data:
            return self.nested(name, data, path, what)
        return self.node(name, data, path, what)

    def nested(self, name: str, data: dict[str, Any], path: Path, what: str) -> NodeSpec | None:
        """A block node, ``tree1: {block: dla_tree, in: [input, project], levels: 2}``: its
        other keys are the block type's parameters, checked once the expansion knows the type
        (its name may be an expression of the enclosing block's parameters)."""
        block = data["block"]
        if not what.startswith("block '"):
            self.diags.error(
                self.src.key_loc((*path, "block")),
                f"a block node is written in a block type, not in {what}",
                "in a network, a stage row makes blocks: stages: {name: {block: ..., repeat: 1}}",
            )
            return None
        dynamic = isinstance(block, str) and block.startswith("{") and block.endswith("}")
        if not isinstance(block, str) or not (dynamic or block.isidentifier()):
            self.diags.error(
                self.src.loc((*path, "block")),
                f"'block' of node '{name}' must be a block type's name (letters, digits, _) "
                'or "{expression}" giving one',
            )
            return None
        for key in ("holds", "like", "after", "before", "share"):
            if key in data:
                self.diags.error(
                    self.src.key_loc((*path, key)),
                    f"block node '{name}' cannot take '{key}'",
                    *(
                        ["a stage row's share: runs a whole block's modules"]
                        if key == "share"
                        else []
                    ),
                )
        params = {k: v for k, v in data.items() if k not in (*NODE_KEYS, "block")}
        self.names(params, path, "parameter")
        inputs, in_locs = self.inputs(data.get("in"), (*path, "in"))
        loop = self.loop(name, data, path, what)
        return NodeSpec(
            name=name,
            op=NESTED_OP,
            block=block,
            inputs=inputs,
            attrs=params,
            when=data.get("when"),
            loc=self.src.key_loc(path),
            attr_locs={
                **{k: self.src.loc((*path, k)) for k in params},
                "block": self.src.loc((*path, "block")),
            },
            in_locs=in_locs,
            when_loc=self.src.loc((*path, "when")),
            loop=loop,
            loop_loc=self.src.loc((*path, "for")) if loop else None,
        )

    def node(self, name: str, data: Any, path: Path, what: str) -> NodeSpec | None:
        loc = self.src.key_loc(path)
        if not isinstance(data, dict):
            self.diags.error(
                self.src.loc(path),
                f"node '{name}' in {what} must be a mapping like {{op: conv, out: 64, kernel: 3}}",
            )
            return None
        op = data.get("op")
        if not isinstance(op, str):
            self.diags.error(
                loc,
                f"node '{name}' in {what} has no 'op'"
                if op is None
                else f"'op' of node '{name}' must be an op name",
                *(
                    ["a block inside this one is written {block: <type>, <param>: <value>}"]
                    if op is None and what.startswith("block '")
                    else []
                ),
            )
            return None
        dynamic = op.startswith("{") and op.endswith("}")  # chosen by the block's parameters
        if op == SHORTCUT_OP:
            allowed = set(SHORTCUT_ATTRS) - {"kind"}
            if "holds" in data:
                self.diags.error(
                    self.src.key_loc((*path, "holds")),
                    f"shortcut '{name}' cannot hold values",
                    "put holds on the node that joins the shortcut",
                )
        elif dynamic:  # its attributes are checked once the expansion knows the op
            allowed = {k for k in data if k not in NODE_KEYS}
        elif op not in OPS:
            found = unknown_op(op, [*OPS, SHORTCUT_OP])
            listing = [] if len(found) > 1 else ["ops: " + ", ".join(sorted(OPS))]
            self.diags.error(self.src.loc((*path, "op")), *found, *listing)
            return None
        else:
            allowed = set(OPS[op].attrs)
        attrs: dict[str, Raw] = {}
        attr_locs: dict[str, Loc] = {}
        for key, value in data.items():
            if key in NODE_KEYS or (key == "kind" and op == SHORTCUT_OP):
                continue
            if key in ("after", "before"):  # left over only where nothing was merged
                self.diags.error(
                    self.src.key_loc((*path, key)),
                    f"'{key}' places an entry that a spec with 'extends:' adds to its base's "
                    "section; this spec extends none",
                )
                continue
            if key not in allowed:
                self.diags.error(
                    self.src.key_loc((*path, key)),
                    f"op '{op}' has no attribute '{key}'"
                    f"{suffix_hint(key, [*allowed, 'in', 'when', 'holds'])}",
                    "attributes: " + (", ".join(sorted(allowed)) or "none"),
                )
                continue
            attrs[key] = value
            attr_locs[key] = self.src.loc((*path, key))
        if op == SHORTCUT_OP:
            attrs["kind"] = data.get("kind")
            attr_locs["kind"] = self.src.loc((*path, "kind"))
        elif op in OPS and not dynamic:
            for key, spec in OPS[op].attrs.items():
                if spec.default is REQUIRED and key not in data:
                    self.diags.error(loc, f"node '{name}' ({op}) needs '{key}'")
            if what in SECTIONS:  # (in a block type the expansion words it as the block's)
                self._literal_ranges(name, op, attrs, attr_locs)
                self._expression_syntax(name, op, attrs, attr_locs)
        inputs, in_locs = self.inputs(data.get("in"), (*path, "in"))
        holds, holds_locs = self.inputs(data.get("holds"), (*path, "holds"), "holds")
        like = data.get("like")
        if like is not None and (not isinstance(like, str) or not like):
            self.diags.error(self.src.loc((*path, "like")), "'like' must name a node")
            like = None
        share = data.get("share")
        if share is not None and (not isinstance(share, str) or not share):
            self.diags.error(self.src.loc((*path, "share")), "'share' must name a node")
            share = None
        loop = self.loop(name, data, path, what)
        return NodeSpec(
            name=name,
            op=op,
            inputs=inputs,
            like=like,
            like_loc=self.src.loc((*path, "like")),
            share=share,
            share_loc=self.src.loc((*path, "share")),
            attrs=attrs,
            when=data.get("when"),
            loc=loc,
            attr_locs=attr_locs,
            in_locs=in_locs,
            when_loc=self.src.loc((*path, "when")),
            holds=holds or [],
            holds_locs=holds_locs,
            loop=loop,
            loop_loc=self.src.loc((*path, "for")) if loop else None,
        )

    def loop(
        self, name: str, data: dict[str, Any], path: Path, what: str, named: bool = True
    ) -> tuple[str, Raw] | None:
        """A node's ``for: {i: count}``: the index's name and the count (a number or an
        expression of the block's names), checked as far as the text allows."""
        if "for" not in data:
            return None
        value, where = data["for"], self.src.loc((*path, "for"))
        example = "like for: {i: scale - 1}"
        if not what.startswith("block '"):
            self.diags.error(
                self.src.key_loc((*path, "for")),
                f"'for' makes nodes in a block type only, not in {what}",
                "write the loop in a block type, and a stage of one block of it",
            )
            return None
        if not isinstance(value, dict) or len(value) != 1:
            self.diags.error(where, f"'for' of '{name}' names one index and its count, {example}")
            return None
        ((index, count),) = value.items()
        if not isinstance(index, str) or not index.isidentifier() or keyword.iskeyword(index):
            self.diags.error(where, f"the index of '{name}' must be a name, {example}")
            return None
        if isinstance(count, bool) or not isinstance(count, (int, str)):
            self.diags.error(where, f"the count of '{name}' must be a number or an expression")
            return None
        if named and "{" not in name:
            self.diags.error(
                self.src.key_loc(path),
                f"node '{name}' is made by a loop, so its name must hold the index, like "
                f"'{name}.{{{index}}}'",
            )
            return None
        return index, count

    def _literal_ranges(
        self, name: str, op: str, attrs: dict[str, Raw], locs: dict[str, Loc]
    ) -> None:
        """Each attribute written as a plain number outside its op's range, as the expansion
        words it ('eps' of 'bn1' must be more than 0, got 0)."""
        for key, value in attrs.items():
            spec = OPS[op].attrs[key]
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            fits = spec.kind in ("float", "int", "size", "padding") and (
                spec.kind == "float" or isinstance(value, int)
            )
            if number and fits and (problem := spec.range_error(value)):
                message = f"'{key}' of '{name}' {problem}, got {value}"
                self.out_of_range.append(Diagnostic(locs[key], message))

    def _expression_syntax(
        self, name: str, op: str, attrs: dict[str, Raw], locs: dict[str, Loc]
    ) -> None:
        """Each numeric attribute written as an expression that does not parse, as the
        expansion words it (reported beside the file's other errors, like the ranges above)."""
        for key, value in attrs.items():
            spec = OPS[op].attrs[key]
            number = spec.kind in ("int", "float", "bool", "size", "padding")
            if not isinstance(value, str) or not number or value in spec.choices:
                continue
            try:
                check_syntax(value)
            except ExprError as e:
                message = f"'{key}' of '{name}': {e.message}"
                self.out_of_range.append(Diagnostic(locs[key].shifted(e.col), message))

    def inputs(self, value: Any, path: Path, key: str = "in") -> tuple[list[str] | None, list[Loc]]:
        if value is None:
            return None, []
        items = value if isinstance(value, list) else [value]
        if not items or not all(
            isinstance(v, (str, int)) and not isinstance(v, bool) for v in items
        ):
            self.diags.error(self.src.loc(path), f"'{key}' must be a node name or a list of names")
            return None, []
        locs = [
            self.src.loc((*path, i)) if isinstance(value, list) else self.src.loc(path)
            for i in range(len(items))
        ]
        return [str(v) for v in items], locs


def describe(value: Any) -> str:
    if value is None:
        return "nothing"
    kind = {
        dict: "a mapping",
        list: "a list",
        bool: "a boolean",
        str: "text",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)
    return f"{kind} ({value!r})" if isinstance(value, (int, float, str)) else kind


def unknown_op(op: str, known: list[str]) -> list[str]:
    """The error for an op name netc does not know, with a did-you-mean, or with a note naming
    the plugin that provides it if an installed package says so (nothing is loaded: only the
    user enables plugins)."""
    module = plugins.provider(op) if isinstance(op, str) else None
    if module is not None:
        return [
            f"unknown op '{op}': the plugin {module} provides it, and it is not enabled",
            f"enable it with --plugin {module} or {plugins.ENVIRONMENT}={module} "
            "(plugins are enabled by the user, never by a spec)",
        ]
    return [f"unknown op '{op}'{suffix_hint(op, known)}"]


def loop_bodies(nodes: list[NodeSpec]) -> list[list[NodeSpec]]:
    """A block's nodes in the order they are made: each alone, or a loop body's together."""
    out: list[list[NodeSpec]] = []
    for ns in nodes:
        if ns.loop_body and out and out[-1][0].loop_body == ns.loop_body:
            out[-1].append(ns)
        else:
            out.append([ns])
    return out
