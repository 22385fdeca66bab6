"""The proof that a network is valid at every input size its ``sizes:`` accepts.

Why checking a few sizes proves them all: every spatial shape rule in the op table is, side by
side, ``floor((n + a) / s) + b`` (convolutions, pools, crops, paddings), ``n * u`` (upsampling),
or a constant (global and adaptive pools, a resize to a size). Take the period ``P``: the least
common multiple of every node's cumulative factor (the product of the strides on the way to it,
divided by the upsamplings; ``Op.side_factor``; a resize like another node has that node's
factor, its sides being that node's: ``Op.sides_of_last``) and of the rule's ``multiple``. On
the input sides ``n = r + P * k`` of one remainder ``r``, every node's side is then affine in
``k`` (each division is exact in its step), and a side that a sequence of tokens multiplies by
another (``H * W``) is quadratic. So per remainder:

- an equality between two shapes (``add``, ``concat``, a crop's sizes) holds for every ``k`` when
  it holds at three: the smallest accepted ``k`` and the next two;
- an inequality (a side of at least 1, a crop no larger than its map) holds for every ``k`` up
  to the largest accepted one when it holds at both ends; for a rule without ``max``, at the
  smallest ``k`` and at ``k = 10**6`` (the shape rules are integer arithmetic: a million-fold
  side costs nothing to check), which an affine side that ever falls would fail.

Beside the shape rules, the module built at the written size must be the one every accepted size
needs: each node's parameter count (a flatten into a linear changes it) and whatever its module
is built for beyond channels (``Op.built_for``: a 'same' padding's pads with a stride) must not
depend on the size. Sides are checked square (n x n); every shape rule treats each side on its
own, so a square check covers a rectangle of two accepted sides.
"""

from __future__ import annotations

import math
from fractions import Fraction

from ...errors import SpecError
from ...ops import OPS, Shape, ShapeError, input_shape, spatial_rank
from ..graph import INPUT, Graph
from ..size_rule import SizeRule

MAX_CLASSES = 4096  # remainders checked (4 sizes each); a network of a longer period is refused
FAR = 10**6  # how many periods above the smallest side the far probe of an open rule lies


def period(graph: Graph) -> int:
    """``P``: the least common multiple of every node's cumulative side factor."""
    factors: dict[str, Fraction] = {INPUT: Fraction(1)}
    out = 1
    for node in graph.nodes.values():
        f = Fraction(1)
        # a resize like another node has that node's sides, whatever its input's (a feature
        # pyramid's top-down path: the factors of the paths into it do not compound)
        like = OPS[node.op].sides_of_last and len(node.inputs) == 2
        for i in node.inputs[1:] if like else node.inputs:  # the lcm of two fractions
            g = factors[i]
            f = Fraction(math.lcm(f.numerator, g.numerator), math.gcd(f.denominator, g.denominator))
        rule = OPS[node.op].side_factor
        if rule is not None and not like:
            f *= rule(node.attrs)
        factors[node.name] = f
        out = math.lcm(out, f.numerator)
    return out


def probe_sides(rule: SizeRule, p: int) -> list[int]:
    """The input sides to check, ascending: per accepted remainder modulo ``p``, the smallest
    three accepted sides of it and the largest (or a far one, the rule being open)."""
    step = math.lcm(p, rule.multiple)
    base = max(rule.min, 1)
    sides: set[int] = set()
    for r in range(rule.remainder, step, rule.multiple):
        n0 = base + (r - base) % step
        top = rule.max if rule.max is not None else n0 + FAR * step
        if n0 > top:
            continue
        last = n0 + (top - n0) // step * step
        sides.update(n for n in (n0, n0 + step, n0 + 2 * step, last) if n <= top)
    return sorted(sides)


def prove(graph: Graph) -> None:
    """Raise a located SpecError at the first accepted input side where a shape rule fails or
    the module would differ; nothing for a graph without ``sizes``. Needs the stats pass's
    ``params`` on each node."""
    rule = graph.sizes
    if rule is None:
        return
    where = rule.loc or (graph.origin.name_loc if graph.origin else None)
    assert where is not None
    written = graph.input_shape
    if spatial_rank(written) is None:
        raise SpecError.at(
            where,
            f"'sizes' applies to a map input ([C, L], [C, H, W], [C, T, H, W]), "
            f"got {list(written)}",
        )
    p = period(graph)
    classes = math.lcm(p, rule.multiple) // rule.multiple
    if classes > MAX_CLASSES:
        raise SpecError.at(
            where,
            f"the network's strides repeat every {p} rows: {classes:,} remainders to check, "
            f"more than {MAX_CLASSES:,}",
            f"a 'multiple' of {p} leaves one",
        )
    built = {n.name: _built_for(n.op, n.attrs, n.inputs, graph) for n in graph.nodes.values()}
    for side in probe_sides(rule, p):
        _check(graph, side, built, rule)


def shapes_at(graph: Graph, side: int) -> dict[str, Shape]:
    """Every node's shape at input sides ``side`` (an accepted size: no rule fails)."""
    c = graph.input_shape[0]
    shapes: dict[str, Shape] = {INPUT: input_shape([c, *[side] * (len(graph.input_shape) - 1)])}
    for node in graph.nodes.values():
        shapes[node.name] = OPS[node.op].shape(node.attrs, [shapes[i] for i in node.inputs])
    return shapes


def _check(graph: Graph, side: int, built: dict[str, object], rule: SizeRule) -> None:
    """The shapes at input sides ``side``; raises at the first node that fails."""
    c = graph.input_shape[0]
    shape = input_shape([c, *[side] * (len(graph.input_shape) - 1)])
    shapes: dict[str, Shape] = {INPUT: shape}
    at = "x".join(map(str, shape))
    for node in graph.nodes.values():
        op, ins = OPS[node.op], [shapes[i] for i in node.inputs]
        why = ""
        try:
            out = shapes[node.name] = op.shape(node.attrs, ins)
        except ShapeError as e:
            why = e.message
        else:
            params = 0 if node.shares else op.params(node.attrs, ins, out)
            if params != node.meta["params"]:
                why = (
                    f"{params:,} parameters where the written input gives it "
                    f"{node.meta['params']:,}: its weights depend on the input's size"
                )
            elif op.built_for is not None and op.built_for(node.attrs, ins) != built[node.name]:
                why = "its module is built for the written input's size (its 'same' padding)"
        if why:
            raise SpecError.at(
                node.loc,
                f"node '{node.name}' ({node.op}) at input {at}: {why}",
                f"'sizes' accepts {rule.text()}; {side} is the smallest side checked that fails",
                f"the written input {'x'.join(map(str, graph.input_shape))} fits",
            )


def _built_for(op: str, attrs: dict[str, object], inputs: list[str], graph: Graph) -> object:
    rule = OPS[op].built_for
    return rule(attrs, [graph.shape_of(i) for i in inputs]) if rule is not None else None
