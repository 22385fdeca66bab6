"""The house's arrows run one way: each layer of ``compiler/`` imports only the layers below it,
and only the command line reaches into ``exporters/`` (docs/design.md, "Layout")."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

COMPILER = ROOT / "compiler"
# lowest first; the top-level modules beside the folders (errors, atomic, pysource, gc_pause) are
# the base every layer shares; compiler/__init__.py (the Python API: compile, load_spec) uses the
# front end and the lowering, and the tools use it; ``python -m compiler`` runs the command line
ORDER = ["base", "ops", "ir", "frontend", "lowering", "api", "tools", "main"]
# an op's torch lowering builds the modules torch.nn lacks, imported when it runs (never at import
# time, so that the front end stays torch-free)
RUNTIME_ONLY = {("ops", "compiler.lowering.modules")}


def _layer(module: str) -> str:
    parts = module.split(".")
    if parts == ["compiler"]:
        return "api"
    if parts[1] in ORDER:
        return parts[1]
    return "main" if parts[1] == "__main__" else "base"


def _imports(path: Path) -> list[tuple[str, bool]]:
    """The compiler modules ``path`` imports, each with whether the import runs at import time."""
    rel = path.relative_to(ROOT).with_suffix("").parts
    package = list(rel[:-1])  # a module's package; an __init__'s is its own folder
    out = []
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            if target.startswith("compiler"):
                subs = [f"{target}.{a.name}" for a in node.names]
                named = [s for s in subs if (ROOT / (s.replace(".", "/") + ".py")).exists()]
                out += [(t, id(node) in top) for t in (named or [target])]
    return out


def test_each_layer_imports_only_the_layers_below_it() -> None:
    wrong = []
    for path in sorted(COMPILER.rglob("*.py")):
        if "specs" in path.relative_to(COMPILER).parts:
            continue
        rel = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(rel[:-1] if rel[-1] == "__init__" else rel)
        here = _layer(module)
        for target, at_import in _imports(path):
            there = _layer(target)
            if ORDER.index(there) <= ORDER.index(here):
                continue
            if not at_import and (here, target) in RUNTIME_ONLY:
                continue
            wrong.append(f"{module} ({here}) imports {target} ({there})")
    assert wrong == []


def test_a_misplaced_import_is_caught() -> None:
    # the check above can fail: the front end reaching up into the torch back end
    probe = COMPILER / "frontend" / "_probe_layers.py"
    probe.write_text("from ..lowering import lower\n")
    try:
        assert _imports(probe) == [("compiler.lowering.lower", True)]
        assert ORDER.index(_layer("compiler.lowering.lower")) > ORDER.index(
            _layer("compiler.frontend._probe_layers")
        )
    finally:
        probe.unlink()


def test_the_compiler_never_imports_the_exporters() -> None:
    # exporters/ imports compiler/, so the arrow runs one way; only the command line, which
    # offers every command, reaches down into exporters/
    found = []
    for path in COMPILER.rglob("*.py"):
        if path == COMPILER / "tools" / "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            found += [
                f"{path.relative_to(COMPILER)}: {n}" for n in names if n.startswith("exporters")
            ]
    assert found == []
