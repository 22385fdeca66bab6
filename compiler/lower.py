"""Lowering: IR Graph -> torch.fx GraphModule with a straight-line ``forward``.

Each IR node becomes one line of generated code: a ``call_module`` for ops with a module (its path
is the node's name, so state_dict keys are the spec's names, nested containers included) or a
``call_function`` (``+``, ``torch.flatten``). No Python loop interprets nodes at run time, so the
module costs what a hand-written one costs and works with torch.compile, torch.export, jit.trace.
"""

from __future__ import annotations

import functools

from torch import fx, nn

from .errors import SpecError
from .ir import INPUT, Graph, Node
from .ops import OPS, LowerContext


def _container(root: nn.Module, path: list[str]) -> nn.Module:
    """The nested container for a dotted path, made on demand (plain nn.Module holders)."""
    node = root
    for part in path:
        child = node._modules.get(part)
        if child is None:
            child = nn.Module()
            node.add_module(part, child)
        node = child
    return node


@functools.cache
def _reserved(nested: bool) -> frozenset[str]:
    """Attribute names a module path part cannot use: at the top, a GraphModule's (forward,
    graph, code, meta, ...); below it, any nn.Module's (training, eval, ...)."""
    return frozenset(dir(nn.Module() if nested else fx.GraphModule(nn.Module(), fx.Graph())))


def _check_names(node: Node) -> None:
    for depth, part in enumerate(node.name.split(".")):
        if part in _reserved(nested=depth > 0):
            raise SpecError.at(
                node.loc,
                f"node '{node.name}': '{part}' is the name of a torch module attribute "
                "and cannot name a module; rename it",
            )


def lower(graph: Graph) -> fx.GraphModule:
    """Build the module for ``graph``; its weights are given values by compiler.initialise."""
    root = nn.Module()
    g = fx.Graph()
    values: dict[str, fx.Node] = {INPUT: g.placeholder("x")}
    consumers = graph.consumers()
    for node in graph.nodes.values():
        _check_names(node)
        # an op may overwrite its first input only when nothing else reads it (no skip edge from
        # it), it is not the caller's tensor, and its producer's backward does not need it
        first = node.inputs[0] if node.inputs else INPUT
        only_reader = (
            first != INPUT
            and len(consumers[first]) == 1
            and OPS[graph.nodes[first].op].fresh_output
        )
        ctx = LowerContext([graph.shape_of(i) for i in node.inputs], node.shape, only_reader)
        lowered = OPS[node.op].lower(node.attrs, ctx)
        args = tuple(values[i] for i in node.inputs)
        if lowered.module is not None:
            *parents, leaf = node.name.split(".")
            _container(root, parents).add_module(leaf, lowered.module)
            values[node.name] = g.call_module(node.name, args)
        else:
            assert lowered.function is not None  # the op table guarantees one of the two
            values[node.name] = g.call_function(lowered.function, (*args, *lowered.extra_args))
        values[node.name].name = node.name.replace(".", "_")
    g.output(values[graph.output])
    module = fx.GraphModule(root, g, class_name=_class_name(graph.name))
    module.meta = {"netc_name": graph.name, "output_shape": list(graph.nodes[graph.output].shape)}
    return module


def _class_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() else "_" for c in name)
    return (
        cleaned[:1].upper() + cleaned[1:]
        if cleaned and not cleaned[0].isdigit()
        else ("Net_" + cleaned)
    )
