"""The records ``netc emit`` builds a generated class from: its steps (one line of a forward
each), its instances (one per module of the class) and the class as unified over them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..ir.tree import Part
from .calls import BuiltBy, Call


class EmitError(Exception):
    """The network cannot be written as source (the message says which part and why)."""


# ---- the steps of a generated class ---------------------------------------------------------


@dataclass
class Step:
    """One line of a forward: a call of a child module, or of a function."""

    rel: str  # the child's path inside the class ('conv1', 'downsample', 'a.0')
    inputs: list[str]  # references: another step's rel, or '$k' for the k-th argument
    call: Call | None = None  # the child's constructor (None for a function)
    function: Callable[..., Any] | None = None
    extra: tuple[Any, ...] = ()
    parameter: bool = False  # ``call`` makes a bare parameter that ``function`` reads first
    item: int | None = None  # the item-th value of ``function``'s result, a call shared by steps
    runs: str | None = None  # the child whose module it calls, an earlier step's (share:)


@dataclass
class Instance:
    part: Part
    steps: dict[str, Step]  # by rel, in order
    output: str  # reference


@dataclass
class Klass:
    name: str
    doc: str
    env_order: list[str]  # block parameter names, preferred names for constructor arguments
    module_order: list[str] = field(default_factory=list)  # the block type's, if it has one
    instances: list[Instance] = field(default_factory=list)
    envs: list[dict[str, Any]] = field(default_factory=list)
    # filled by unify()
    order: list[str] = field(default_factory=list)
    optional: dict[str, str] = field(default_factory=dict)  # rel -> flag name
    alias: dict[str, str] = field(default_factory=dict)  # rel -> reference used when absent
    params: list[str] = field(default_factory=list)
    values: list[dict[str, Any]] = field(default_factory=list)  # per instance: param -> value
    calls: dict[str, Any] = field(default_factory=dict)  # rel -> Call with Slots
    inputs: dict[str, list[str]] = field(default_factory=dict)  # rel -> references read
    modules: set[str] = field(default_factory=set)  # parameters that are modules
    output: list[str] = field(default_factory=list)  # references returned
    # instances take different numbers of arguments, which one step reads all of (a DenseNet
    # layer concatenates every earlier output): forward(self, *xs)
    varargs: bool = False


def _retarget(call: Any, name: str, where: dict[int, tuple[str, int]]) -> None:
    """Point each instance of class ``name`` that ``call`` builds at its group's class."""
    if isinstance(call, BuiltBy) and call.klass == name:
        # (frozen for hashing elsewhere; a build's plan is rewritten once, here)
        klass, index = where[call.index]
        object.__setattr__(call, "klass", klass)
        object.__setattr__(call, "index", index)
    elif isinstance(call, Call):
        for value in [*call.args, *call.kwargs.values()]:
            _retarget(value, name, where)


def _ref(value: str, part: Part, owner: dict[str, str]) -> str:
    if value in owner:
        return owner[value]
    return f"${part.inputs.index(value)}"


def _type_of(klass: Klass, param: str) -> str:
    """``name: type``, with ``= None`` for a value only some instances use."""
    values = {type(v[param]).__name__ for v in klass.values if v.get(param) is not None}
    kind = values.pop() if len(values) == 1 else "Any"
    if param in klass.modules:
        kind = "nn.Module"
    if any(v.get(param) is None for v in klass.values):
        return f"{param}: {kind} | None = None"
    return f"{param}: {kind}"


def numbered_members(part: Part) -> tuple[str, ...]:
    """The paths below ``part`` with a numbered piece (``resample.3.conv``), sorted: parts of
    one name that differ in these are classes of their own, where members present in some
    instances only stay optional ones of one class."""
    cut = len(part.path) + 1
    paths = {n.name[cut:] for n in part.members}
    return tuple(sorted(p for p in paths if any(piece.isdigit() for piece in p.split("."))))


def frozen(value: Any) -> Any:
    """``value`` as a hashable key with the same equality: a constructor Call as its parts."""
    if isinstance(value, Call):
        kwargs = tuple(sorted((k, frozen(v)) for k, v in value.kwargs.items()))
        return ("Call", value.func, tuple(map(frozen, value.args)), kwargs)
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(map(frozen, value)))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, frozen(v)) for k, v in value.items())))
    return value
