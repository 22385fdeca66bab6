"""``netc schema``: a JSON Schema (draft 2020-12) of the spec language, for editors.

Generated, never hand-kept: the network and block keys come from compiler.frontend.spec's tables,
each op's attributes (type, range, choices, doc) from the op table, the block types and their
parameters from the library's blocks/ folder, the shortcut kinds from shortcuts.yaml. With
yaml-language-server (VS Code's YAML extension and others) an editor completes op names and
attributes, shows their docs, and flags unknown keys and wrong types as one types.

A spec may be partial (``extends:`` fills in the rest), so no section is required when a spec
extends another; a number may always be written as an expression string (``"width * 4"``).
"""

from __future__ import annotations

import os
from typing import Any

from ..frontend.nodes import SECTIONS, SHORTCUT_ATTRS, SHORTCUT_OP
from ..frontend.parts import PART_KEYS
from ..frontend.spec import BLOCK_KEYS, CONNECTIONS, NETWORK_KEYS, STAGE_RESERVED
from ..ir.size_rule import RULE_KEYS
from ..ops import OPS, REQUIRED, Attr

SCHEMA_ID = "https://netc.dev/schema/spec.json"
Json = dict[str, Any]
EXPRESSION: Json = {"type": "string", "description": 'an expression, e.g. "width * 4"'}


def _number(attr: Attr, integer: bool) -> Json:
    literal: Json = {"type": "integer" if integer else "number"}
    if attr.min is not None:
        literal["exclusiveMinimum" if attr.min_open else "minimum"] = attr.min
    if attr.max is not None:
        literal["exclusiveMaximum" if attr.max_open else "maximum"] = attr.max
    return {"anyOf": [literal, EXPRESSION]}


def attr_schema(attr: Attr) -> Json:
    """One attribute: its type and range, or an expression string; its doc as description."""
    if attr.kind == "int":
        out = _number(attr, True)
    elif attr.kind in ("size", "padding"):  # n, or one per side ([l], [h, w], [t, h, w])
        side = _number(attr, True)
        sides = {"type": "array", "items": side, "minItems": 1, "maxItems": 3}
        words = [{"enum": list(attr.choices)}] if attr.kind == "padding" else []
        out = {"anyOf": [*words, *side["anyOf"], sides]}
    elif attr.kind == "float":
        out = _number(attr, False)
    elif attr.kind == "bool":
        out = {"anyOf": [{"type": "boolean"}, EXPRESSION]}
    elif attr.kind == "str":
        out = {"enum": list(attr.choices)}
    else:  # 'ints': a list of whole numbers (permute's dims)
        out = {"type": "array", "items": {"anyOf": [{"type": "integer"}, EXPRESSION]}}
    if attr.default is None:  # optional with null meaning the default (conv padding)
        out = {"anyOf": [out, {"type": "null"}]}
    if attr.doc:
        out["description"] = attr.doc
    if attr.default is not REQUIRED and attr.default is not None:
        out["default"] = attr.default
    return out


def _inputs() -> Json:
    name: Json = {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    return {
        "description": "the node's input: a name, or a list of names (default: the node before)",
        "anyOf": [name, {"type": "array", "items": name, "minItems": 1}],
    }


def _node_common() -> Json:
    return {
        "in": _inputs(),
        "like": {
            "type": "string",
            "description": "one more input, after in's: the node whose size the op takes "
            "(resize to another node's height and width)",
        },
        "when": {
            "description": "a condition; false switches the node off (it passes its input on)",
            "anyOf": [{"type": "boolean"}, {"type": "string"}],
        },
        "holds": {
            **_inputs(),
            "description": "nodes of the same block whose memory is freed only after this node "
            "has run, in the order listed (as a Python local lives until its function returns); "
            "changes no value",
        },
        "for": _loop(),
        "share": {
            "type": "string",
            "description": "an earlier node whose module this one runs instead of its own (the "
            "same op, attributes and input channels: SPPF's one max pool, run three times)",
        },
        **_places(),
    }


def _places() -> Json:
    return {
        place: {
            "type": "string",
            "description": f"in a spec with extends: put this entry {place} that one of the "
            "base's section",
        }
        for place in ("after", "before")
    }


def _loop() -> Json:
    return {
        "description": "in a block type: {i: count} makes the node count times, i = 0 .. "
        "count - 1, its name a template of i ('convs.{i}')",
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": {"anyOf": [{"type": "integer", "minimum": 0}, EXPRESSION]},
    }


def loop_body() -> Json:
    """A loop body in a block type: ``label: {for: {i: count}, nodes: {...}}``."""
    return {
        "type": "object",
        "description": "nodes made for i = 0, then all again for i = 1, ...: each name a "
        "template of the index",
        "properties": {
            "for": _loop(),
            "nodes": {
                "type": "object",
                "additionalProperties": {
                    "anyOf": [{"$ref": "#/$defs/block_node"}, {"$ref": "#/$defs/nested_block"}]
                },
            },
        },
        "required": ["for", "nodes"],
        "additionalProperties": False,
    }


def nested_block() -> Json:
    """A block inside a block type: ``tree1: {block: dla_tree, in: [input, x], levels: 2}``; its
    other keys are the block type's parameters."""
    common = _node_common()
    return {
        "type": "object",
        "description": "an instance of a block type inside this one (its other keys are that "
        "type's parameters)",
        "properties": {
            "block": {
                "type": "string",
                "description": 'the block type, or "{expression}" choosing one',
            },
            "in": common["in"],
            "when": common["when"],
            "for": _loop(),
        },
        "required": ["block"],
        "not": {"required": ["op"]},
        "additionalProperties": {"anyOf": [{"type": "number"}, {"type": "boolean"}, EXPRESSION]},
    }


def op_node(name: str) -> Json:
    """A node of one op: ``{op: conv, out: 64, kernel: 3}``."""
    op = OPS[name]
    props = {"op": {"const": name, "description": op.doc}, **_node_common()}
    props.update({k: attr_schema(a) for k, a in op.attrs.items()})
    required = ["op", *(k for k, a in op.attrs.items() if a.default is REQUIRED)]
    return {
        "type": "object",
        "description": op.doc,
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


def node_schema(in_block: bool) -> Json:
    """Any node: its ``op`` picks the schema (so an editor reports 'kernal' was unexpected, not
    that no schema matched); in a block also the shortcut pseudo-op; an op chosen by an
    expression (``op: "{act}"``) takes any attributes (checked once the op is known)."""
    names = sorted(OPS) + ([SHORTCUT_OP] if in_block else [])
    rules: list[Json] = [_when("op", name, {"$ref": f"#/$defs/op_{name}"}) for name in sorted(OPS)]
    if in_block:
        props: Json = {"op": {"const": SHORTCUT_OP}, **_node_common()}
        number = {"anyOf": [{"type": "integer"}, EXPRESSION]}
        props.update({k: number for k in ("out", "stride", "dilation")})
        props["project_in"] = {"type": "string", "description": "what a projection reads"}
        props["kind"] = {"type": "string", "description": "a fixed shortcut kind"}
        assert set(props) >= set(SHORTCUT_ATTRS)
        rules.append(_when("op", SHORTCUT_OP, {"properties": props, "additionalProperties": False}))
    return {
        "type": "object",
        "required": ["op"],
        "properties": {
            "op": {
                "anyOf": [{"enum": names}, {"type": "string", "pattern": r"^\{.*\}$"}],
                "description": "the op (or an expression in braces that names one)",
            }
        },
        "allOf": rules,
    }


def _when(key: str, value: str, then: Json) -> Json:
    """``then`` applies to the objects whose ``key`` is ``value`` (an op's attributes, a block
    type's parameters)."""
    return {"if": {"properties": {key: {"const": value}}, "required": [key]}, "then": then}


def stage_schema(blocks: dict[str, dict[str, Any]]) -> Json:
    """A stage row: ``layer1: {block: bottleneck, repeat: 3, width: 64}``. The library's block
    types get their own parameters; a block type of the spec's own takes any."""
    number = {"anyOf": [{"type": "number"}, {"type": "boolean"}, EXPRESSION]}
    common: Json = {
        "block": {"type": "string", "description": "the block type"},
        "repeat": {
            "anyOf": [{"type": "integer", "minimum": 1}, EXPRESSION],
            "description": "how many blocks",
        },
        "first": {
            "type": "object",
            "description": "parameters for block 0 only",
            "additionalProperties": number,
        },
        "shortcut": {"type": "string", "description": "this stage's shortcut kind"},
        "path": {
            "type": "string",
            "description": 'the blocks\' module path template, e.g. "features.{block_index + 1}"'
            " (a flat block's: the container its nodes are numbered in)",
        },
        "in": {
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
            "description": "what the first block reads (default: the entry before the stage); "
            "a list: its input, input.1, input.2, ...",
        },
        "connect": {
            "enum": list(CONNECTIONS),
            "description": "chain: each block reads the one before; dense: every earlier output "
            "and the stage's input, the stage ending in their concat (DenseNet)",
        },
        "share": {
            "type": "string",
            "description": "an earlier block instance whose modules these blocks run instead of "
            "their own (a detection head built once and run on every level)",
        },
    }
    assert set(common) == set(STAGE_RESERVED)
    common.update(_places())  # read by the merge, gone before the stage is checked
    rules = []
    for name, params in sorted(blocks.items()):
        props = {**common, **{p: number for p in params}}
        rules.append(_when("block", name, {"properties": props, "additionalProperties": False}))
    return {
        "type": "object",
        "required": ["block"],
        "properties": {
            **common,
            "block": {
                "type": "string",
                "description": "the block type",
                "examples": sorted(blocks),
            },
        },
        "additionalProperties": number,
        "allOf": rules,
    }


def block_type_schema() -> Json:
    props: Json = {
        "block": {"type": "string"},
        "description": {"type": "string"},
        "params": {"type": "object", "description": "parameter names to defaults (null: required)"},
        "first_only": {"type": "array", "items": {"type": "string"}},
        "let": {"type": "object", "description": "derived values, in order"},
        "nodes": {
            "type": "object",
            "additionalProperties": {
                "anyOf": [
                    {"$ref": "#/$defs/block_node"},
                    {"$ref": "#/$defs/nested_block"},
                    {"$ref": "#/$defs/loop_body"},
                ]
            },
        },
        "output": {"type": "string"},
        "flat": {
            "type": "boolean",
            "description": "not a module: each node is the next numbered member of the stage's "
            "path (VGG's features)",
        },
        "module_order": {
            "type": "array",
            "items": {"type": "string"},
            "uniqueItems": True,
            "description": "the order the block's modules are registered in (its state_dict's "
            "order), where it is not the order they run; modules not named follow as they run",
        },
        "module_lists": {
            "type": "array",
            "items": {"type": "string"},
            "uniqueItems": True,
            "description": "containers of the block's looped nodes that are nn.ModuleLists, as "
            "the reference fills them in a loop (convs of convs.{i})",
        },
    }
    assert set(props) == set(BLOCK_KEYS)
    return {"type": "object", "properties": props, "additionalProperties": False}


def network_schema(blocks: dict[str, dict[str, Any]], shortcut_kinds: list[str]) -> Json:
    """The whole schema; ``blocks`` maps library block types to their parameters."""

    def section(partial: bool, rows: bool = False) -> Json:
        # an entry with op: a node; else a stage (or, in a spec that extends another, a patch
        # of its base's entry such as {repeat: 23}; under stages:, a row of stage_defaults'
        # block type, which the schema cannot see, so it leaves 'block' out there)
        other: Json = {"type": "object"} if partial else {"$ref": "#/$defs/stage"}
        if partial or rows:
            other = {"if": {"required": ["block"]}, "then": {"$ref": "#/$defs/stage"}}
        entry = {
            "if": {"required": ["op"]},
            "then": {"$ref": "#/$defs/node"},
            "else": other,
        }
        return {"type": "object", "additionalProperties": entry}

    descriptions = {k: what for k, (_, what, _) in NETWORK_KEYS.items()}
    props: Json = {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "family": {"type": "string"},
        "extends": {"type": "string", "description": "a spec file or a library name to build on"},
        "replace": {"type": "array", "items": {"type": "string"}},
        "input": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
        "sizes": {
            "description": "the input sides the network accepts besides the written one: "
            "'any', or {min, max, multiple, remainder}; netc check proves every one",
            "anyOf": [
                {"const": "any"},
                {
                    "type": "object",
                    "properties": {
                        k: {"type": "integer", "minimum": 0, "description": v}
                        for k, v in RULE_KEYS.items()
                    },
                    "additionalProperties": False,
                },
            ],
        },
        "params": {
            "type": "object",
            "additionalProperties": {
                "anyOf": [{"type": "number"}, {"type": "boolean"}, {"type": "string"}]
            },
        },
        "parts": {
            "description": "other networks held under a module path, like {backbone: {spec: "
            "resnet50, outputs: [layer3, layer4]}}; the stages read backbone.layer4",
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    key: {
                        **(
                            {"type": "string"}
                            if key in ("spec", "module")
                            else {"type": "array", "items": {"type": "string"}}
                        ),
                        "description": text,
                    }
                    for key, text in PART_KEYS.items()
                },
                "required": ["spec"],
                "additionalProperties": False,
            },
        },
        "shortcut": {"anyOf": [{"enum": shortcut_kinds}, {"type": "string"}]},
        "stage_defaults": {"type": "object"},
        "zero_init_residual": {"type": "boolean"},
        "weights_from": {"type": "string"},
        "published_weights": {
            "type": "array",
            "items": {"type": "string"},
            "description": "--set overrides applied when torchvision's published weights are "
            "loaded, as its builder applies them (params.transform_input=true)",
        },
        "op_defaults": {
            "type": "object",
            "properties": {
                name: {
                    "type": "object",
                    "properties": {k: attr_schema(a) for k, a in op.attrs.items()},
                    "additionalProperties": False,
                }
                for name, op in OPS.items()
            },
            "additionalProperties": False,
        },
        "block_types": {"type": "object", "additionalProperties": {"$ref": "#/$defs/block_type"}},
        "shortcut_types": {"type": "object"},
        "stem": {"type": "object"},
        "stages": {"type": "object"},
        "head": {"type": "object"},
        "output": {"type": "string"},
        "outputs": {
            "description": "feature maps returned instead of the output: a list (a list is "
            "returned), or a mapping of names to them (a dict is returned)",
            "anyOf": [
                {"type": "array", "items": {"type": "string"}},
                {"type": "object", "additionalProperties": {"type": "string"}},
            ],
        },
        "aux_outputs": {
            "type": "array",
            "items": {"type": "string"},
            "description": "values returned beside the output in training mode only",
        },
        "eval_only": {
            "type": "array",
            "items": {"type": "string"},
            "description": "outputs (names, or keys of a mapping) returned in eval mode only; "
            "what only they need does not run in training",
        },
        "module_lists": {
            "type": "array",
            "items": {"type": "string"},
            "description": "containers whose children the enclosing module calls one by one "
            "(an nn.ModuleList), so each child's input is freed once that child has run",
        },
        "freeze": {
            "type": "array",
            "items": {"type": "string"},
            "description": "module paths whose parameters do not train (requires_grad=False), "
            "as torchvision's trainable_backbone_layers leaves a detector's first stages",
        },
    }
    assert set(props) == set(NETWORK_KEYS), set(props) ^ set(NETWORK_KEYS)
    for key, value in props.items():
        value.setdefault("description", descriptions[key])
    required = [k for k, (_, _, req) in NETWORK_KEYS.items() if req]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "netc network spec",
        "type": "object",
        "properties": props,
        "additionalProperties": False,
        # a spec that extends another is partial: its base supplies the rest
        "if": {"not": {"required": ["extends"]}},
        "then": {
            "required": required,
            "properties": {k: section(False, rows=k == "stages") for k in SECTIONS},
        },
        "else": {"properties": {k: section(True) for k in SECTIONS}},
        "$defs": {
            **{f"op_{name}": op_node(name) for name in sorted(OPS)},
            "node": node_schema(in_block=False),
            "block_node": node_schema(in_block=True),
            "loop_body": loop_body(),
            "nested_block": nested_block(),
            "stage": stage_schema(blocks),
            "block_type": block_type_schema(),
        },
    }


def library_schema() -> Json:
    """The schema with the library's block types and shortcut kinds."""
    from ..frontend.lookup import builtin_shortcuts, library_root
    from ..frontend.source import load_file

    folder = os.path.join(library_root(), "blocks")
    blocks: dict[str, dict[str, Any]] = {}
    for entry in sorted(os.listdir(folder)):
        if entry.endswith(".yaml"):
            data = load_file(os.path.join(folder, entry)).data
            if isinstance(data, dict) and isinstance(data.get("block"), str):
                blocks[data["block"]] = dict(data.get("params") or {})
    return network_schema(blocks, sorted(builtin_shortcuts().data))
