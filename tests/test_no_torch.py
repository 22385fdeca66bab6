"""The front end never imports torch: ``netc check`` and ``compiler.load_spec`` stay instant."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

PROBE = """
import sys
import compiler
from compiler.tools.cli import main
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
