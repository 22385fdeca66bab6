"""The front end never imports torch: ``netc check`` and ``compiler.load_spec`` stay instant."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PROBE = """
import sys
import compiler
from compiler.cli import main
g = compiler.load_spec("specs/resnet152.yaml")
assert g.params == 60192808
assert main(["check", "-q", "specs/resnet50.yaml", "specs/resnet50d.yaml"]) == 0
assert main(["check", "-q", "tests/invalid/channel_mismatch.yaml"]) == 2
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "onnx", "onnxruntime",
                                                             "graphviz", "numpy"})
print(heavy)
"""


def test_load_spec_and_check_do_not_import_torch() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_compiler_never_imports_the_exporters() -> None:
    # exporters/ imports compiler/, so the arrow runs one way; only the command line, which
    # offers every command, reaches down into exporters/
    root = Path(__file__).resolve().parent.parent / "compiler"
    found = []
    for path in root.rglob("*.py"):
        if path.name == "cli.py" and path.parent == root:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            found += [f"{path.relative_to(root)}: {n}" for n in names if n.startswith("exporters")]
    assert found == []
