"""Checks of the Python API's arguments, made before any work is done.

The arguments of ``compile`` and ``load_spec`` are untrusted like a spec, but Python quietly
accepts the wrong types for them: ``seed=1.5`` would seed 1, ``zero_init_residual="no"`` is
truthy, and a string where a list belongs is read one character at a time. Each helper here
takes the function's name (for the message), the argument's name and its value, and returns the
value as the caller needs it or raises TypeError / ValueError phrased for Python callers.

The command line calls the same functions with the right types, so nothing here can trip on
its input; what a string says (an override's key, a missing file) is checked by the loader and
reported as a located SpecError, the same for both.
"""

from __future__ import annotations

import itertools
import numbers
import os
import reprlib
from collections.abc import Iterable, Mapping, Set
from typing import TypeVar

SEED_RANGE = (-(2**63), 2**64 - 1)  # what torch.manual_seed accepts
MAX_ITEMS = 10_000  # overrides or outputs: an endless iterator must not hang the call

# a wrong value is shown in part: the repr of a huge list or int is costly to make and to read
_REPR = reprlib.Repr()  # (Python 3.11's takes no settings as arguments)
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlong = 40

T = TypeVar("T")


def got(value: object) -> str:
    """``float 1.5``, ``str 'no'``: the type and a short repr of a wrong value."""
    return f"{type(value).__name__} {_REPR.repr(value)}"


def spec_path(fn: str, value: object, graph_ok: bool = False) -> str:
    """A spec file or library name, as a str (os.PathLike is accepted). An empty or missing
    path is left to the loader, whose SpecError the command line reports as it does for any
    other missing file."""
    text = _path_text(value)
    if text is None:
        wanted = "a file path (str or os.PathLike) or a library name like 'resnet50'"
        if graph_ok:
            wanted += ", or a Graph from load_spec()"
        raise TypeError(f"{fn}: the spec must be {wanted}, got {got(value)}")
    if "\x00" in text:
        raise ValueError(f"{fn}: the spec path must not contain a NUL character, got {text!r}")
    return text


def weights_path(fn: str, value: object) -> str | os.PathLike[str] | None:
    """A checkpoint path, ``'torchvision'`` or ``'torchvision:NAME'``, or None; returned as
    given (only a str names published weights: ``Path('torchvision')`` is a file)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, os.PathLike) and isinstance(os.fspath(value), str):
        return value
    raise TypeError(
        f"{fn}: weights must be a checkpoint path (str or os.PathLike), 'torchvision' or "
        f"'torchvision:NAME', or None, got {got(value)}"
    )


def part_weights(fn: str, value: object) -> dict[str, str | os.PathLike[str]] | None:
    """``{part path: checkpoint or 'torchvision[:NAME]'}``, or None."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise TypeError(
            f"{fn}: part_weights must map part paths to weights, like {{'backbone': "
            f"'torchvision'}}, got {got(value)}"
        )
    return {k: weights_path(f"{fn} part_weights[{k!r}]", v) or "" for k, v in value.items()}


def _path_text(value: object) -> str | None:
    """The str a path argument stands for, or None when it is not a str path (bytes paths
    are refused: every message and lookup here works on str)."""
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        text = os.fspath(value)
        return text if isinstance(text, str) else None
    return None


def flag(fn: str, name: str, value: object) -> bool:
    """A bool, strictly: ``"no"`` and ``1`` are not flags."""
    if not isinstance(value, bool):
        raise TypeError(f"{fn}: {name} must be True or False, got {got(value)}")
    return value


def optional_flag(fn: str, name: str, value: object) -> bool | None:
    """A bool or None (None: the spec's own setting)."""
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"{fn}: {name} must be True, False or None, got {got(value)}")
    return value


def seed(fn: str, value: object) -> int | None:
    """An int seed within torch's range, or None; a bool is not a seed (True would seed 1)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{fn}: seed must be an int or None, got {got(value)}")
    number = int(value)
    low, high = SEED_RANGE
    if not low <= number <= high:
        raise ValueError(f"{fn}: seed must be from -2**63 to 2**64 - 1, got {number}")
    return number


def overrides(fn: str, value: object) -> list[str] | None:
    """``key.path=value`` strings, as a list (any ordered iterable is read once, here)."""
    if value is None:
        return None
    # what each string says is checked against the spec by the loader, as for --set
    return _strings(fn, "overrides", value, "a list of 'key.path=value' strings")


def names(fn: str, name: str, value: object) -> list[str] | None:
    """A non-empty list of non-empty names (stages, blocks or nodes), or None."""
    if value is None:
        return None
    items = _strings(fn, name, value, "a list of names")
    if not items:
        raise ValueError(f"{fn}: {name} must list at least one name")
    for i, item in enumerate(items):
        if not item.strip():
            raise ValueError(f"{fn}: {name}[{i}] must be a name, got {item!r}")
    return items


def _strings(fn: str, name: str, value: object, wanted: str) -> list[str]:
    """``value`` as a list of str. Refused: a str (its characters would be read as items), a
    mapping (its keys), a set (no order), and any item that is not a str."""
    if isinstance(value, str):
        raise TypeError(f"{fn}: {name} must be {wanted}, got str: did you mean [{value!r}]?")
    if isinstance(value, (bytes, Mapping, Set)) or not isinstance(value, Iterable):
        raise TypeError(f"{fn}: {name} must be {wanted}, got {got(value)}")
    items: list[str] = []
    for i, item in enumerate(itertools.islice(value, MAX_ITEMS + 1)):
        if not isinstance(item, str):
            raise TypeError(f"{fn}: {name} must be {wanted}, got {got(item)} at [{i}]")
        items.append(item)
    if len(items) > MAX_ITEMS:
        raise ValueError(f"{fn}: {name} has more than {MAX_ITEMS:,} items")
    return items


def instance(fn: str, name: str, value: object, cls: type[T], shown: str) -> T | None:
    """An instance of ``cls`` (called ``shown`` in the message) or None."""
    if value is not None and not isinstance(value, cls):
        raise TypeError(f"{fn}: {name} must be a {shown} or None, got {got(value)}")
    return value


def whole(owner: str, name: str, value: object) -> int:
    """An int that is not a bool (a cap of True would be a cap of 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an int, got {got(value)}")
    return int(value)
