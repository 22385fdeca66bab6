"""Shared helpers: paths, the CLI runner, and reference-model builders."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import TypeVar

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
TESTS = Path(__file__).resolve().parent
T = TypeVar("T")


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run ``netc ARGS`` in-process; returns (exit status, stdout, stderr)."""
    from compiler.tools.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as e:  # argparse --help / usage errors
            code = int(e.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def in_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from the repository root, so paths print as the README shows them."""
    monkeypatch.chdir(ROOT)
    return ROOT


def bounded(call: Callable[[], T], seconds: float = 10.0) -> T:
    """``call()``'s result, failing the test if it takes longer than ``seconds``: a hang must
    fail, not stall the suite (the call runs in a daemon thread, left behind if it hangs)."""
    box: list[tuple[bool, object]] = []

    def run() -> None:
        try:
            box.append((True, call()))
        except BaseException as e:
            box.append((False, e))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    done, value = box[0]
    if not done:
        raise value  # type: ignore[misc]
    return value  # type: ignore[return-value]


def require_dot() -> bool:
    """True when Graphviz's dot must be present (CI sets NETC_REQUIRE_DOT=1)."""
    return os.environ.get("NETC_REQUIRE_DOT") == "1"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print how many fuzz cases ran (README and CI state the figure)."""
    from tests.fuzz_counter import CASES

    if CASES:
        parts = ", ".join(f"{k} {v:,}" for k, v in sorted(CASES.items()))
        failed = terminalreporter.stats.get("failed", [])
        fuzz_failed = [r for r in failed if "fuzz" in r.nodeid or "test_expr" in r.nodeid]
        terminalreporter.write_line(
            f"fuzz: {sum(CASES.values()):,} cases ({parts}); crashes and hangs: "
            f"{len(fuzz_failed)} failing fuzz tests"
        )


# the kinds of slow test; each is also `slow`, so `pytest -m "not slow"` is the development loop
SLOW_KINDS = ("zoo", "export", "subprocess", "fuzz")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test of a slow kind (a module's `pytestmark`, or its own mark) is also marked slow."""
    for item in items:
        if any(item.get_closest_marker(kind) for kind in SLOW_KINDS):
            item.add_marker(pytest.mark.slow)
