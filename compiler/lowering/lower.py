"""Lowering: IR Graph -> a tree of torch modules shaped like the spec's module paths.

Each IR node is one line of generated code: a call of its module (its path is the node's name, so
state_dict keys are the spec's names) or of a function (``+``, ``torch.flatten``). The dotted
paths form a tree, and every part of it that can be a module of its own becomes one, so hooks,
indexing and slicing work as they do on torchvision's models:

- a part is *sealed* when its nodes run one after another and nothing outside it reads any of
  them but one (its output): such a part is called as one module;
- a sealed part whose children are ``0 .. k-1`` (or increasing indices with gaps, once folding
  removed a BatchNorm) in a chain (each reads only the one before) is an ``nn.Sequential``
  (torchvision's ``layer1``, ``downsample``);
- any other sealed part is a ``torch.fx.GraphModule`` with a straight-line ``forward`` taking the
  values it reads from outside as arguments; a block instance is one of the class named after
  its block type (``Bottleneck``), shared by every instance of that type;
- a part that is not sealed (a long skip reads a node inside it) stays a plain container: its
  leaves are called from the nearest enclosing module, as in a flat network.

No Python loop interprets nodes at run time, so the module costs what a hand-written one costs
and works with torch.compile, torch.export, torch.jit.script and create_feature_extractor.
"""

from __future__ import annotations

import contextvars
import functools
import itertools
import keyword
import operator
from collections import OrderedDict
from typing import Any

import torch
from torch import fx, nn
from torch.fx.graph_module import _WrappedCall

from ..errors import SpecError
from ..ir.graph import Graph, Node
from ..ir.passes.memory import inplace_plan
from ..ir.tree import Part, build_tree, unit_below
from ..ops import OPS, LowerContext, Lowered
from .features import feature_info
from .modules import hold


def _mark_chains(part: Part) -> None:
    """Which sealed parts are ``nn.Sequential``s: children named by increasing indices (``0 ..
    k-1``, or with gaps where folding removed a BatchNorm: ``0, 2``), each a module of one input
    reading only the one before."""
    for child in part.children.values():
        _mark_chains(child)
    if part.node is not None or not part.sealed or not part.children:
        return
    if any(n.meta.get("idle") for n in part.members):  # a Sequential would run them
        return
    kids = list(part.children.values())
    previous = part.inputs
    part.chain = _indices(list(part.children)) and part.path != ""
    for kid in kids:
        # a leaf in a chain is a module of one input (a function such as flatten is no module)
        is_module = kid.node is None or (
            kid.node.meta["lowered"].module is not None
            and not kid.node.shares
            and len(kid.node.inputs) == 1
            and not kid.node.holds
        )
        if not (kid.sealed and is_module and kid.inputs == previous and len(previous) == 1):
            part.chain = False
            break
        previous = [kid.output]
    part.chain = part.chain and previous == [part.output]


def _indices(names: list[str]) -> bool:
    """Whether ``names`` are increasing list indices as nn.Sequential writes them."""
    if not all(n.isdecimal() and str(int(n)) == n for n in names):
        return False
    return all(int(a) < int(b) for a, b in itertools.pairwise(names))


def is_contiguous(names: list[str]) -> bool:
    """``0 .. k-1``: the names ``nn.Sequential(*modules)`` gives."""
    return names == [str(i) for i in range(len(names))]


_BUILDING: contextvars.ContextVar[bool] = contextvars.ContextVar("netc_building", default=False)


# generated forwards by graph structure: the blocks of a stage share one (fx would generate and
# compile the same source for each, ~1 ms apiece)
_FORWARDS: dict[tuple[Any, ...], tuple[Any, ...]] = {}
_MAX_FORWARDS = 4096


class _Built(fx.GraphModule):
    """A torch.fx GraphModule built the way netc builds its tree: bottom up, each child
    compiled once when made (fx's ``recompile`` would compile every GraphModule child again per
    ancestor), and a module whose graph has the same structure as one built before reuses that
    one's generated forward. Afterwards it behaves exactly as fx's."""

    def _recompile_submodules(self) -> list[tuple[str, Any]]:
        if _BUILDING.get():
            return []
        return super()._recompile_submodules()

    def recompile(self) -> Any:
        if not _BUILDING.get():
            return super().recompile()
        key = _structure(self._graph)
        hit = _FORWARDS.get(key)
        if hit is None:
            code = super().recompile()
            if len(_FORWARDS) >= _MAX_FORWARDS:
                _FORWARDS.clear()
            _FORWARDS[key] = (type(self).forward, self._code, self._lineno_map, code)
            return code
        forward, self._code, self._lineno_map, code = hit
        # what fx's recompile does with a freshly generated forward, given this one
        cls = type(self)
        cls.forward = forward
        if "_wrapped_call" not in vars(cls):
            own_call = cls.__call__ if "__call__" in vars(cls) else None
            cls._wrapped_call = _WrappedCall(cls, own_call)  # type: ignore[attr-defined]

        def call_wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
            return self._wrapped_call(self, *args, **kwargs)

        cls.__call__ = call_wrapped  # type: ignore[method-assign]
        return code


def _structure(graph: fx.Graph) -> tuple[Any, ...]:
    """What the generated source of ``graph`` depends on: each node's kind, name, target and
    arguments (other nodes by name)."""
    return tuple((n.op, n.name, n.target, repr(n.args), repr(n.kwargs)) for n in graph.nodes)


@functools.cache
def _reserved() -> frozenset[str]:
    """Attribute names a module path part cannot use: any part may live in a generated module,
    so a GraphModule's (forward, graph, code, meta, training, eval, ...)."""
    return frozenset(dir(fx.GraphModule(nn.Module(), fx.Graph())))


def _check_names(node: Node) -> None:
    for part in node.name.split("."):
        if part in _reserved():
            raise SpecError.at(
                node.loc,
                f"node '{node.name}': '{part}' is the name of a torch module attribute "
                "and cannot name a module; rename it",
            )


@functools.cache
def block_class(block_type: str) -> type[fx.GraphModule]:
    """The class of every module that is an instance of ``block_type`` (for isinstance checks:
    activation checkpointing, FSDP wrapping policies). One per block type name, per process."""
    name = class_name(block_type)
    doc = f"A '{block_type}' block generated by netc: its forward is straight-line code."

    def __reduce__(self: fx.GraphModule) -> tuple[Any, ...]:
        # torch.fx pickles a GraphModule as a plain one; rebuild it as its block class
        rebuild, args = fx.GraphModule.__reduce__(self)
        return (_unpickle_block, (block_type, rebuild, args, list(self._modules)))

    namespace = {"__doc__": doc, "__module__": __name__, "__reduce__": __reduce__}
    return type(name, (_Built,), namespace)


def _unpickle_block(
    block_type: str, rebuild: Any, args: tuple[Any, ...], order: list[str] | None = None
) -> fx.GraphModule:
    plain = rebuild(*args)
    block = block_class(block_type)(plain, plain.graph, class_name=class_name(block_type))
    _register_in(block, order or [])  # fx rebuilds in the order the graph uses them
    return block


def _register_in(module: nn.Module, order: list[str]) -> None:
    """Re-register ``module``'s children with those ``order`` names first, in that order."""
    for name in registration_order(list(module._modules), order):
        module._modules[name] = module._modules.pop(name)


def _container(root: nn.Module, path: list[str], base: str, lists: list[str]) -> nn.Module:
    """The nested container for a dotted path below ``root`` (whose own path is ``base``),
    made on demand: an nn.ModuleList where the spec's ``module_lists`` name it, else a plain
    nn.Module holder."""
    node = root
    for depth, part in enumerate(path):
        child = node._modules.get(part)
        if child is None:
            where = ".".join([base, *path[: depth + 1]] if base else path[: depth + 1])
            child = nn.ModuleList() if where in lists else nn.Module()
            node.add_module(part, child)
        node = child
    return node


class _Builder:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.block_types = graph.block_types()
        # calls shared by the nodes that take pieces of their result, by (function, inputs, args)
        self.shared: dict[tuple[Any, ...], fx.Node] = {}

    def module(self, part: Part) -> nn.Module:
        """The module for a sealed part (the network, a stage, a block, a sub-container)."""
        if part.chain:  # (by name: after folding, a Sequential's indices may have gaps)
            kids = ((name, self.leaf_or_unit(kid)) for name, kid in part.children.items())
            return nn.Sequential(OrderedDict(kids))
        holder = nn.Module()
        g = fx.Graph()
        values: dict[str, fx.Node] = {}
        for k, name in enumerate(part.inputs):
            values[name] = g.placeholder("x" if k == 0 else _var(name))
        prefix = len(part.path) + 1 if part.path else 0
        done: set[str] = set()
        for node in part.members:
            unit = unit_below(part, node)
            if unit is None:
                self.call_leaf(g, holder, node, node.name[prefix:], values)
            elif unit.path not in done:
                done.add(unit.path)
                relative = unit.path[prefix:]
                *parents, leaf = relative.split(".")
                lists = self.graph.module_lists
                _container(holder, parents, part.path, lists).add_module(leaf, self.module(unit))
                args = tuple(values[i] for i in unit.inputs)
                values[unit.output] = g.call_module(relative, args)
                values[unit.output].name = _var(relative)
        if part.path == "":
            returned = [values[r] for r in self.graph.returns]
            name = class_name(self.graph.name)
            if self.graph.aux:  # training: (output, *aux); eval: a pruned copy, see _switching
                g.output((returned[0], *[values[a.node] for a in self.graph.aux]))
                return _switching(self.lists_kept(_Built(holder, g, class_name=name), ""), None)
            keys = self.graph.output_keys
            g.output(
                dict(zip(keys, returned, strict=True))
                if keys
                else returned
                if self.graph.features
                else returned[0]
            )
            built = self.idle_dropped(
                self.orders_kept(self.lists_kept(_Built(holder, g, class_name=name), "")), values
            )
            trained = self.graph.trained  # (the dict's keys, or the list's positions)
            if trained is None:
                return built
            return _switching(built, tuple(keys[k] for k in trained) if keys else tuple(trained))
        g.output(values[part.output])
        block_type = self.block_types.get(part.path)
        if block_type is not None:
            built = block_class(block_type)(holder, g, class_name=class_name(block_type))
            # fx registers submodules in the order the graph uses them; a block's module_order
            # may say otherwise
            _register_in(built, self.graph.module_orders.get(block_type, []))
            return self.idle_dropped(built, values)
        name = class_name(part.path.rsplit(".", 1)[-1])
        return self.idle_dropped(
            self.lists_kept(_Built(holder, g, class_name=name), part.path), values
        )

    def orders_kept(self, built: fx.GraphModule) -> fx.GraphModule:
        """``built`` with each block instance that is no module of its own (its values read
        from outside: SSD's head) registering its children in its type's module_order."""
        for path, block_type in self.block_types.items():
            order = self.graph.module_orders.get(block_type)
            if not order:
                continue
            try:
                held = built.get_submodule(path)
            except AttributeError:  # (folding or pruning removed every node of it)
                continue
            if not isinstance(held, fx.GraphModule):
                _register_in(held, order)
        return built

    def idle_dropped(self, built: fx.GraphModule, values: dict[str, fx.Node]) -> fx.GraphModule:
        """``built`` without the calls of idle values (a part's, held but never run): their
        modules stay, so the state_dict holds them."""
        idle = {values[n] for n in self.graph.idle if n in values}
        if not idle:
            return built
        for fx_node in reversed(list(built.graph.nodes)):
            if fx_node in idle and not fx_node.users:
                built.graph.erase_node(fx_node)
        built.recompile()
        return built

    def lists_kept(self, built: fx.GraphModule, base: str) -> fx.GraphModule:
        """``built`` with its module lists as nn.ModuleLists again: fx copies the modules its
        graph calls into plain nn.Module holders."""
        prefix = base + "." if base else ""
        for path in self.graph.module_lists:
            if not path.startswith(prefix):
                continue
            *parents, leaf = path[len(prefix) :].split(".")
            holder: nn.Module = built
            for name in parents:
                holder = holder.get_submodule(name)
            if leaf not in holder._modules:  # (folding removed every node of the list)
                continue
            listed = nn.ModuleList()
            # by name: after folding, a list's indices may have gaps (a BatchNorm child removed);
            # in index order, as a ModuleList registers them, whatever order they run in (an
            # FPN runs its coarsest level first)
            children = holder.get_submodule(leaf).named_children()
            for name, child in sorted(children, key=lambda kv: _index_key(kv[0])):
                listed.add_module(name, child)
            holder._modules[leaf] = listed
        return built

    def leaf_or_unit(self, part: Part) -> nn.Module:
        if part.node is None:
            return self.module(part)
        module = part.node.meta["lowered"].module
        assert module is not None  # a chain holds module leaves only
        return module

    def call_leaf(
        self,
        g: fx.Graph,
        holder: nn.Module,
        node: Node,
        relative: str,
        values: dict[str, fx.Node],
    ) -> None:
        lowered: Lowered = node.meta["lowered"]
        args = tuple(values[i] for i in node.inputs)
        base = node.name[: len(node.name) - len(relative)].rstrip(".")
        lists = self.graph.module_lists
        if node.shares and lowered.module is not None:  # the module of an earlier node
            # (the tree seals no part that holds this node but not the owner: it is below base)
            owner = node.shares[len(base) + 1 :] if base else node.shares
            values[node.name] = g.call_module(owner, args)
        elif lowered.module is not None:
            *parents, leaf = relative.split(".")
            _container(holder, parents, base, lists).add_module(leaf, lowered.module)
            values[node.name] = g.call_module(relative, args)
        elif lowered.parameter is not None:  # a bare parameter of the enclosing module
            *parents, leaf = relative.split(".")
            container = _container(holder, parents, base, lists)
            container.register_parameter(leaf, nn.Parameter(lowered.parameter))
            param = g.get_attr(relative)
            param.name = _var(relative) + "_param"
            assert lowered.function is not None  # the op that owns it applies it
            call = (param, *args, *lowered.extra_args)
            values[node.name] = g.call_function(lowered.function, call)
        elif lowered.item is not None:  # one piece of a call that several nodes share
            assert lowered.function is not None
            key = (lowered.function, args, lowered.extra_args)
            whole = self.shared.get(key)
            if whole is None:
                whole = g.call_function(lowered.function, (*args, *lowered.extra_args))
                whole.name = _var(relative) + "_pieces"
                self.shared[key] = whole
            values[node.name] = g.call_function(operator.getitem, (whole, lowered.item))
        else:
            assert lowered.function is not None  # the op table guarantees one of the two
            values[node.name] = g.call_function(lowered.function, (*args, *lowered.extra_args))
        values[node.name].name = _var(relative)
        for held in node.holds:
            # (a spec's holds are at hand, verify checks it; after folding, a held BatchNorm is its
            # conv, which a module of its own could hide)
            if held in values:
                values[node.name] = g.call_function(hold, (values[node.name], values[held]))
                values[node.name].name = _var(relative) + "_held"


def plan(graph: Graph, meta_unless_bare: bool = False) -> Part:
    """Each node's lowering (in ``node.meta['lowered']``, until :func:`release`) and the tree of
    parts, sealed; the module tree is built from it, and ``netc emit`` writes source from it.
    ``meta_unless_bare`` builds the modules of ops that are not ``bare`` on the meta device (their
    constructors would draw values the init rules overwrite) and the bare layers where the
    caller builds."""
    memo = graph.memo if graph.memo is not None else {}
    contexts = memo.get("contexts")
    if contexts is None:
        allowed = inplace_plan(graph)
        contexts = []
        for node in graph.nodes.values():
            _check_names(node)
            ctx = LowerContext(
                in_shapes=[graph.shape_of(i) for i in node.inputs],
                out_shape=node.shape,
                inplace_ok=allowed[node.name],
                in_sequence=node.name.rpartition(".")[2].isdigit(),
            )
            contexts.append((node, OPS[node.op], ctx))
        memo["contexts"] = contexts
    for node, op, ctx in contexts:
        if node.shares and graph.nodes[node.shares].meta["lowered"].module is not None:
            node.meta["lowered"] = graph.nodes[node.shares].meta["lowered"]  # one module
        elif meta_unless_bare and not op.bare:
            with torch.device("meta"):
                node.meta["lowered"] = op.lower(node.attrs, ctx)
        else:
            node.meta["lowered"] = op.lower(node.attrs, ctx)
    tree = memo.get("tree")
    if tree is None:
        # the tree and which parts are Sequentials follow from the structure and the ops alone
        tree = build_tree(graph)
        _mark_chains(tree)
        memo["tree"] = tree  # kept only once whole
    return tree


def release(graph: Graph) -> None:
    """Drop the lowerings :func:`plan` left on the nodes: modules belong to the module tree."""
    for node in graph.nodes.values():
        node.meta.pop("lowered", None)


def lower(graph: Graph, meta_unless_bare: bool = False) -> fx.GraphModule:
    """Build the module tree for ``graph``; its weights get values from compiler.lowering.initialise
    (``meta_unless_bare``: see :func:`plan`; compiler.materialise then gives the meta tensors
    storage)."""
    token = _BUILDING.set(True)
    try:
        # (inside: a lowering that fails halfway leaves no module on a kept graph's nodes)
        module = _Builder(graph).module(plan(graph, meta_unless_bare))
    finally:
        _BUILDING.reset(token)
        release(graph)
    assert isinstance(module, fx.GraphModule)
    freeze(module, graph.frozen)
    module.meta = {"netc_name": graph.name, "output_shape": list(graph.shape_of(graph.output))}
    if graph.features:
        object.__setattr__(module, "feature_info", feature_info(graph))  # not a submodule
    return module


def freeze(module: nn.Module, paths: list[str]) -> None:
    """Parameters under ``paths`` (the spec's ``freeze:``) do not train: requires_grad=False, as
    torchvision's detectors leave a pretrained backbone's first stages."""
    if not paths:
        return
    for name, param in module.named_parameters():
        if any(name.startswith(p + ".") or name == p for p in paths):
            param.requires_grad_(False)


def _switching(full: fx.GraphModule, kept: tuple[int | str, ...] | None) -> fx.GraphModule:
    """A network whose forward depends on its mode, both forwards on the same modules.

    ``kept`` None: training-only outputs (GoogLeNet's auxiliary classifiers). ``full`` is the
    training forward, returning ``(output, *aux)``; eval runs a copy of its graph without the
    nodes only the aux outputs need, and returns the output alone.
    Else eval-only outputs (YOLO's decoded boxes): ``full`` is the eval forward; training runs a
    copy that returns only the outputs at ``kept`` (keys of the dict, positions of the list),
    without the nodes only the others need."""

    def pick(out: Any) -> Any:
        if kept is None:
            return out[0]
        if isinstance(out, dict):
            return {k: out[k] for k in kept}
        return [out[k] for k in kept]

    pruned = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for n in full.graph.nodes:
        if n.op == "output":
            pruned.output(fx.node.map_arg(pick(n.args[0]), lambda a: env[a]))
        else:
            env[n] = pruned.node_copy(n, lambda a: env[a])
    suffix = "Eval" if kept is None else "Train"
    program = fx.GraphModule(full, pruned, class_name=type(full).__name__ + suffix)
    program.graph.eliminate_dead_code()
    program.delete_all_unused_submodules()
    program.recompile()
    full_forward = type(full).forward
    program_trains = kept is not None  # the mode the pruned copy runs in

    def forward(self: fx.GraphModule, x: Any) -> Any:
        return program(x) if self.training == program_trains else full_forward(self, x)

    def __deepcopy__(self: fx.GraphModule, memo: dict[int, Any]) -> fx.GraphModule:
        # fx copies a GraphModule as a plain one of its (full) graph: make it switch again
        plain = fx.GraphModule.__deepcopy__(self, memo)
        plain.training = self.training
        return _switching(plain, kept)

    def __reduce__(self: fx.GraphModule) -> tuple[Any, ...]:
        # fx's __reduce__ recompiles, which would put the full forward back on this class
        rebuild, args = fx.GraphModule.__reduce__(self)
        type(self).forward = forward
        return (_unpickle_switching, (rebuild, args, self.training, kept))

    cls = type(full)
    cls.forward = forward
    cls.__deepcopy__ = __deepcopy__  # type: ignore[method-assign]
    cls.__reduce__ = __reduce__  # type: ignore[method-assign]
    object.__setattr__(full, "other_program", program)  # not a submodule: no second state_dict
    return full


def _unpickle_with_aux(rebuild: Any, args: tuple[Any, ...], training: bool) -> fx.GraphModule:
    """(what modules with training-only outputs pickled before eval-only outputs existed call)"""
    return _unpickle_switching(rebuild, args, training, None)


def _unpickle_switching(
    rebuild: Any, args: tuple[Any, ...], training: bool, kept: tuple[int | str, ...] | None
) -> fx.GraphModule:
    module = _switching(rebuild(*args), kept)
    return module.train(training)


def _index_key(name: str) -> tuple[int, int]:
    """Sorts a list's children by index (a name that is none keeps its place after them)."""
    return (0, int(name)) if name.isdecimal() else (1, 0)


def registration_order(names: list[str], declared: list[str]) -> list[str]:
    """A block's children (``names``, in the order they run) in the order they are registered:
    those its ``module_order`` names first, in that order, then the others as they run."""
    first = [n for n in declared if n in names]
    return first + [n for n in names if n not in first]


@functools.lru_cache(maxsize=1 << 16)  # a network names thousands of values, a stage's alike
def _var(path: str) -> str:
    """A Python variable name for a value named by a module path."""
    cleaned = "".join(c if c.isalnum() else "_" for c in path)
    return cleaned if cleaned[:1].isalpha() else "v_" + cleaned


# what `netc emit`'s module defines or imports beside its classes: a class must not shadow it
_TAKEN = frozenset({"Any", "Attrs", "Callable", "InitContext", "OrderedDict"})


def class_name(name: str) -> str:
    """A class name from a spec's name: its ASCII letters and digits in CamelCase ('x²' is
    alnum but no identifier), never a keyword ('true' -> 'TrueNet') or a name emit uses."""
    words = "".join(c if c.isascii() and c.isalnum() else " " for c in name).split()
    cleaned = "".join(w[:1].upper() + w[1:] for w in words)
    cleaned = cleaned if cleaned[:1].isalpha() else "Net" + cleaned
    return cleaned + "Net" if keyword.iskeyword(cleaned) or cleaned in _TAKEN else cleaned
