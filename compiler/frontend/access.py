"""Which files a spec may make netc read: the rule of docs/threat-model.md, in one place.

The spec a user names is read whatever its folder (they chose it). What that spec names in turn
is not the user's choice, so it is confined:

- an ``extends:`` target resolves (symlinks followed) to a regular ``.yaml``/``.yml`` file inside
  the named spec's own folder tree, the library, or a folder of ``NETC_PATH`` (``--path``);
- a block file is ``<name>.yaml`` in a ``blocks/`` folder beside a spec of the chain or up to
  three folders above it, and resolves inside that ``blocks/`` folder, which itself resolves
  inside the folder holding it; or inside the library or a ``NETC_PATH`` folder.

A file outside these is refused by name before it is opened, so no error can quote it.
"""

from __future__ import annotations

import os

from . import fs

SEARCH_PATH = "NETC_PATH"  # folders a user trusts specs to read, os.pathsep-separated
SPEC_SUFFIXES = (".yaml", ".yml")


def search_path() -> list[str]:
    """The folders of ``NETC_PATH``, as real paths."""
    return [fs.realpath(p) for p in os.environ.get(SEARCH_PATH, "").split(os.pathsep) if p]


def roots(named_spec: str, library: str) -> list[str]:
    """The folders an ``extends:`` chain starting at ``named_spec`` may read from."""
    here = os.path.dirname(os.path.abspath(named_spec))
    found = [fs.realpath(here), fs.realpath(library), *search_path()]
    return list(dict.fromkeys(found))


def inside(path: str, folder: str) -> bool:
    """Whether ``path`` (a real path) lies in ``folder`` (a real path) or below it."""
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:  # different drives
        return False


def refusal(path: str, allowed: list[str]) -> str | None:
    """Why ``path`` may not be read as a referenced spec file ("lies outside ..."), or None."""
    real = fs.realpath(path)
    via = "" if real == os.path.abspath(path) else f"resolves to {real}, which "
    if not any(inside(real, root) for root in allowed):
        return (
            f"{via}lies outside the folders a spec may read (the named spec's folder, the "
            f"library, and {SEARCH_PATH} or --path)"
        )
    if not real.endswith(SPEC_SUFFIXES):
        return f"{via}is not a .yaml or .yml file"
    root = next(r for r in allowed if inside(real, r))
    if any(part.startswith(".") for part in os.path.relpath(real, root).split(os.sep)):
        return f"{via}lies in a hidden folder or file (.git, .aws...), which a spec does not read"
    return None


def trusted_block_folder(folder: str, library: str) -> bool:
    """Whether a ``blocks/`` folder may be read: it resolves inside the folder holding it (a
    symlink may not lead it elsewhere), or inside the library or a ``NETC_PATH`` folder."""
    real = fs.realpath(folder)
    allowed = [fs.realpath(os.path.dirname(folder)), fs.realpath(library)]
    return any(inside(real, root) for root in [*allowed, *search_path()])


def trusted_block_file(path: str, folder: str, library: str) -> bool:
    """Whether a block file found in ``folder`` resolves inside it (or an allowed folder)."""
    real = fs.realpath(path)
    allowed = [fs.realpath(folder), fs.realpath(library), *search_path()]
    return any(inside(real, root) for root in allowed)
