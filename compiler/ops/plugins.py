"""User ops from the user's own Python packages, enabled by the user, never by a spec.

A plugin is a Python module that declares ``NETC_OPS``: a list of :class:`Op` records built as
netc's own ops are (attributes, shape rule, counts, torch lowering; an ONNX rule if it has one).
It is enabled by naming its module: ``netc --plugin pkg.module ...`` on the command line,
``NETC_PLUGINS=pkg.module,other.module`` in the environment, or ``compiler.enable_plugin(...)``
in Python. Nothing a spec says can enable one: a spec names ops, and an op that no enabled
plugin provides is an unknown op.

An installed package may also list its ops in the ``netc.ops`` entry-point group (``op name =
"module"``): netc then knows which plugin would provide an op a spec names and says so in the
error, but loads nothing until the user enables it.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
from collections.abc import Iterable, Sequence

from .records import DIAGRAM_KINDS, Op

ENVIRONMENT = "NETC_PLUGINS"  # comma-separated modules to enable
ENTRY_POINTS = "netc.ops"  # entry-point group: op name -> the module that declares it
DECLARATION = "NETC_OPS"  # the list of Op records a plugin module declares

_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_OP_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_ATTR_KINDS = ("int", "float", "bool", "str", "ints", "size")

_enabled: dict[str, tuple[str, ...]] = {}  # module -> the op names it added, in order


class PluginError(Exception):
    """A plugin cannot be enabled: not importable, no NETC_OPS, or an op it declares is bad."""


def enable(module: str, table: dict[str, Op]) -> tuple[str, ...]:
    """Import ``module`` and add the ops it declares to ``table`` (netc's OPS); returns their
    names. Enabling a module twice is a no-op. Raises PluginError, adding nothing, when the
    module cannot be imported or any of its ops is refused."""
    if not isinstance(module, str) or not _MODULE.fullmatch(module):
        raise PluginError(f"a plugin is a Python module name like pkg.ops, got {module!r}")
    if module in _enabled:
        return _enabled[module]
    try:
        loaded = importlib.import_module(module)
    except Exception as e:  # the user's code: any failure is reported as theirs
        raise PluginError(f"plugin {module}: cannot import it ({type(e).__name__}: {e})") from e
    declared = getattr(loaded, "NETC_OPS", None)  # DECLARATION, a literal for the safety test
    if not isinstance(declared, (list, tuple)) or not declared:
        raise PluginError(
            f"plugin {module} declares no ops: it needs {DECLARATION}, a list of "
            "compiler.ops.Op records"
        )
    problems = [p for op in declared for p in _problems(op, module, table, declared)]
    if problems:
        raise PluginError(f"plugin {module}: " + "; ".join(problems))
    ops = [op for op in declared if isinstance(op, Op)]
    for op in ops:
        table[op.name] = dataclasses.replace(op, plugin=module)
    _enabled[module] = tuple(op.name for op in ops)
    return _enabled[module]


def _problems(
    op: object, module: str, table: dict[str, Op], declared: Sequence[object]
) -> list[str]:
    """Why an entry of a plugin's NETC_OPS cannot join the table (the built-ins' invariants)."""
    if not isinstance(op, Op):
        return [f"{DECLARATION} holds {type(op).__name__}, not an Op record"]
    name = op.name
    out = []
    if not isinstance(name, str) or not _OP_NAME.fullmatch(name):
        return [f"op name {name!r} must be lower-case letters, digits and _ (at most 64)"]
    if name in table:
        owner = table[name].plugin
        out.append(
            f"op '{name}' is already "
            + (f"provided by the plugin {owner}" if owner else "one of netc's own ops")
        )
    if sum(o.name == name for o in declared if isinstance(o, Op)) > 1:
        out.append(f"op '{name}' is declared twice")
    if not (isinstance(op.doc, str) and op.doc):
        out.append(f"op '{name}' has no doc line")
    if op.diagram not in DIAGRAM_KINDS:
        out.append(f"op '{name}': diagram must be one of {', '.join(DIAGRAM_KINDS)}")
    rules = (op.shape, op.lower, op.label, op.params, op.macs)
    if not all(callable(r) for r in rules) or not (op.onnx is None or callable(op.onnx)):
        out.append(f"op '{name}': shape, lower, label, params, macs and onnx must be callables")
    least, most = op.inputs
    if least < 1 or (most is not None and most < least):
        out.append(f"op '{name}': inputs must be (least >= 1, most >= least or None)")
    for key, attr in op.attrs.items():
        if attr.kind not in _ATTR_KINDS:
            out.append(f"op '{name}': attribute '{key}' has kind {attr.kind!r}")
        elif attr.kind == "str" and not attr.choices:
            out.append(f"op '{name}': text attribute '{key}' must list its choices")
    return out


def without_onnx(nodes: Iterable[tuple[str, str, object]], table: dict[str, Op]) -> list[str]:
    """For each (node name, op, location) whose op has no ONNX rule: why it cannot be exported,
    located and naming the op and the plugin that declared it."""
    return [
        f"{loc}: error: node '{name}': op '{op}' (plugin {table[op].plugin or 'netc'}) has no "
        "ONNX rule, so the network cannot be exported"
        for name, op, loc in nodes
        if table[op].onnx is None
    ]


def enabled() -> tuple[str, ...]:
    """The modules enabled in this process, in the order they were."""
    return tuple(_enabled)


def from_environment(table: dict[str, Op]) -> None:
    """Enable the modules ``NETC_PLUGINS`` names (comma-separated)."""
    for module in os.environ.get(ENVIRONMENT, "").split(","):
        if module.strip():
            enable(module.strip(), table)


def provider(op_name: str) -> str | None:
    """The module an installed package's ``netc.ops`` entry point names for ``op_name`` (read
    from the packages' metadata: nothing is imported), or None."""
    from importlib.metadata import entry_points

    if not _OP_NAME.fullmatch(op_name):
        return None
    for point in entry_points(group=ENTRY_POINTS, name=op_name):
        module = point.value.split(":")[0].strip()
        if _MODULE.fullmatch(module):
            return module
    return None


def disable_all(table: dict[str, Op]) -> None:
    """Take every plugin's ops out of ``table`` (tests; a process normally keeps them)."""
    for names in _enabled.values():
        for name in names:
            table.pop(name, None)
    _enabled.clear()
