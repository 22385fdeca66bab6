"""``netc emit``: a spec compiled to a standalone PyTorch source file that imports only torch.

The file holds one class per block type (and per other sealed part, such as an SE module), one
class for the network (constructible with no arguments), the few helpers netc's own modules need,
each leaf's initialisation rule, and ``build(seed=...)``, which gives the same weights as
``compiler.compile(spec, seed=...)``. It is written from the same plan as the module tree
(:mod:`compiler.lowering.lower`), so state_dict keys, outputs and the aten op sequence are the same.

A class serves every instance of its block type: constructor arguments carry what differs between
instances (named after the block's own parameters where their values match, such as
``in_channels`` or ``stride``), and a part only some instances have (a projection shortcut) is a
flag and an ``if`` in ``forward``, as in torchvision's ``Bottleneck``. Where instances cannot
share one class (DLA's trees read as many children as the trees above pass down), each group
that can is a class of its own (``DlaTree``, ``DlaTree_2``); a block holding blocks of its own
type is a class per height of that nesting (``DlaTreeLevel2`` holds ``DlaTree``s), so no class
builds itself.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable
from typing import Any

from ..ir.graph import Graph, Node
from ..lowering import modules as netc_modules
from ..lowering.lower import (
    Part,
    class_name,
    is_contiguous,
    plan,
    registration_order,
    release,
    unit_below,
)
from ..ops import OPS, InitContext
from ..pysource import access, assign, docstring, is_attribute, literal, string, variable
from .calls import TUPLE, BuiltBy, Call, Slot, leaf_call, render
from .emit_functions import function_lines, is_plugins
from .emit_header import header_text
from .emit_order import (
    nested_orders,
    registered,
    return_text,
    training_first,
)
from .emit_records import (
    EmitError,
    Instance,
    Klass,
    Step,
    _ref,
    _retarget,
    _type_of,
    frozen,
    numbered_members,
)


def _argument(name: str) -> str:
    """A constructor argument's name that shadows nothing the constructor reads (``nn``)."""
    return name + "_" if name in _ARGUMENT_TAKEN else name


# names the generated module defines besides its classes: the helpers it may copy from
# compiler.lowering.modules, what it imports, and its own aliases
_DEFINED = frozenset(
    {n for n in vars(netc_modules) if not n.startswith("_")}
    | {"Any", "Attrs", "Callable", "F", "InitContext", "OrderedDict", "annotations", "dataclass"}
)


# what a constructor reads besides its arguments
_ARGUMENT_TAKEN = _DEFINED | {"torch", "nn", "self", "init"}


class Emitter:
    def __init__(self, graph: Graph, tree: Part) -> None:
        self.graph = graph
        self.tree = tree
        self.block_types = graph.block_types()
        self.classes: dict[str, Klass] = {}
        self.helpers: list[Any] = []  # netc module classes and functions the file needs
        self.seen: set[Any] = set()  # helpers visited (one that calls itself is copied once)
        self.open: list[str] = []  # the classes of the parts being collected, outermost first
        self.class_names: dict[tuple[str, str], str] = {}  # (kind, name) -> its class
        self.named_sequential = False  # a Sequential built from an OrderedDict is written
        self.imports: set[str] = set()  # plugin modules whose classes and rules the file uses

    # -- collecting ----------------------------------------------------------------------------

    def klass_for(self, part: Part) -> tuple[Klass, int]:
        """Register ``part`` as an instance of its class; returns the class and the index.
        Its children's classes are registered first, so they are unified first."""
        block_type = self.block_types.get(part.path)
        if part.path == "":
            key, doc, order = self.unique(("network", ""), self.graph.name), "", []
            doc = self.graph.description
        elif block_type is not None:
            key, doc = self.unique(("block", block_type), block_type), f"A '{block_type}' block."
            order = list(self.graph.block_params.get(part.path, {}))
            height = self.same_type_height(part, block_type)
            if height:  # a block holding blocks of its own type: a class per height, so no
                # class builds itself (DlaTree_2 holds DlaTrees)
                key = self.unique(("block", f"{block_type}/{height}"), f"{key}Level{height + 1}")
                doc = f"A '{block_type}' block holding {height} level(s) of its own type."
        else:
            # a part named as one it lies inside (MaxViT's layers.MBconv.layers) is another
            # class, named after the class it lies in (MBconvLayers)
            *above, leaf = part.path.split(".")
            if leaf.isdigit() and above:  # a numbered member (SKNet's paths.0): Paths0
                leaf = f"{above[-1]}_{leaf}"
            name = leaf if class_name(leaf) not in self.open else f"{self.open[-1]}_{leaf}"
            # parts of one name whose members' numbered paths differ are classes of their own
            # (effdet's fusions: resample.3 in one, resample.2 and .5 in another)
            key = base = self.unique(("part", "/".join((name, *numbered_members(part)))), name)
            count = 2
            while key in self.open:
                key, count = f"{base}{count}", count + 1
            self.class_names.setdefault(("nested", key), key)  # no other source takes it
            doc, order = "", []
        self.open.append(key)
        try:
            inst = self.instance(part)
        finally:
            self.open.pop()
        module_order = self.graph.module_orders.get(block_type or "", [])
        klass = self.classes.setdefault(
            key, Klass(name=key, doc=doc, env_order=order, module_order=module_order)
        )
        klass.instances.append(inst)
        klass.envs.append(self.graph.block_params.get(part.path, {}))
        return klass, len(klass.instances) - 1

    def same_type_height(self, part: Part, block_type: str) -> int:
        """How deep blocks of ``part``'s own type nest inside it (0: none does)."""
        best = -1
        stack = list(part.children.values())
        while stack:
            kid = stack.pop()
            if self.block_types.get(kid.path) == block_type:
                best = max(best, self.same_type_height(kid, block_type))
            else:
                stack.extend(kid.children.values())
        return best + 1

    def unique(self, source: tuple[str, str], name: str) -> str:
        """The class name of ``source`` (the network, a block type or a part's name): made from
        ``name``, with a number where another source has it already (a network and a block type
        both called 'basic') or the module defines it (a block type named as a helper class)."""
        if source not in self.class_names:
            key = base = class_name(name)
            count = 2
            while key in self.class_names.values() or key in _DEFINED:
                key, count = f"{base}{count}", count + 1
            self.class_names[source] = key
        return self.class_names[source]

    def instance(self, part: Part) -> Instance:
        steps: dict[str, Step] = {}
        owner: dict[str, str] = {}  # IR value -> step rel
        prefix = len(part.path) + 1 if part.path else 0
        done: set[str] = set()
        for node in part.members:
            unit = unit_below(part, node)
            if unit is not None:
                if unit.path in done:
                    continue
                done.add(unit.path)
                rel = unit.path[prefix:]
                inputs = [_ref(v, part, owner) for v in unit.inputs]
                steps[rel] = Step(rel=rel, inputs=inputs, call=self.call_for(unit))
                owner[unit.output] = rel
                continue
            rel = node.name[prefix:]
            inputs = [_ref(v, part, owner) for v in node.inputs]
            lowered = node.meta["lowered"]
            if node.shares and lowered.module is not None:  # the module of an earlier node
                steps[rel] = Step(rel=rel, inputs=inputs, runs=node.shares[prefix:])
            elif lowered.module is not None:
                steps[rel] = Step(rel=rel, inputs=inputs, call=self.leaf(lowered.module))
            elif lowered.parameter is not None:  # layer_scale: its values come from the init
                self.need(lowered.function)
                shape = list(lowered.parameter.shape)
                steps[rel] = Step(
                    rel=rel,
                    inputs=inputs,
                    call=Call("nn.Parameter", [Call("torch.empty", shape)]),
                    function=lowered.function,
                    extra=lowered.extra_args,
                    parameter=True,
                )
            else:
                self.need(lowered.function)
                steps[rel] = Step(
                    rel=rel,
                    inputs=inputs,
                    function=lowered.function,
                    extra=lowered.extra_args,
                    item=lowered.item,
                )
            owner[node.name] = rel
        outputs = self.graph.returns if part.path == "" else [part.output]
        return Instance(part=part, steps=steps, output=",".join(owner[o] for o in outputs))

    def leaf(self, module: Any) -> Call:
        if type(module).__module__ == netc_modules.__name__:
            self.need(type(module))
        call = leaf_call(module)
        if is_plugins(type(module)):  # a plugin's module class: the file imports its module
            self.imports.add(type(module).__module__)
            call.func = f"{type(module).__module__}.{type(module).__qualname__}"
        return call

    def need(self, thing: Any) -> None:
        """Copy a helper of netc's into the source, after the helpers it calls by name (a
        plugin's function is imported from its module instead)."""
        if is_plugins(thing):
            self.imports.add(thing.__module__)
            return
        if getattr(thing, "__module__", "") != netc_modules.__name__ or thing in self.seen:
            return
        self.seen.add(thing)
        for base in getattr(thing, "__bases__", ()):  # a class after the netc class it extends
            self.need(base)
        source = inspect.getsource(thing)
        for name, other in vars(netc_modules).items():
            if (
                (inspect.isfunction(other) or inspect.isclass(other))
                and other.__module__ == netc_modules.__name__
                and re.search(rf"\b{name}\(", source)
            ):
                self.need(other)
        self.helpers.append(thing)

    def call_for(self, part: Part) -> Any:
        """The constructor of a sealed part: a Sequential, or an instance of its class."""
        if part.node is not None:
            return self.leaf(part.node.meta["lowered"].module)
        if part.chain:
            calls = [self.call_for(kid) for kid in part.children.values()]
            if is_contiguous(list(part.children)):
                return Call("nn.Sequential", calls)
            # indices with gaps (a folded BatchNorm's): nn.Sequential(OrderedDict(((name, m), ...)))
            # made of Calls, so classes unify and walk it as any other constructor call
            self.named_sequential = True
            pairs = [Call(TUPLE, [name, c]) for name, c in zip(part.children, calls, strict=True)]
            return Call("nn.Sequential", [Call("OrderedDict", [Call(TUPLE, pairs)])])
        klass, index = self.klass_for(part)
        return BuiltBy(klass.name, index)

    # -- unifying the instances of a class ------------------------------------------------------

    def unify(self, klass: Klass) -> None:
        order: list[str] = []
        for inst in klass.instances:
            at = -1
            for rel in inst.steps:
                if rel in order:
                    if order.index(rel) <= at:
                        raise EmitError(f"{klass.name}: parts run in different orders")
                    at = order.index(rel)
                else:
                    at += 1
                    order.insert(at, rel)
        klass.order = order
        for rel in order:
            # a function's arguments are written as literals: instances that call it with other
            # ones (a view to each one's width) are not one class
            extras = {repr(i.steps[rel].extra) for i in klass.instances if rel in i.steps}
            if len(extras) > 1:
                raise EmitError(f"{klass.name}.{rel}: instances call it with other arguments")
        n = len(klass.instances)
        present = {rel: tuple(rel in i.steps for i in klass.instances) for rel in order}
        flags: dict[tuple[bool, ...], str] = {}
        for rel in order:
            if not all(present[rel]) and present[rel] not in flags:
                # named after the part; another part of that name, present elsewhere, numbers on
                # (HRNet's sum.1 and sum.2: sum, sum_2)
                base = name = _argument(variable(rel.split(".")[0]))
                count = 2
                while name in flags.values():
                    name, count = f"{base}_{count}", count + 1
                flags[present[rel]] = name
            if not all(present[rel]):
                klass.optional[rel] = flags[present[rel]]
        self.unify_inputs(klass, present)
        # constructor literals: one parameter per distinct vector of values
        vectors: dict[tuple[Any, ...], str] = {}
        klass.values = [{} for _ in range(n)]
        for flag_vector, flag in flags.items():
            klass.params.append(flag)
            for k in range(n):
                klass.values[k][flag] = flag_vector[k]
        for rel in order:
            calls = [
                (k, i.steps[rel].call) for k, i in enumerate(klass.instances) if rel in i.steps
            ]
            if calls[0][1] is None:
                continue
            try:
                klass.calls[rel] = self.unify_call(klass, rel, calls, vectors)
            except EmitError:
                # the instances build this part differently (ResNet-D's downsample has its pool
                # only where strided): the part itself is an argument, as torchvision passes
                # `downsample` to its blocks
                self.module_argument(klass, rel, calls, flags)
        # the block's own parameters first, in its order; then other values; then the flags
        rank = {p: k for k, p in enumerate(klass.env_order)}
        flagged = set(flags.values())
        klass.params.sort(key=lambda p: (p in flagged, rank.get(p, len(rank))))

    def unify_or_split(self, klass: Klass) -> None:
        """Unify a class's instances; where they cannot be one class (DLA's trees read as many
        children as the trees above pass down, a list that timm's forward takes), one class per
        group of instances that can, each named after the first (``DlaTree1``, ``DlaTree1_2``),
        and the parts that build them pointed at their group's class."""
        try:
            self.unify(klass)
            return
        except EmitError:
            if len(klass.instances) == 1:
                raise
        groups: list[list[int]] = []
        for k in range(len(klass.instances)):
            for group in groups:
                try:
                    self.unify(self.grouped(klass, [*group, k], klass.name))
                except EmitError:
                    continue
                group.append(k)
                break
            else:
                groups.append([k])
        where: dict[int, tuple[str, int]] = {}
        for g, group in enumerate(groups):
            name = klass.name
            if g:
                name, count = f"{klass.name}_{g + 1}", g + 2
                while name in self.classes or name in _DEFINED:
                    name, count = f"{klass.name}_{count}", count + 1
            made = self.grouped(klass, group, name)
            self.unify(made)  # (a lone instance unifies with itself; a group was tried)
            self.classes[name] = made
            where.update({k: (name, j) for j, k in enumerate(group)})
        for other in self.classes.values():
            for inst in other.instances:
                for step in inst.steps.values():
                    _retarget(step.call, klass.name, where)

    def grouped(self, klass: Klass, indices: list[int], name: str) -> Klass:
        """A fresh class of some of ``klass``'s instances."""
        return Klass(
            name=name,
            doc=klass.doc,
            env_order=klass.env_order,
            module_order=klass.module_order,
            instances=[klass.instances[k] for k in indices],
            envs=[klass.envs[k] for k in indices],
        )

    def module_argument(
        self,
        klass: Klass,
        rel: str,
        calls: list[tuple[int, Any]],
        flags: dict[tuple[bool, ...], str],
    ) -> None:
        name = _argument(variable(rel))
        if rel in klass.optional:
            flag = klass.optional[rel]
            if sum(f == flag for f in klass.optional.values()) == 1:  # the flag was only this
                vector = next(v for v, f in flags.items() if f == flag)
                del flags[vector]
                klass.params.remove(flag)
                for values in klass.values:
                    values.pop(flag, None)
        for values in klass.values:
            values[name] = None
        for k, call in calls:
            klass.values[k][name] = self.literal(call)
        klass.params.append(name)
        klass.modules.add(name)
        klass.calls[rel] = Slot(name)

    def literal(self, call: Any) -> Any:
        """A constructor with every value written out (an instance of a class: its arguments),
        nested ones too (a Sequential argument holding a squeeze-excitation instance)."""
        if isinstance(call, BuiltBy):
            target = self.classes[call.klass]
            return Call(target.name, kwargs=dict(target.values[call.index]))
        if isinstance(call, Call):
            return Call(
                call.func,
                [self.literal(a) for a in call.args],
                {k: self.literal(v) for k, v in call.kwargs.items()},
                call.defaults,
            )
        return call

    def unify_inputs(self, klass: Klass, present: dict[str, tuple[bool, ...]]) -> None:
        for rel in klass.order:
            slots = [
                (k, i.steps[rel].inputs) for k, i in enumerate(klass.instances) if rel in i.steps
            ]
            width = {len(s) for _, s in slots}
            reads_all = len(slots) == len(klass.instances) and all(
                s == [f"${j}" for j in range(len(klass.instances[k].part.inputs))] for k, s in slots
            )
            if len(width) != 1 and reads_all:
                klass.varargs = True
                klass.inputs[rel] = ["*"]
                continue
            if len(width) != 1:
                raise EmitError(f"{klass.name}.{rel}: a different number of inputs per instance")
            klass.inputs[rel] = [
                self.agree(klass, [(k, s[j]) for k, s in slots], present, f"{rel} input {j}")
                for j in range(width.pop())
            ]
        outs = [(k, i.output) for k, i in enumerate(klass.instances)]
        klass.output = self.agree(klass, outs, present, "output").split(",")

    def agree(
        self,
        klass: Klass,
        refs: list[tuple[int, str]],
        present: dict[str, tuple[bool, ...]],
        what: str,
    ) -> str:
        """The reference all instances read: the same one, or an optional step where they have
        it and one same alias where they do not (returned: the optional step)."""
        distinct = {r for _, r in refs}
        if len(distinct) == 1:
            return distinct.pop()
        optional = sorted(r for r in distinct if r in klass.optional)
        if len(distinct) == 2:
            # an optional step where the instances have it, the other reference where they do
            # not (that one may be optional too: ShuffleNet's branch1 where strided, x1 where not)
            for opt in optional:
                other = (distinct - {opt}).pop()
                fits = all(present[opt][k] == (r == opt) for k, r in refs)
                if fits and klass.alias.setdefault(opt, other) == other:
                    return opt
        raise EmitError(f"{klass.name}: instances differ in {what} ({', '.join(sorted(distinct))})")

    def unify_call(
        self,
        klass: Klass,
        rel: str,
        calls: list[tuple[int, Any]],
        vectors: dict[tuple[Any, ...], str],
    ) -> Any:
        """One constructor for all instances; literals that differ become parameters."""
        first = calls[0][1]
        if isinstance(first, BuiltBy):  # an instance of another class
            if any(not isinstance(c, BuiltBy) or c.klass != first.klass for _, c in calls):
                raise EmitError(f"{klass.name}.{rel}: instances build different modules")
            values = [self.classes[c.klass].values[c.index] for _, c in calls]
            target = self.classes[first.klass]
            return Call(
                target.name,
                kwargs={
                    p: self.slot(klass, rel, p, calls, [v.get(p) for v in values], vectors)
                    for p in target.params
                },
            )
        if isinstance(first, Call):
            for _, c in calls:
                if (
                    not isinstance(c, Call)
                    or c.func != first.func
                    or len(c.args) != len(first.args)
                ):
                    raise EmitError(f"{klass.name}.{rel}: instances build different modules")
            if any(set(c.kwargs) != set(first.kwargs) for _, c in calls):
                raise EmitError(f"{klass.name}.{rel}: instances build different modules")
            args = [
                self.unify_call(klass, f"{rel}.{j}", [(k, c.args[j]) for k, c in calls], vectors)
                for j in range(len(first.args))
            ]
            kwargs = {
                key: self.unify_call(
                    klass, f"{rel}.{key}", [(k, c.kwargs[key]) for k, c in calls], vectors
                )
                for key in first.kwargs
            }
            return Call(first.func, args, kwargs, dict(first.defaults))
        return self.slot(klass, rel, rel, calls, [c for _, c in calls], vectors)

    def slot(
        self,
        klass: Klass,
        rel: str,
        label: str,
        calls: list[tuple[int, Any]],
        seen: list[Any],
        vectors: dict[tuple[Any, ...], str],
    ) -> Any:
        if all(v == seen[0] and type(v) is type(seen[0]) for v in seen):
            return seen[0]
        full: list[Any] = [None] * len(klass.instances)
        for (k, _), v in zip(calls, seen, strict=True):
            full[k] = v
        vector = tuple(full)
        for p in klass.params:  # a parameter that already carries these values where used
            if all(v is None or klass.values[k].get(p) == v for k, v in enumerate(vector)):
                return Slot(p)
        key = tuple(map(frozen, vector))  # (a value may be a constructor Call: unhashable)
        if key not in vectors:
            vectors[key] = self.param_name(klass, vector, label)
            klass.params.append(vectors[key])
            for k, v in enumerate(vector):
                klass.values[k][vectors[key]] = v
        return Slot(vectors[key])

    def param_name(self, klass: Klass, vector: tuple[Any, ...], label: str) -> str:
        """A block parameter whose value matches in every instance that uses it, else a name
        from where the value goes (``conv1_stride``)."""
        for key in klass.env_order:
            matches = all(
                v is None or env.get(key) == v for env, v in zip(klass.envs, vector, strict=True)
            )
            usable = is_attribute(key) and key not in _ARGUMENT_TAKEN
            if key != "index" and matches and key not in klass.params and usable:
                return key
        base = _argument(variable(label.replace(".", "_")))
        name, k = base, 2
        while name in klass.params or name in klass.env_order:
            name, k = f"{base}_{k}", k + 1
        return name

    # -- writing --------------------------------------------------------------------------------

    def source(self) -> str:
        root, _ = self.klass_for(self.tree)
        # a class is unified after every class its instances build, so parents see params
        for klass in self.dependency_order():
            self.unify_or_split(klass)
        parts = [*self.helper_sources(), *self.init_sources()]
        for klass in self.classes.values():
            parts.append(self.class_source(klass, root=klass is root))
        parts.append(self.build_source(root))
        # the header last: it imports what the parts turned out to use
        return "\n\n\n".join(p.rstrip("\n") for p in [self.header(), *parts]) + "\n"

    def dependency_order(self) -> list[Klass]:
        """The classes, each after the classes its instances build (a block type whose later
        instances hold a squeeze-excitation class registered after the block's own)."""

        def built(value: Any) -> list[str]:
            if isinstance(value, BuiltBy):
                return [value.klass]
            if isinstance(value, Call):
                return [n for v in [*value.args, *value.kwargs.values()] for n in built(v)]
            return []

        order: dict[str, Klass] = {}

        def visit(klass: Klass) -> None:
            if klass.name in order:
                return
            for inst in klass.instances:
                for step in inst.steps.values():
                    for name in built(step.call):
                        visit(self.classes[name])
            order[klass.name] = klass

        for klass in list(self.classes.values()):
            visit(klass)
        return list(order.values())

    def header(self) -> str:
        return header_text(self.graph, self.imports, self.named_sequential, self.helpers)

    def helper_sources(self) -> list[str]:
        return [inspect.getsource(h) for h in self.helpers]

    def init_rules(self) -> list[tuple[Node, Callable[..., None]]]:
        nodes = self.graph.nodes.values()
        return [
            (n, OPS[n.op].init)  # type: ignore[misc]
            for n in nodes
            if OPS[n.op].init
            and not n.shares
            # (no state with these attributes: weighted_sum's plain sum)
            and (n.meta["lowered"].module is not None or n.meta["lowered"].parameter is not None)
        ]

    def init_sources(self) -> list[str]:
        rules = list(dict.fromkeys(rule for _, rule in self.init_rules()))
        for rule in filter(is_plugins, rules):  # imported with its module, not copied
            self.imports.add(rule.__module__)
        own = [r for r in rules if not is_plugins(r)]
        return [inspect.getsource(InitContext), *(inspect.getsource(r) for r in own)]

    def lists_below(self, base: str) -> list[str]:
        """The spec's module lists inside the part at ``base``, relative to it."""
        if not base:
            return list(self.graph.module_lists)
        return [p[len(base) + 1 :] for p in self.graph.module_lists if p.startswith(base + ".")]

    def class_source(self, klass: Klass, root: bool) -> str:
        n = len(klass.instances)
        lines = [f"class {klass.name}(nn.Module):"]
        doc = klass.doc or f"Generated from the spec ({n} instance{'s' * (n > 1)})."
        lines.append(f"    {docstring(doc)}")
        lines.append("")
        if root:
            lines.append("    def __init__(self, init: bool = True) -> None:")
        else:
            typed = sorted((_type_of(klass, p) for p in klass.params), key=lambda t: "=" in t)
            args = ", ".join(typed)
            lines.append(
                f"    def __init__(self, {args}) -> None:"
                if args
                else "    def __init__(self) -> None:"
            )
        lines.append("        super().__init__()")
        made: set[str] = set()
        # registered as the lowering registers them: a block's module_order first
        children = registration_order(
            list(dict.fromkeys(rel.split(".")[0] for rel in klass.order)), klass.module_order
        )
        # the spec's module lists below this class's part, the same in every instance
        found = {frozenset(self.lists_below(inst.part.path)) for inst in klass.instances}
        if len(found) > 1:
            raise EmitError(f"{klass.name}: instances differ in their module lists")
        lists = next(iter(found))
        base = klass.instances[0].part.path
        orders = nested_orders(self.block_types, self.graph.module_orders, base)
        for rel in registered(klass.order, children, lists, orders):
            call = klass.calls.get(rel)
            if call is None:
                continue
            parents = rel.split(".")[:-1]
            for depth in range(len(parents)):
                holder = ".".join(parents[: depth + 1])
                if holder not in made:
                    made.add(holder)
                    kind = "nn.ModuleList()" if holder in lists else "nn.Module()"
                    lines.append(assign("self", holder, kind))
            text = render(call)
            if rel in klass.optional and not isinstance(call, Slot):
                text = f"{text} if {klass.optional[rel]} else None"
            lines.append(assign("self", rel, text))
        # a function step only some instances have (the residual add of a block whose first
        # instance changes its shape) runs under a flag the forward reads
        for flag in dict.fromkeys(self.optional_functions(klass).values()):
            lines.append(f"        self.with_{flag} = {flag}")
        if root and self.graph.frozen:  # (repr: the paths are the spec's, a Python literal)
            lines += [
                f"        frozen = {tuple(self.graph.frozen)!r}  # the spec's freeze: not trained",
                "        for name, param in self.named_parameters():",
                "            if any(name == p or name.startswith(p + '.') for p in frozen):",
                "                param.requires_grad_(False)",
            ]
        if root:
            lines += ["        if init:", "            self.reset_parameters()"]
        lines.append("")
        lines += self.forward_source(klass, root)
        if root:
            lines.append("")
            lines += self.reset_source()
        return "\n".join(lines)

    def optional_functions(self, klass: Klass) -> dict[str, str]:
        """The function steps some instances lack: their rel -> the flag that says so."""
        out = {}
        for rel, flag in klass.optional.items():
            step = next(i.steps[rel] for i in klass.instances if rel in i.steps)
            if step.function is not None and not step.parameter:
                out[rel] = flag
        return out

    def forward_source(self, klass: Klass, root: bool) -> list[str]:
        # instances may read different numbers of values (HRNet's modules of 2, 3 or 4
        # branches): those only some read are optional, and only steps of those instances read
        # them
        counts = [len(i.part.inputs) for i in klass.instances]
        count, least = max(counts), min(counts)
        names = ["x"] + [f"x{k}" for k in range(1, count)]
        args = ", ".join(
            f"{a}: torch.Tensor" if k < least else f"{a}: torch.Tensor | None = None"
            for k, a in enumerate(names)
        )
        if klass.varargs:
            names, args = [f"xs[{k}]" for k in range(count)], "*xs: torch.Tensor"
        many = root and bool(self.graph.features)
        keys = self.graph.output_keys if root else []
        returns = (
            "dict[str, torch.Tensor]" if keys else "list[torch.Tensor]" if many else "torch.Tensor"
        )
        lines = [f"    def forward(self, {args}) -> {returns}:"]

        def ref(r: str) -> str:
            if r == "*":
                return "*xs"
            return names[int(r[1:])] if r.startswith("$") else local(r)

        # a value must not shadow a name the file defines (DenseNet's stage ends in `concat`),
        # an argument or `self`, nor share a name with another value ('a-b' and 'a_b')
        used = {getattr(h, "__name__", "") for h in self.helpers} | {"torch", "nn", "F"}
        used |= {"self", "xs", *names}
        given: dict[str, str] = {}

        def fresh(base: str) -> str:
            name, k = base if base not in used else base + "_", 2
            while name in used:
                name, k = f"{base}_{k}", k + 1
            used.add(name)
            return name

        def local(r: str) -> str:
            if r not in given:
                given[r] = fresh(variable(r))
            return given[r]

        flags = self.optional_functions(klass)
        pieces: dict[tuple[Any, ...], str] = {}  # shared calls made so far -> their variable

        def returned(positions: list[int]) -> str:
            return return_text([ref(klass.output[k]) for k in positions], positions, keys, many)

        # what training returns first, then the eval-only outputs (None: one forward)
        trained = self.graph.trained if root else None
        order, early = training_first(klass.order, klass.inputs, klass.output, trained)
        for at, rel in enumerate([*order, None]):
            if trained is not None and at == early:
                lines.append("        if self.training:  # the eval-only outputs are not made")
                lines.append(f"            {returned(trained)}")
            if rel is None:
                break
            step = next(i.steps[rel] for i in klass.instances if rel in i.steps)
            ins = [ref(r) for r in klass.inputs[rel]]
            target = local(rel)
            if step.parameter:
                ins = [access("self", rel), *ins]
            if step.function is not None:
                if step.item is None:
                    body = function_lines(step, ins, target)
                else:  # the first of the steps that share a call (under one flag) makes it
                    key = (step.function, tuple(ins), step.extra, flags.get(rel))
                    body = []
                    if key not in pieces:
                        pieces[key] = fresh(f"{target}_pieces")
                        body = function_lines(step, ins, pieces[key])
                    body.append(f"{target} = {pieces[key]}[{step.item}]")
                flag = flags.get(rel)
                if flag is None:
                    lines += [f"        {line}" for line in body]
                    continue
                alias = klass.alias.get(rel)
                lines.append(f"        if self.with_{flag}:")
                lines += [f"            {line}" for line in body]
                lines += [
                    "        else:",
                    f"            {target} = {ref(alias) if alias else 'None'}",
                ]
                continue
            call = f"{access('self', step.runs or rel)}({', '.join(ins)})"
            if rel in klass.optional:
                alias = klass.alias.get(rel)
                fallback = ref(alias) if alias else "None"
                call = f"{call} if {access('self', rel)} is not None else {fallback}"
            lines.append(f"        {target} = {call}")
        lines.append(f"        {returned(list(range(len(klass.output))))}")
        return lines

    def zero_init_residual(self) -> bool:
        """The spec's own setting: the default of the emitted build() and reset_parameters()."""
        return self.graph.origin is not None and self.graph.origin.zero_init_residual

    def reset_source(self) -> list[str]:
        default = self.zero_init_residual()
        lines = [
            f"    def reset_parameters(self, zero_init_residual: bool = {default}) -> None:",
            '        """First values by each op\'s rule, in the order netc gives them."""',
            "        ctx = InitContext(zero_init_residual=zero_init_residual)",
            "        for path, rule, attrs in INIT_ORDER:",
            "            # a module, or a bare parameter of one (layer_scale)",
            '            owner, _, leaf = path.rpartition(".")',
            "            bare = self.get_submodule(owner)._parameters.get(leaf)",
            "            rule(self.get_submodule(path) if bare is None else bare, attrs, ctx)",
        ]
        return lines

    def build_source(self, root: Klass) -> str:
        rows = []
        for node, rule in self.init_rules():
            wanted = re.findall(r'a\["(\w+)"\]', inspect.getsource(rule))
            attrs = {k: node.attrs[k] for k in dict.fromkeys(wanted)}
            name = f"{rule.__module__}.{rule.__qualname__}" if is_plugins(rule) else rule.__name__
            rows.append(f"    ({string(node.name)}, {name}, {literal(attrs)}),")
        return "\n".join(
            [
                "# every leaf with weights: its path, its initialisation rule, the attributes the",
                "# rule reads",
                "INIT_ORDER: list[tuple[str, Callable[..., None], dict[str, Any]]] = [",
                *rows,
                "]",
                "",
                "",
                "def build(",
                "    seed: int | None = None, zero_init_residual: bool = "
                f"{self.zero_init_residual()}",
                f") -> {root.name}:",
                '    """The network with the weights netc\'s compile(spec, seed=seed) gives it:',
                '    built without memory, then each weight drawn once from ``seed``."""',
                '    with torch.device("meta"):',
                f"        model = {root.name}(init=False)",
                '    model.to_empty(device="cpu")',
                "    if seed is None:",
                "        model.reset_parameters(zero_init_residual)",
                "        return model",
                "    with torch.random.fork_rng(devices=[]):",
                "        torch.manual_seed(seed)",
                "        model.reset_parameters(zero_init_residual)",
                "    return model",
            ]
        )


def emit(graph: Graph) -> str:
    """The standalone source of ``graph``'s network (raises EmitError when it cannot be)."""
    import torch

    if graph.aux:
        raise EmitError(
            "training-only outputs (aux_outputs) have no source form yet: the module switches "
            "its forward by mode"
        )
    if graph.idle:
        raise EmitError(
            "a part's idle values (modules held, never run) have no source form yet: "
            + ", ".join(sorted(graph.idle)[:3])
        )
    with torch.device("meta"):
        tree = plan(graph)
    try:
        source = Emitter(graph, tree).source()
    finally:
        release(graph)
    try:  # what the spec controls is escaped as it is written; this proves the file parses
        ast.parse(source)
    except SyntaxError as e:
        raise EmitError(f"the generated source does not parse (line {e.lineno}: {e.msg})") from None
    return source
