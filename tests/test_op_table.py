"""The op table is the only place that knows ops: every entry carries every rule the compiler,
the exporters and the diagrams need, and a missing one fails here, not in a user's hands."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import compiler
from compiler.ops import DIAGRAM_KINDS, OPS, Attr, Op
from exporters.graphviz import STYLES

SPECS = Path(__file__).resolve().parent / "specs"
EVERY_OP = SPECS / "every_op.yaml"
# the ops on 1-D and 3-D maps, each at least once
EVERY_OP_BY_RANK = [SPECS / "every_op_1d.yaml", SPECS / "every_op_3d.yaml"]


def test_the_every_op_spec_uses_every_op() -> None:
    """A new op fails here until tests/specs/every_op.yaml (or its 1-D and 3-D siblings) uses it
    (and so tests its rules)."""
    used = {
        n.op
        for path in [EVERY_OP, *EVERY_OP_BY_RANK]
        for n in compiler.load_spec(path).nodes.values()
    }
    assert used == set(OPS)


def test_the_rank_siblings_use_every_op_that_acts_on_any_rank() -> None:
    """conv, the pools, the norms, resampling, crop and the channel ops run on [C, L] and
    [C, T, H, W] maps too, and each sibling spec has them (adaptive pooling, which torch's
    exporters cannot write there, has a test of its own in tests/exporters)."""
    any_rank = {
        "conv", "conv_transpose", "maxpool", "avgpool", "global_avgpool",
        "global_mean", "batchnorm", "groupnorm", "instancenorm", "upsample", "resize", "crop",
        "concat", "split", "chunk",
    }  # fmt: skip
    for path in EVERY_OP_BY_RANK:
        used = {n.op for n in compiler.load_spec(path).nodes.values()}
        assert any_rank <= used, (path.name, any_rank - used)


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_has_every_rule(name: str) -> None:
    op = OPS[name]
    assert op.name == name and op.doc
    for rule in (op.shape, op.lower, op.onnx, op.label, op.params, op.macs):
        assert callable(rule)
    assert op.diagram in DIAGRAM_KINDS and op.diagram in STYLES
    least, most = op.inputs
    assert least >= 1 and (most is None or most >= least)
    assert (op.fold is None) or any(o.absorbs for o in OPS.values())  # a fold needs an absorber
    for key, attr in op.attrs.items():
        assert attr.kind in ("int", "float", "bool", "str", "ints", "size", "padding"), key
        assert attr.kind not in ("str", "padding") or attr.choices, f"{name}.{key}: lists words"


def test_every_op_with_state_has_an_init_rule() -> None:
    """Built from every_op.yaml: each node whose module holds parameters or buffers belongs to
    an op with an init rule (compile would refuse it otherwise), and vice versa where its
    lowering makes a module or a parameter (weighted_sum's plain sum makes neither)."""
    graph = compiler.load_spec(EVERY_OP)
    module = compiler.compile(graph, seed=0)
    for node in graph.nodes.values():
        try:
            sub = module.get_submodule(node.name)
        except AttributeError:
            sub = None  # a function call (add) or a bare parameter (layer_scale)
        has_state = (
            any(True for _ in [*sub.parameters(), *sub.buffers()])
            if sub is not None
            else node.name in dict(module.named_parameters())
        )
        stateless = node.op == "weighted_sum" and node.attrs["method"] == "sum"
        assert has_state == (OPS[node.op].init is not None and not stateless), node.name


def test_records_are_built_by_keyword() -> None:
    for record in (Op, Attr):
        assert all(f.kw_only for f in dataclasses.fields(record)), record.__name__
    with pytest.raises(TypeError):
        Attr("int")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("attr", "value", "problem"),
    [
        (Attr(kind="float", min=0, max=1), 1.5, "must be in [0, 1]"),
        (Attr(kind="float", min=0, max=1), 1.0, None),
        (Attr(kind="float", min=0, min_open=True), 0.0, "must be more than 0"),
        (Attr(kind="int", min=1), 0, "must be at least 1"),
        (Attr(kind="float", max=1, max_open=True), 1.0, "must be less than 1"),
        (Attr(kind="float", min=0, max=1, min_open=True, max_open=True), 0.5, None),
    ],
)
def test_attribute_ranges(attr: Attr, value: float, problem: str | None) -> None:
    assert attr.range_error(value) == problem


def test_no_other_module_names_an_op() -> None:
    """Op names appear as string literals only in the op table, the package compiler/ops/ (and
    the spec language's own pseudo-op 'shortcut'): compiler/, exporters/ and benchmarks/ dispatch
    on the entry's fields."""
    root = Path(__file__).resolve().parent.parent
    table = root / "compiler" / "ops"
    # words that are also op names but mean something else there
    homonyms = {
        "exporters/graphviz.py": {"identity"},  # the identity shortcut, in the legend
        "compiler/frontend/expr.py": {"abs"},  # the expression language's abs()
        "compiler/frontend/block_network.py": {"scale"},  # upsample's attribute 'scale'
    }
    paths = [*root.glob("compiler/**/*.py"), *root.glob("exporters/*.py")]
    paths += root.glob("benchmarks/*.py")
    assert any(p.is_relative_to(table) for p in paths) and len(paths) > 40
    for path in paths:
        if path.is_relative_to(table):
            continue
        text = path.read_text()
        where = str(path.relative_to(root))
        for name in set(OPS) - homonyms.get(where, set()):
            for quoted in (f'"{name}"', f"'{name}'"):
                assert quoted not in text, f"{path.relative_to(root)} names op {quoted}"
