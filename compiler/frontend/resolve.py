"""`extends:` chains and `--set` overrides, merged at the data level with locations kept.

A child spec is deep-merged onto its base: mappings merge key by key (base order first, new keys
appended), any other value replaces, and ``null`` deletes a key. Each merged value keeps the
location of the file (or command-line argument) it came from, so later errors point there.

``params`` is the one mapping whose keys a spec invents, so a misspelt one would pass unseen: a
child spec or an override may set only the parameters its base declares, and adds a new one
by writing it with a ``+`` (``+params.depth=3``, or ``+depth: 3`` under a child's ``params``), as
Hydra's overrides do.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import (
    OVERRIDES_SHOWN_AS,
    Diagnostic,
    Diagnostics,
    Loc,
    SpecError,
    command_line_loc,
    did_you_mean,
    overrides_file,
    suffix_hint,
)
from . import fs
from .access import SEARCH_PATH, refusal, roots
from .lookup import library_root, library_spec, spec_path
from .source import Path, Source, load_file, parse

MAX_EXTENDS = 16  # depth of an extends chain


def load_resolved(path: str, overrides: list[str] | None = None) -> Source:
    """Load ``path`` (a file, or a library spec name like ``resnet50``) with its extends chain
    merged and the overrides applied."""
    named = spec_path(path)
    if not fs.exists(named):
        from .library import library_name, spec_files

        root = library_root()
        known = [library_name(p, root) for p in spec_files(root)]
        stem = path[:-5] if path.endswith(".yaml") else path
        raise SpecError.at(Loc(path, 0, 0), f"no such file: {path}", did_you_mean(stem, known))
    src = _load_chain(named, [], allowed=roots(named, library_root()))
    if overrides:
        src = apply_overrides(src, overrides)
    return src


def _load_chain(
    path: str, chain: list[str], allowed: list[str], via: Loc | None = None, real: str = ""
) -> Source:
    """Load ``path`` and what it extends; a base is opened by the ``real`` path its check
    resolved (a symlink changed in between cannot lead the read elsewhere)."""
    real = real or os.path.realpath(path)
    try:
        src = load_file(real if via is not None else path, shown_as=path)
    except SpecError as e:
        if via is not None and e.diagnostics and e.diagnostics[0].loc.line == 0:
            msg = e.diagnostics[0].message
            raise SpecError.at(via, f"cannot extend: {msg}") from None
        raise
    if real in chain:
        loop = " -> ".join(os.path.basename(p) for p in [*chain, real])
        raise SpecError.at(via or src.loc(()), f"extends loop: {loop}")
    if not isinstance(src.data, dict) or "extends" not in src.data:
        return src
    parent = src.data["extends"]
    loc = src.loc(("extends",))
    if not isinstance(parent, str) or not parent.strip() or "\x00" in parent:
        raise SpecError.at(loc, "'extends' must be a file or library spec, like resnet50.yaml")
    if len(chain) >= MAX_EXTENDS:
        raise SpecError.at(loc, f"extends chain deeper than {MAX_EXTENDS}")
    base_path = os.path.normpath(os.path.join(os.path.dirname(path), parent))
    if not fs.exists(base_path):  # 'extends: resnet50' names a library spec
        base_path = library_spec(parent) or base_path
    elif why := refusal(base_path, allowed):  # checked before the file is opened
        raise SpecError.at(
            loc,
            f"cannot extend: {shown_path(base_path)} {why}",
            f"name its folder with --path or {SEARCH_PATH} if you trust it",
        )
    base = _load_chain(shown_path(base_path), [*chain, real], allowed, loc, fs.realpath(base_path))
    child = dict(src.data)
    del child["extends"]
    if "name" in child and "description" not in child:
        child["description"] = None  # a network renamed is not described by its base's text
    replace = child.pop("replace", [])
    if not isinstance(replace, list) or not all(isinstance(r, str) for r in replace):
        raise SpecError.at(
            src.loc(("replace",)), "'replace' must be a list of keys, like [stem, head]"
        )
    paths = {tuple(r.split(".")) for r in replace}
    child_src = Source(src.file, child, src.values, src.keys)
    if ("params",) not in paths:  # 'replace: [params]' declares the parameters afresh
        child_src = _new_params(child_src, base)
    return _placed(merge(base, child_src, paths), child)


PLACES = ("after", "before")  # where a child spec puts an entry of a section
_SECTIONS = ("stem", "stages", "head")


def _placed(merged: Source, child: dict[str, Any]) -> Source:
    """The merge with each section entry the child marks ``after: name`` or ``before: name``
    moved there (a merge puts an entry the base lacks at the end of its section), the marks
    removed."""
    data = dict(merged.data)
    diags = Diagnostics()
    for section in _SECTIONS:
        own, entries = child.get(section), data.get(section)
        if not isinstance(own, dict) or not isinstance(entries, dict):
            continue
        marked = [k for k, v in own.items() if isinstance(v, dict) and any(p in v for p in PLACES)]
        if not marked:
            continue
        order = list(entries)
        entries = {k: dict(v) if k in marked else v for k, v in entries.items()}
        for name in marked:
            entry = entries[name]
            places = [p for p in PLACES if p in entry]
            where = merged.loc((section, name, places[0]))
            target = entry.pop(places[0])
            if len(places) > 1:
                diags.error(where, f"'{name}' is placed both after and before; give one")
                continue
            if not isinstance(target, str) or target == name or target not in order:
                others = [k for k in order if k != name]
                diags.error(
                    where,
                    f"'{places[0]}' of '{name}' must name another entry of {section}"
                    f"{suffix_hint(str(target), others)}",
                    f"{section}: " + ", ".join(others),
                )
                continue
            order.remove(name)
            order.insert(order.index(target) + (places[0] == "after"), name)
        data[section] = {k: entries[k] for k in order}
    diags.raise_if_any()
    return Source(merged.file, data, merged.values, merged.keys, merged.chain)


NEW = "+"  # marks a parameter a child spec or an override adds to its base's


def _new_params(child: Source, base: Source) -> Source:
    """``child`` with each ``+name`` under its ``params`` written ``name``; a name without the
    ``+`` that its base does not declare is an error (a typo would set nothing)."""
    params = child.data.get("params")
    if not isinstance(params, dict):
        return child
    declared = base.data.get("params") if isinstance(base.data, dict) else None
    declared = declared if isinstance(declared, dict) else {}
    diags = Diagnostics()
    renamed: dict[str, str] = {}
    for key in params:
        name = key[len(NEW) :] if isinstance(key, str) and key.startswith(NEW) else None
        if name is not None and name in declared:
            diags.error(
                child.key_loc(("params", key)),
                f"'{name}' is already a parameter of the base spec; set it without the '+'",
            )
        elif name is not None:
            renamed[key] = name
        elif key not in declared:
            diags.error(
                child.key_loc(("params", key)),
                f"the base spec has no parameter '{key}'{suffix_hint(str(key), declared)}",
                f"to add a new parameter, write it as '{NEW}{key}'",
            )
    diags.raise_if_any()
    if not renamed:
        return child
    data = dict(child.data)
    data["params"] = {renamed.get(k, k): v for k, v in params.items()}

    def moved(index: dict[Path, Loc]) -> dict[Path, Loc]:
        return {
            (p[0], renamed[p[1]], *p[2:])
            if p[:1] == ("params",) and len(p) > 1 and p[1] in renamed
            else p: loc
            for p, loc in index.items()
        }

    return Source(child.file, data, moved(child.values), moved(child.keys), child.chain)


WHOLE: set[Path] = {("sizes",)}  # mappings a child states whole, never merged key by key


def merge(base: Source, child: Source, replace: set[Path] | None = None) -> Source:
    """Deep-merge ``child`` onto ``base``; the result's index points at whichever file won.

    Mappings at the paths in ``replace`` are taken whole from the child instead of merged, as
    is always ``sizes`` (a rule is one statement: a child's {multiple: 16} drops its base's
    remainder rather than keeping it).
    """
    replaced: list[Path] = []
    whole = (replace or set()) | WHOLE

    def walk(b: Any, c: Any, path: Path) -> Any:
        if isinstance(b, dict) and isinstance(c, dict) and path not in whole:
            out = dict(b)
            for k, v in c.items():
                if v is None:
                    out.pop(k, None)
                    replaced.append((*path, k))
                elif k in out:
                    out[k] = walk(out[k], v, (*path, k))
                else:
                    out[k] = v
            return out
        replaced.append(path)
        return c

    data = walk(base.data, child.data, ())
    values = {p: loc for p, loc in base.values.items() if not _under_any(p, replaced)}
    keys = {p: loc for p, loc in base.keys.items() if not _under_any(p, replaced, strict=True)}
    values.update({p: loc for p, loc in child.values.items() if p != ()})
    keys.update(child.keys)
    chain = [child.file, *(base.chain or [base.file])]
    return Source(child.file, data, values, keys, list(dict.fromkeys(chain)))


def _under_any(path: Path, prefixes: list[Path], strict: bool = False) -> bool:
    return any(path[: len(pre)] == pre and (not strict or len(path) > len(pre)) for pre in prefixes)


def apply_overrides(src: Source, overrides: list[str]) -> Source:
    """Apply ``key.path=value`` overrides; errors are located on the command line."""
    diags = Diagnostics()
    for text in overrides:
        loc = command_line_loc(text)
        if "=" not in text:
            diags.error(
                loc,
                f"override '{text}' must look like key.path=value",
                f"for example: {OVERRIDES_SHOWN_AS.get()[1]}stages.layer3.repeat=23",
            )
            continue
        key, value_text = text.split("=", 1)
        adding = key.startswith(NEW)
        try:
            path = _find_path(src.data, key[len(NEW) :] if adding else key, loc, adding)
        except SpecError as e:
            diags.extend(e)
            continue
        try:
            value_src = parse(value_text, overrides_file()) if value_text.strip() else None
        except SpecError as e:
            diags.items.extend(_relocate(d, text, len(key) + 1) for d in e.diagnostics)
            continue
        vloc = loc.shifted(len(key) + 1)
        value = value_src.data if value_src else None
        child_values = {path: vloc}
        if value_src:
            child_values.update({(*path, *p): vloc for p in value_src.values if p})
        nested: Any = value
        for seg in reversed(path):
            nested = {seg: nested}
        src = merge(src, Source(src.file, nested, child_values, {path: loc}))
    diags.raise_if_any()
    return src


def _relocate(d: Diagnostic, item: str, offset: int) -> Diagnostic:
    """A diagnostic about an override's value, moved to where the value sits in ``item``."""
    if d.loc.file != overrides_file():
        return d
    return Diagnostic(command_line_loc(item, offset + d.loc.col), d.message, d.notes)


def _find_path(data: Any, key: str, loc: Loc, adding: bool = False) -> Path:
    """Split a dotted key against the data; names that contain dots (``conv1.0``) match whole.
    A new parameter needs ``adding`` (the override's ``+``); an existing one refuses it."""
    parts = key.split(".")
    path: list[str] = []
    node = data
    col = 0
    while parts:
        if not isinstance(node, dict):
            where = ".".join(path) or "the spec"
            raise SpecError.at(loc.shifted(col), f"'{where}' is not a mapping")
        for n in range(len(parts), 0, -1):
            name = ".".join(parts[:n])
            if name in node:
                break
        else:
            name, n = parts[0], 1
            if len(parts) > 1:
                where = ".".join(path) or "the spec"
                raise SpecError.at(
                    loc.shifted(col), f"no key '{name}' in {where}{suffix_hint(name, node)}"
                )
        if path == ["params"]:
            _check_param(name, node, adding, loc.shifted(col + (len(NEW) if adding else 0)))
        path.append(name)
        col += len(name) + 1
        node = node.get(name) if isinstance(node, dict) else None
        parts = parts[n:]
    return tuple(path)


def _check_param(name: str, declared: dict[str, Any], adding: bool, loc: Loc) -> None:
    if adding and name in declared:
        raise SpecError.at(
            loc, f"'{name}' is already a parameter of the spec; set it without the '+'"
        )
    if not adding and name not in declared:
        raise SpecError.at(
            loc,
            f"the spec has no parameter '{name}'{suffix_hint(name, declared)}",
            f"to add a new parameter, write +params.{name}=...",
        )


def shown_path(path: str) -> str:
    """A path as the user would write it: relative to the working folder when below it."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel
