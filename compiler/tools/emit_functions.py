"""A function-call step of ``netc emit``'s forward as source lines (``a + b``, ``torch.cat``,
a helper copied from compiler.lowering.modules, a plugin's function by its module), and whether
a class or function comes from an enabled plugin."""

from __future__ import annotations

import operator
from typing import Any

from ..lowering import modules as netc_modules
from ..ops import plugins
from ..pysource import literal
from .emit_records import EmitError, Step


def is_plugins(thing: Any) -> bool:
    """Whether ``thing`` (a class or function) belongs to an enabled plugin's package: the
    emitted file imports it from there (the plugin is a dependency of the file, as torch is)."""
    module = getattr(thing, "__module__", None) or ""
    tops = {p.split(".")[0] for p in plugins.enabled()}
    return module.split(".")[0] in tops


def function_lines(step: Step, ins: list[str], target: str) -> list[str]:
    """``target = f(ins..., extra...)`` in the form the reference writes it."""
    fn = step.function
    extra = ", ".join(literal(e) for e in step.extra)
    if fn is operator.iadd:
        return [f"{ins[0]} += {ins[1]}", f"{target} = {ins[0]}"]
    infix = {operator.add: "+", operator.mul: "*", operator.sub: "-", operator.truediv: "/"}
    if fn in infix:
        return [f"{target} = {f' {infix[fn]} '.join(ins)}"]
    name = getattr(fn, "__name__", "")
    args = ", ".join([*ins, extra] if extra else ins)
    if getattr(fn, "__module__", "") == netc_modules.__name__:
        return [f"{target} = {name}({args})"]
    if is_plugins(fn):
        return [f"{target} = {fn.__module__}.{getattr(fn, '__qualname__', name)}({args})"]
    import torch

    if getattr(torch, name, None) is fn:
        return [f"{target} = torch.{name}({args})"]
    raise EmitError(f"no source form for the function {fn!r}")
