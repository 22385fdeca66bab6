"""Constructor calls with literal values: what `netc emit` records of each module it rebuilds,
unifies across the instances of a class (a literal that differs becomes a :class:`Slot`, an
argument of the class), and writes as source."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from ..pysource import literal


@dataclass
class Call:
    """A constructor call: ``func(*args, **kwargs)``; leaves of the tree are literal values."""

    func: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)  # written only when they differ


@dataclass(frozen=True)
class BuiltBy:
    """A module that a generated class builds: the class's name, and which of its instances."""

    klass: str
    index: int


TUPLE = ""  # a Call of no function: a tuple literal


@dataclass
class Slot:
    """A literal that differs between a class's instances: a constructor argument."""

    name: str


# arguments that are a tensor's shape, not one size per side: a layer norm's (4, 4) is no 4
_SHAPES = {"normalized_shape"}


def leaf_call(module: Any) -> Call:
    """The torch.nn constructor call that rebuilds ``module`` (from its signature and the
    attributes of the same names)."""
    cls = type(module)
    prefix = "nn." if cls.__module__.startswith("torch.nn") else ""
    call = Call(prefix + cls.__name__)
    for name, param in list(inspect.signature(cls.__init__).parameters.items())[1:]:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or name in ("device", "dtype"):
            continue
        if param.default is not param.empty and not hasattr(module, name):
            continue  # a deprecated alias the module does not keep (Hardtanh's min_value)
        value = getattr(module, name)
        if name == "bias" and not isinstance(value, bool):
            value = value is not None
        if (
            isinstance(value, tuple)
            and value
            and all(v == value[0] for v in value)
            and (name not in _SHAPES or len(value) == 1)
        ):
            value = value[0]  # (3, 3) -> 3: the constructors take either
        if param.default is param.empty:
            call.args.append(value)
        else:
            call.kwargs[name] = value
            call.defaults[name] = param.default
    return call


def render(value: Any) -> str:
    """The source of a constructor call, a tuple or a literal; a Sequential of several
    members one per line."""
    if isinstance(value, Slot):
        return value.name
    if isinstance(value, Call):
        parts = [render(a) for a in value.args]
        if value.func == TUPLE:
            return f"({', '.join(parts)}{',' if len(parts) == 1 else ''})"
        parts += [
            f"{k}={render(v)}"
            for k, v in value.kwargs.items()
            if isinstance(v, Slot) or k not in value.defaults or v != value.defaults[k]
        ]
        text = f"{value.func}({', '.join(parts)})"
        if value.func == "nn.Sequential" and len(parts) > 1:
            inner = ",\n".join(f"            {p}" for p in _runs(value.args))
            return f"nn.Sequential(\n{inner},\n        )"
        return text
    return literal(value)


def _runs(calls: list[Any]) -> list[str]:
    """Sequential members; a run of identical calls is written once, repeated."""
    out: list[str] = []
    texts = [render(c) for c in calls]
    k = 0
    while k < len(texts):
        j = k
        while j + 1 < len(texts) and texts[j + 1] == texts[k]:
            j += 1
        count = j - k + 1
        out.append(texts[k] if count < 3 else f"*[{texts[k]} for _ in range({count})]")
        if count == 2:
            out.append(texts[k])
        k = j + 1
    return out
