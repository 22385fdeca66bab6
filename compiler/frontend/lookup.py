"""Where block types and shortcut kinds come from: blocks/ folders near a spec, and the built-in
shortcut kinds shipped with the compiler. File-system search only; :mod:`compiler.frontend.spec`
checks what is found."""

from __future__ import annotations

import functools
import os
from typing import Any

from . import fs
from .access import trusted_block_file, trusted_block_folder
from .source import Source, load_file

BLOCK_SEARCH_DEPTH = 3  # blocks/ folders looked for in the spec's folder and this many parents
BUILTIN_SHORTCUTS = os.path.join(os.path.dirname(__file__), "shortcuts.yaml")


def is_block_file(data: Any) -> bool:
    """True for the data of a block type file (``block:`` and ``nodes:``), not a network."""
    return isinstance(data, dict) and isinstance(data.get("block"), str) and "nodes" in data


def block_folders(spec_files: list[str]) -> list[str]:
    """The blocks/ folders a spec may use, nearest first: every file's own folder (the child,
    then what it extends), then each one's parent, and so on; so a blocks/ folder far above the
    child never shadows the library's own."""
    levels = [_folders_above(file) for file in spec_files]
    return list(
        dict.fromkeys(
            f for depth in range(BLOCK_SEARCH_DEPTH + 1) for lv in levels for f in lv[depth]
        )
    )


def _folders_above(spec_file: str) -> list[list[str]]:
    """For depth 0..BLOCK_SEARCH_DEPTH: the blocks/ folder that many levels above the spec's
    folder, as a list of zero or one."""
    folder = os.path.dirname(os.path.abspath(spec_file))
    out = []
    for _ in range(BLOCK_SEARCH_DEPTH + 1):
        candidate = os.path.join(folder, "blocks")
        usable = fs.isdir(candidate) and trusted_block_folder(candidate, library_root())
        out.append([candidate] if usable else [])
        folder = os.path.dirname(folder)
    return out


def find_block_file(name: str, folders: list[str]) -> str | None:
    """The first ``<folder>/<name>.yaml`` that exists, or None. A file that resolves outside
    its folder (a symlink to elsewhere) is passed over, never read."""
    for folder in folders:
        path = os.path.join(folder, f"{name}.yaml")
        if fs.isfile(path) and trusted_block_file(path, folder, library_root()):
            return path
    return None


def available_blocks(folders: list[str]) -> set[str]:
    """Every block type name the folders offer, for did-you-mean notes (an unreadable folder
    offers none)."""
    names: set[str] = set()
    for folder in folders:
        try:
            names.update(f[:-5] for f in os.listdir(folder) if f.endswith(".yaml"))
        except OSError:
            continue
    return names


@functools.cache
def builtin_shortcuts() -> Source:
    """The built-in shortcut kinds (compiler/frontend/shortcuts.yaml), read once per process."""
    return load_file(BUILTIN_SHORTCUTS)


def library_root() -> str:
    """The spec library shipped with netc: ``compiler/specs`` in an installed package, the
    repository's ``specs/`` folder in a source checkout."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the compiler package
    installed = os.path.join(here, "specs")
    return installed if fs.isdir(installed) else os.path.join(os.path.dirname(here), "specs")


def library_spec(name: str) -> str | None:
    """The library file a spec name like ``resnet50`` or ``cifar/resnet20`` stands for."""
    if not name or "\x00" in name or os.path.isabs(name) or ".." in name.split("/"):
        return None
    stem = name[:-5] if name.endswith(".yaml") else name
    path = os.path.join(library_root(), *stem.split("/")) + ".yaml"
    return path if fs.isfile(path) else None


def spec_path(name: str) -> str:
    """A file that exists as given, else the library spec of that name, else ``name`` unchanged
    (the loader then reports it missing). A path into the source tree's ``specs/`` folder that
    is not there (netc installed from a wheel, run elsewhere) names the library's file:
    ``specs/resnet50.yaml``, ``specs/blocks/bottleneck.yaml``."""
    if fs.exists(name):
        return name
    inside = name[len("specs/") :] if name.startswith("specs/") else None
    return library_spec(name) or (inside and library_spec(inside)) or name
