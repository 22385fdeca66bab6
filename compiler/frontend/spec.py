"""Validated spec objects: every key, type and name of a network or block file checked and located.

The schema (which keys exist, what types they take) lives in the ``*_KEYS`` tables below; values
that may be expressions stay as text here and are evaluated by :mod:`compiler.frontend.expand`,
where the names they use are bound.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import Diagnostics, Loc, SpecError, did_you_mean, suffix_hint
from ..ir.graph import MODULE_PART
from ..ir.size_rule import SizeRule
from ..ops import OPS, REQUIRED
from .lookup import (
    available_blocks,
    block_folders,
    builtin_shortcuts,
    find_block_file,
    is_block_file,
)
from .nodes import (
    SECTIONS,
    Checker,
    NodeSpec,
    Raw,
    describe,
    unknown_op,
)
from .parts import PartSpec, check_parts
from .resolve import shown_path
from .sizes import size_rule
from .source import Path, Source, load_file

# key -> (accepted python types, what to call it in an error, required?)
NETWORK_KEYS: dict[str, tuple[tuple[type, ...], str, bool]] = {
    "name": ((str,), "a name", True),
    "description": ((str,), "a text", False),
    "family": ((str,), "a name", False),
    "extends": ((str,), "a file name", False),  # consumed by compiler.frontend.resolve
    "replace": ((list,), "a list of keys", False),  # ditto: taken whole, not merged
    "input": ((list,), "a list of sizes like [3, 224, 224]", True),
    # checked by compiler.frontend.sizes, which names the forms
    "sizes": ((str, dict, int, float, bool, list), "'any' or a mapping like {multiple: 32}", False),
    "params": ((dict,), "a mapping of names to numbers or expressions", False),
    "shortcut": ((str,), "a shortcut kind", False),
    "stage_defaults": ((dict,), "a mapping of block parameters for every stage", False),
    "zero_init_residual": ((bool,), "true or false", False),
    "weights_from": ((str,), "a torchvision model name", False),
    "published_weights": (
        (list,),
        "a list of overrides, like [params.transform_input=true]",
        False,
    ),
    "op_defaults": ((dict,), "a mapping of op names to attribute defaults", False),
    "block_types": ((dict,), "a mapping of block types", False),
    "shortcut_types": ((dict,), "a mapping of shortcut kinds", False),
    "stem": ((dict,), "a mapping of named nodes", False),
    "stages": ((dict,), "a mapping of named stages", False),
    "head": ((dict,), "a mapping of named nodes", False),
    "output": ((str,), "a node name", False),
    "outputs": (
        (list, dict),
        "a list of stage or node names, like [layer2, layer3, layer4], or a mapping of output "
        "names to them, like {out: classifier, aux: aux_classifier}",
        False,
    ),
    "aux_outputs": ((list,), "a list of stage or node names, like [aux2, aux1]", False),
    "eval_only": ((list,), "a list of the outputs' names or keys, like [pred]", False),
    "module_lists": ((list,), "a list of module paths, like [blocks]", False),
    "freeze": ((list,), "a list of module paths, like [backbone.body.conv1]", False),
    # checked by compiler.frontend.parts
    "parts": (
        (dict,),
        "a mapping of module paths to parts, like {backbone: {spec: resnet50}}",
        False,
    ),
}
BLOCK_KEYS: dict[str, tuple[tuple[type, ...], str, bool]] = {
    "block": ((str,), "the block type's name", True),
    "description": ((str,), "a text", False),
    "params": ((dict,), "a mapping of parameter names to defaults (null: required)", False),
    "first_only": ((list,), "a list of parameter names", False),
    "let": ((dict,), "a mapping of names to expressions", False),
    "nodes": ((dict,), "a mapping of named nodes", True),
    "output": ((str,), "a node name", False),
    "flat": ((bool,), "true or false", False),
    "module_order": ((list,), "a list of the block's module names, like [norm1, attn]", False),
    "module_lists": ((list,), "a list of the block's containers, like [convs, bns]", False),
}
SHORTCUT_KEYS: dict[str, tuple[tuple[type, ...], str, bool]] = {
    "description": ((str,), "a text", False),
    "when": ((str, bool), "a condition", False),
    "remove": ((bool,), "true or false", False),
    "nodes": ((dict,), "a mapping of named nodes", False),
}
MAX_NAME = 128
NETWORK_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_NAME - 1}}}")
STAGE_RESERVED = ("block", "repeat", "first", "shortcut", "path", "connect", "in", "share")
CONNECTIONS = ("chain", "dense")  # a stage's wiring: each block reads the one before / all


@dataclass(kw_only=True)
class BlockType:
    """A block type: a small graph of nodes with parameters (``basic``, ``bottleneck``, ...)."""

    name: str
    description: str
    params: dict[str, Raw]  # REQUIRED where the spec must give a value
    first_only: list[str]
    let: dict[str, Raw]
    nodes: list[NodeSpec]
    output: str | None
    loc: Loc
    param_locs: dict[str, Loc]
    let_locs: dict[str, Loc]
    # not a module: its nodes are numbered on as members of the stage's path (VGG's features)
    flat: bool = False
    # the order its modules are registered in (the state_dict's), where not the order they run
    module_order: list[str] = field(default_factory=list)
    # containers of the block's looped nodes that are nn.ModuleLists (Res2Net's convs and bns)
    module_lists: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class ShortcutType:
    """A shortcut kind (identity, A, B, C, avg_down, none): when it projects and with what."""

    name: str
    description: str
    when: Raw
    remove: bool
    nodes: list[NodeSpec]
    loc: Loc


@dataclass(kw_only=True)
class StageSpec:
    """A block type repeated: ``layer3: {block: bottleneck, repeat: 6, width: 256, stride: 2}``."""

    name: str
    block: str
    repeat: Raw
    params: dict[str, Raw]
    first: dict[str, Raw]
    shortcut: str | None
    loc: Loc
    locs: dict[str, Loc]  # of each key's value, 'first.x' for first-block overrides
    key_locs: dict[str, Loc] = field(default_factory=dict)  # of each key itself
    # the module path of each block, a template: "features.{block_index + 1}" (default:
    # "<stage>.{index}")
    path: str | None = None
    # 'dense': each block reads the stage's input and every earlier block's output, and the
    # stage's output is their concat (DenseNet)
    connect: str = "chain"
    # what the first block reads (default: the entry before the stage); a list: its `input`, then
    # input.1, input.2, ... (HRNet's branches into a stage)
    input: str | list[str] | None = None
    # the block instance whose modules its blocks run instead of having their own (a detection
    # head built once and called on every level: `share: head.classification_head`)
    share: str | None = None


Entry = NodeSpec | StageSpec


@dataclass(kw_only=True)
class NetworkSpec:
    """A whole network, validated; the input to :func:`compiler.frontend.expand.expand`."""

    name: str
    description: str
    family: str
    file: str
    input: list[int]
    # the input sides the built module accepts besides the written one (None: that one only)
    sizes: SizeRule | None
    params: dict[str, Raw]
    shortcut: str
    zero_init_residual: bool
    sections: list[tuple[str, list[Entry]]]
    output: str | None
    outputs: list[str]  # feature maps returned instead of the output, if any
    # the names `outputs: {out: classifier}` gives them: the network returns a dict
    output_keys: list[str] = field(default_factory=list)
    # values returned beside the output in training mode only (GoogLeNet's aux classifiers)
    aux_outputs: list[str] = field(default_factory=list)
    # outputs (by name, or by key in a dict) returned in eval mode only, and the nodes only they
    # need not run in training (YOLO's decoded boxes)
    eval_only: list[str] = field(default_factory=list)
    # containers whose children the enclosing module calls one by one (torchvision's ModuleList)
    module_lists: list[str] = field(default_factory=list)
    # module paths whose parameters do not train (torchvision's trainable_backbone_layers)
    freeze: list[str] = field(default_factory=list)
    # network-wide attribute defaults per op ({batchnorm: {eps: 0.001}}), with their locations
    op_defaults: dict[str, dict[str, tuple[Raw, Loc]]] = field(default_factory=dict)
    block_types: dict[str, BlockType]
    shortcut_types: dict[str, ShortcutType]
    source: Source
    param_locs: dict[str, Loc] = field(default_factory=dict)
    # other networks whose nodes this one holds under a module path (compiler.frontend.parts)
    parts: list[PartSpec] = field(default_factory=list)
    # where block types that block nodes name are looked for (loaded as the expansion meets them)
    block_folders: list[str] = field(default_factory=list)

    def loc(self, *path: str | int) -> Loc:
        return self.source.loc(tuple(path))


def check_network(src: Source) -> NetworkSpec:
    """Validate a resolved network Source; raises SpecError with every problem found."""
    if is_block_file(src.data):
        raise SpecError.at(
            src.loc(()),
            "this is a block type file, not a network",
            "use it from a network's stages, or draw it with 'netc diagram'",
        )
    diags = Diagnostics()
    c = Checker(src, diags)
    top = c.mapping(src.data, (), NETWORK_KEYS, "the network")
    _network_name(c, top)
    shape = _input_shape(c, top)
    sizes = size_rule(c, top, shape)
    parts = check_parts(c, top, src)
    params = _network_params(c, top)
    sections = _sections(c, top)
    shortcut_types = shortcut_kinds(top.get("shortcut_types", {}), src, diags)
    block_types = _inline_blocks(c, top)
    # the block types of the specs it builds on: its extends chain, then its parts' chains
    chain = [
        *(src.chain or [src.file]),
        *(f for p in parts for f in (p.spec.source.chain or [p.spec.file])),
    ]
    _find_blocks(sections, block_types, chain, src, diags)
    _stage_params(sections, block_types, diags)
    _check_default_block(c, top.get("stage_defaults"), block_types)
    default_shortcut = top.get("shortcut", "B")
    _check_shortcut_choices(c, default_shortcut, sections, shortcut_types)
    outputs = _outputs(c, top)
    output_keys = _output_keys(c, top)
    aux_outputs = _outputs(c, top, "aux_outputs")
    eval_only = _outputs(c, top, "eval_only")
    module_lists = _outputs(c, top, "module_lists")
    freeze = _outputs(c, top, "freeze")
    op_defaults = _op_defaults(c, top)
    if diags.items:  # the expansion will not run: what it would report of these, now
        diags.items.extend(c.out_of_range)
    diags.raise_if_any()
    return NetworkSpec(
        name=top["name"],
        description=top.get("description", ""),
        family=top.get("family", ""),
        file=src.file,
        input=shape,
        sizes=sizes,
        parts=parts,
        params=params,
        shortcut=default_shortcut,
        zero_init_residual=top.get("zero_init_residual", False),
        sections=sections,
        output=top.get("output"),
        outputs=outputs,
        output_keys=output_keys,
        aux_outputs=aux_outputs,
        eval_only=eval_only,
        module_lists=module_lists,
        freeze=freeze,
        op_defaults=op_defaults,
        block_types=block_types,
        shortcut_types=shortcut_types,
        source=src,
        param_locs={k: src.loc(("params", k)) for k in params},
        block_folders=block_folders(chain),
    )


def _op_defaults(c: Checker, top: dict[str, Any]) -> dict[str, dict[str, tuple[Raw, Loc]]]:
    """``op_defaults: {batchnorm: {eps: 0.001, momentum: 0.01}}``: each op and attribute known;
    the values are checked where each node uses them."""
    out: dict[str, dict[str, tuple[Raw, Loc]]] = {}
    for op, attrs in top.get("op_defaults", {}).items():
        path: Path = ("op_defaults", op)
        if op not in OPS:
            c.diags.error(c.src.key_loc(path), *unknown_op(op, list(OPS)))
            continue
        if not isinstance(attrs, dict):
            c.diags.error(c.src.loc(path), f"the defaults of '{op}' must be a mapping")
            continue
        out[op] = {}
        for key, value in attrs.items():
            if key not in OPS[op].attrs:
                c.diags.error(
                    c.src.key_loc((*path, key)),
                    f"op '{op}' has no attribute '{key}'{suffix_hint(key, OPS[op].attrs)}",
                    "attributes: " + (", ".join(sorted(OPS[op].attrs)) or "none"),
                )
                continue
            out[op][key] = (value, c.src.loc((*path, key)))
    return out


def _outputs(c: Checker, top: dict[str, Any], key: str = "outputs") -> list[str]:
    names = top.get(key, [])
    if isinstance(names, dict):
        names = list(names.values())
    for k, name in enumerate(names):
        if not isinstance(name, str) or not name:
            c.diags.error(c.src.loc((key, k)), f"each of '{key}' must be a name")
    if key in top and not names:
        c.diags.error(c.src.loc((key,)), f"'{key}' lists no names")
    return [n for n in names if isinstance(n, str)]


def _output_keys(c: Checker, top: dict[str, Any]) -> list[str]:
    """The names of ``outputs: {out: classifier, aux: aux_classifier}`` (the returned dict's
    keys, the ONNX outputs' names): identifiers, so code and ONNX tools can use them."""
    named = top.get("outputs")
    if not isinstance(named, dict):
        return []
    c.names(named, ("outputs",), "output name")
    return [str(k) for k in named]


def _input_shape(c: Checker, top: dict[str, Any]) -> list[int]:
    shape = top.get("input", [])
    if "input" in top and (
        not shape
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape)
    ):
        c.diags.error(
            c.src.loc(("input",)), "'input' must be a list of positive sizes, like [3, 224, 224]"
        )
    return list(shape)


def _network_name(c: Checker, top: dict[str, Any]) -> None:
    name = top.get("name")
    if isinstance(name, str) and not NETWORK_NAME.fullmatch(name):
        c.diags.error(
            c.src.loc(("name",)),
            f"the network's name {name!r} must be ASCII letters, digits, '_', '-' and '.' "
            f"(at most {MAX_NAME} characters, starting with a letter or digit)",
            "it names classes, files and diagrams; prose goes in 'description'",
        )


def _network_params(c: Checker, top: dict[str, Any]) -> dict[str, Raw]:
    params: dict[str, Raw] = {}
    c.names(top.get("params"), ("params",), "parameter")
    for key, value in top.get("params", {}).items():
        if not isinstance(value, (int, float, str, bool)):
            c.diags.error(
                c.src.loc(("params", key)),
                f"parameter '{key}' must be a number or an expression, got {describe(value)}",
            )
        params[key] = value
    return params


def _sections(c: Checker, top: dict[str, Any]) -> list[tuple[str, list[Entry]]]:
    """The stem, stages and head entries: a mapping with 'block' is a stage, else a node; under
    ``stages:``, an entry without 'op' is a stage of ``stage_defaults``' block type when it
    names one."""
    sections: list[tuple[str, list[Entry]]] = []
    defaults = top.get("stage_defaults", {})
    default_block = isinstance(defaults, dict) and "block" in defaults
    for section in SECTIONS:
        entries: list[Entry] = []
        for name, data in top.get(section, {}).items():
            path: Path = (section, name)
            entry: Entry | None
            stage = isinstance(data, dict) and (
                "block" in data or (default_block and section == "stages" and "op" not in data)
            )
            if stage:
                if not all(MODULE_PART.fullmatch(p) for p in name.split(".")):
                    c.diags.error(
                        c.src.key_loc(path),
                        f"stage name {name!r} must be a module path: parts of letters, digits, "
                        "'_' and '-' joined by '.'",
                    )
                    continue
                entry = _stage(c, name, data, path, top.get("stage_defaults", {}))
            else:
                entry = c.node(name, data, path, section)
            if entry:
                entries.append(entry)
        sections.append((section, entries))
    if not any(entries for _, entries in sections) and "name" in top:
        c.diags.error(c.src.loc(()), "the network has no nodes: give it a stem, stages or a head")
    return sections


def _inline_blocks(c: Checker, top: dict[str, Any]) -> dict[str, BlockType]:
    """The block types the spec defines itself, under ``block_types:``."""
    out = {}
    for name, data in top.get("block_types", {}).items():
        prefix = ("block_types", name)
        if not (name.isascii() and name.isidentifier()):
            c.diags.error(
                c.src.key_loc(prefix),
                f"block type {name!r} must be a plain name (ASCII letters, digits, _)",
            )
            continue
        sub = Source(c.src.file, data, _sub(c.src.values, prefix), _sub(c.src.keys, prefix))
        bt = check_block(sub, c.diags, name)
        if bt:
            out[name] = bt
    return out


def _check_shortcut_choices(
    c: Checker,
    default: str,
    sections: list[tuple[str, list[Entry]]],
    kinds: dict[str, ShortcutType],
) -> None:
    chosen = [(default, c.src.loc(("shortcut",)))] + [
        (e.shortcut, e.locs["shortcut"])
        for _, entries in sections
        for e in entries
        if isinstance(e, StageSpec) and e.shortcut
    ]
    for kind, loc in chosen:
        if kind not in kinds:
            c.diags.error(
                loc,
                f"unknown shortcut kind '{kind}'{suffix_hint(kind, kinds)}",
                "kinds: " + ", ".join(kinds),
            )


def _sub(index: dict[Path, Loc], prefix: Path) -> dict[Path, Loc]:
    n = len(prefix)
    return {p[n:]: loc for p, loc in index.items() if p[:n] == prefix}


def _stage(
    c: Checker, name: str, data: dict[str, Any], path: Path, defaults: dict[str, Any]
) -> StageSpec | None:
    src = c.src
    locs = {k: src.loc(("stage_defaults", k)) for k in defaults}
    locs.update({k: src.loc((*path, k)) for k in data})
    data = {**defaults, **data}
    block = data["block"]
    if not isinstance(block, str):
        c.diags.error(locs["block"], f"'block' of stage '{name}' must be a block type name")
        return None
    first = data.get("first", {})
    if not isinstance(first, dict):
        c.diags.error(locs["first"], "'first' must be a mapping of parameters for block 0")
        first = {}
    for k in first:
        locs[f"first.{k}"] = src.loc((*path, "first", k))
    shortcut = data.get("shortcut")
    if shortcut is not None and not isinstance(shortcut, str):
        c.diags.error(locs["shortcut"], "'shortcut' must be a shortcut kind like B")
        shortcut = None
    path_template = data.get("path")
    if path_template is not None and not isinstance(path_template, str):
        c.diags.error(
            locs["path"],
            f"'path' of stage '{name}' must be a module path, or a template with expressions in "
            'braces, like "features.{block_index + 1}"',
        )
        path_template = None
    source = data.get("in")
    many = isinstance(source, list) and source and all(isinstance(v, str) for v in source)
    if source is not None and not (isinstance(source, str) or many):
        c.diags.error(
            locs["in"],
            f"'in' of stage '{name}' must be a node or stage name, or a list of them (the "
            "first block's inputs)",
        )
        source = None
    share = data.get("share")
    if share is not None and (not isinstance(share, str) or not share):
        c.diags.error(
            locs["share"],
            f"'share' of stage '{name}' must name an earlier block instance, like "
            "head.classification_head",
        )
        share = None
    connect = data.get("connect", "chain")
    if connect not in CONNECTIONS:
        c.diags.error(
            locs["connect"],
            f"'connect' of stage '{name}' must be one of {', '.join(CONNECTIONS)}, got "
            f"{describe(connect)}",
        )
        connect = "chain"
    params = {k: v for k, v in data.items() if k not in STAGE_RESERVED}
    for k, v in [*params.items(), *first.items()]:
        if not isinstance(v, (int, float, str, bool)):
            c.diags.error(
                src.loc((*path, k)),
                f"block parameter '{k}' must be a number or an expression, got {describe(v)}",
            )
    return StageSpec(
        name=name,
        block=block,
        repeat=data.get("repeat", 1),
        params=params,
        first=first,
        shortcut=shortcut,
        loc=src.key_loc(path),
        locs=locs,
        key_locs={k: src.key_loc((*path, k)) for k in data if (*path, k) in src.keys},
        path=path_template,
        connect=connect,
        input=source,
        share=share,
    )


def check_block(src: Source, diags: Diagnostics, expected: str | None = None) -> BlockType | None:
    """Validate a block type (from a blocks/ file or a spec's block_types)."""
    c = Checker(src, diags)
    data = src.data
    if isinstance(data, dict) and expected is not None and "block" not in data:
        data = {"block": expected, **data}
    before = len(diags.items)
    top = c.mapping(data, (), BLOCK_KEYS, "the block type")
    if len(diags.items) > before:
        return None
    name = top["block"]
    if expected is not None and name != expected:
        diags.error(src.loc(("block",)), f"file defines block '{name}', expected '{expected}'")
    c.names(top.get("params"), ("params",), "parameter")
    c.names(top.get("let"), ("let",), "name")
    params = {k: (REQUIRED if v is None else v) for k, v in top.get("params", {}).items()}
    for key in params:
        if key in STAGE_RESERVED:  # a stage row's own key: no row could set the parameter
            c.diags.error(
                src.key_loc(("params", key)),
                f"block '{name}' cannot name a parameter '{key}': it is a stage row's own key",
                "a stage's own keys: " + ", ".join(STAGE_RESERVED),
            )
    first_only = [str(x) for x in top.get("first_only", [])]
    for i, p in enumerate(first_only):
        if p not in params:
            diags.error(
                src.loc(("first_only", i)),
                f"'{p}' is not a parameter of block '{name}'{suffix_hint(p, params)}",
            )
    nodes = c.nodes(top["nodes"], ("nodes",), f"block '{name}'")
    if not top["nodes"]:
        diags.error(src.loc(("nodes",)), f"block '{name}' has no nodes")
    module_order = _module_order(top, nodes, name, src, diags)
    lists = _block_lists(top, nodes, name, src, diags)
    return BlockType(
        name=name,
        description=top.get("description", ""),
        params=params,
        first_only=first_only,
        let=top.get("let", {}),
        nodes=nodes,
        output=top.get("output"),
        loc=src.key_loc(("block",)),
        param_locs={k: src.loc(("params", k)) for k in params},
        let_locs={k: src.loc(("let", k)) for k in top.get("let", {})},
        flat=top.get("flat", False),
        module_order=module_order,
        module_lists=lists,
    )


def _block_lists(
    top: dict[str, Any], nodes: list[NodeSpec], name: str, src: Source, diags: Diagnostics
) -> list[str]:
    """A block's ``module_lists``: containers its looped nodes are numbered in (``convs`` of
    ``convs.{i}``), made nn.ModuleLists as the reference fills them in a loop."""
    found = {
        ".".join(parts[:k])
        for n in nodes
        for parts in [n.name.split(".")]
        for k in range(1, len(parts))
        # the loop's index, or an expression of it (convs.{i}, convs.{i + 1}), or a number
        # (blocks.0 .. blocks.4 written out)
        if parts[k].isdigit()
        or (n.loop is not None and parts[k][:1] == "{" and re.search(rf"\b{n.loop[0]}\b", parts[k]))
    }
    out = []
    for i, item in enumerate(top.get("module_lists", [])):
        if not isinstance(item, str):
            diags.error(src.loc(("module_lists", i)), "each of 'module_lists' must be a name")
            continue
        if item in found:
            out.append(item)
            continue
        diags.error(
            src.loc(("module_lists", i)),
            f"'{item}' is not a container of block '{name}'s looped nodes"
            f"{suffix_hint(str(item), found)}",
            "a module list holds numbered members, like convs of convs.{i} or blocks of blocks.0",
        )
    return out


def nested_block(spec: NetworkSpec, name: str, diags: Diagnostics) -> BlockType | None:
    """The block type a block node names: one the spec has, or ``blocks/<name>.yaml`` near it,
    read when the expansion first meets it (the errors of that file go to ``diags``); None when
    there is none or its file has errors."""
    if name in spec.block_types:
        return spec.block_types[name]
    path = find_block_file(name, spec.block_folders) if name.isidentifier() else None
    if path is None:
        return None
    own = Diagnostics()
    try:
        bt = check_block(load_file(path, shown_path(path)), own, name)
    except SpecError as err:
        own.extend(err)
    diags.items.extend(own.items)
    if own.items or bt is None:
        return None
    spec.block_types[name] = bt
    return bt


def _module_order(
    top: dict[str, Any], nodes: list[NodeSpec], name: str, src: Source, diags: Diagnostics
) -> list[str]:
    """A block's ``module_order``: names of its own parts (the first part of a node's name),
    each once; a part that holds no module (a function such as add) changes nothing; a flat
    block has no module to order."""
    order = top.get("module_order", [])
    children = list(dict.fromkeys(n.name.split(".")[0] for n in nodes))
    if order and top.get("flat", False):
        diags.error(
            src.loc(("module_order",)),
            f"block '{name}' is flat (not a module): it has no modules of its own to order",
        )
        return []
    seen: set[str] = set()
    for i, item in enumerate(order):
        where = src.loc(("module_order", i))
        if not isinstance(item, str) or item not in children:
            diags.error(
                where,
                f"'{item}' is not a part of block '{name}'{suffix_hint(str(item), children)}",
                "its parts: " + (", ".join(children) or "none"),
            )
        elif item in seen:
            diags.error(where, f"'{item}' is named twice in module_order")
        seen.add(str(item))
    return [str(item) for item in order]


def shortcut_kinds(
    extra: dict[str, Any], src: Source, diags: Diagnostics
) -> dict[str, ShortcutType]:
    """The built-in shortcut kinds plus any the spec defines under ``shortcut_types``."""
    out = dict(_builtin_shortcuts())
    for name, data in extra.items():
        sub = Source(
            src.file,
            data,
            _sub(src.values, ("shortcut_types", name)),
            _sub(src.keys, ("shortcut_types", name)),
        )
        st = _check_shortcut(name, sub, diags)
        if st:
            out[name] = st
    return out


def _builtin_shortcuts() -> dict[str, ShortcutType]:
    src = builtin_shortcuts()
    diags = Diagnostics()
    out = {}
    for name, data in src.data.items():
        sub = Source(src.file, data, _sub(src.values, (name,)), _sub(src.keys, (name,)))
        st = _check_shortcut(name, sub, diags)
        if st:
            out[name] = st
    diags.raise_if_any()
    return out


def _check_shortcut(name: str, src: Source, diags: Diagnostics) -> ShortcutType | None:
    c = Checker(src, diags)
    top = c.mapping(src.data, (), SHORTCUT_KEYS, f"shortcut kind '{name}'")
    nodes = c.nodes(top.get("nodes", {}), ("nodes",), f"shortcut kind '{name}'")
    return ShortcutType(
        name=name,
        description=top.get("description", ""),
        when=top.get("when", True),
        remove=top.get("remove", False),
        nodes=nodes,
        loc=src.loc(()),
    )


def _check_default_block(c: Checker, defaults: Any, known: dict[str, BlockType]) -> None:
    """A block type ``stage_defaults`` names must exist, even where every stage names its own
    (a typo there would otherwise pass unseen)."""
    if not isinstance(defaults, dict) or "block" not in defaults:
        return
    name = defaults["block"]
    if not isinstance(name, str):
        c.diags.error(c.src.loc(("stage_defaults", "block")), "'block' must be a block type name")
        return
    if name in known or (name.isidentifier() and find_block_file(name, _folders(c)) is not None):
        return
    available = set(known) | available_blocks(_folders(c))
    c.diags.error(
        c.src.loc(("stage_defaults", "block")),
        f"unknown block type '{name}'{suffix_hint(name, available)}",
        "block types: " + (", ".join(sorted(available)) or "none found"),
    )


def _folders(c: Checker) -> list[Any]:
    return block_folders(c.src.chain or [c.src.file])


def _stage_params(
    sections: list[tuple[str, list[Entry]]], known: dict[str, BlockType], diags: Diagnostics
) -> None:
    """Each key of a stage row names a parameter of its block type: checked here, beside the
    file's other errors (a typo in one stage and an unknown key at the top are reported
    together), as the expansion would word it."""
    for _, entries in sections:
        for e in entries:
            bt = known.get(e.block) if isinstance(e, StageSpec) else None
            if bt is None or not isinstance(e, StageSpec):
                continue
            for key in e.params:
                if key not in bt.params:
                    # a stage's own keys are candidates too: 'repeats' is most likely 'repeat'
                    hint = suffix_hint(key, [*bt.params, *STAGE_RESERVED])
                    diags.error(
                        e.key_locs.get(key, e.locs[key]),
                        f"stage '{e.name}': block '{bt.name}' has no parameter '{key}'{hint}",
                        "parameters: " + ", ".join(bt.params),
                    )
            for key in e.first:
                if key not in bt.params:
                    diags.error(
                        e.locs[f"first.{key}"],
                        f"stage '{e.name}': block '{bt.name}' has no parameter "
                        f"'{key}'{suffix_hint(key, bt.params)}",
                    )


def _find_blocks(
    sections: list[tuple[str, list[Entry]]],
    known: dict[str, BlockType],
    chain: list[str],
    src: Source,
    diags: Diagnostics,
) -> None:
    """Load each block type the stages name from blocks/<name>.yaml near the spec, or near a
    spec it builds on (``chain``)."""
    folders = block_folders(chain)
    for _, entries in sections:
        for e in entries:
            if not isinstance(e, StageSpec) or e.block in known:
                continue
            if not e.block.isidentifier():  # it becomes a file name: no paths, no dots
                diags.error(
                    e.locs["block"],
                    f"block type '{e.block}' must be a plain name (letters, digits, _)",
                )
                continue
            path = find_block_file(e.block, folders)
            if path is not None:
                try:
                    bt = check_block(load_file(path, shown_path(path)), diags, e.block)
                except SpecError as err:
                    diags.extend(err)
                    bt = None
                if bt:
                    known[e.block] = bt
                continue
            available = set(known) | available_blocks(folders)
            diags.error(
                e.locs["block"],
                f"unknown block type '{e.block}'{suffix_hint(e.block, available)}",
                ""
                if did_you_mean(e.block, available)
                else "block types: "
                + (", ".join(sorted(available)) or "none found")
                + " (defined under block_types: or in a blocks/ folder beside the spec)",
            )
