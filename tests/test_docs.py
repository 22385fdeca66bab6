"""The README and docs describe the software: their links resolve, the site builds strictly,
the generated pages (ops, library, command line, performance) are what their generators write
today, and none of them speaks of how netc was made."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
REGENERATE = "python docs/gen_reference.py"


def test_links_to_files_resolve() -> None:
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#:]+)\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


def _benchmark_script() -> Any:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import run  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    return run


def _benchmark_report() -> Any:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import report  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    return report


def test_performance_doc_is_generated_from_the_results() -> None:
    report = _benchmark_report()
    data = json.loads((ROOT / "benchmarks" / "results.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "performance.md"
        report.write_doc(data, path)
        fresh = path.read_text()
    saved = (ROOT / "docs" / "performance.md").read_text()
    assert saved == fresh, "regenerate it: python benchmarks/run.py --doc-only"


def test_a_section_measured_again_replaces_its_rows_and_its_earlier_note() -> None:
    report = _benchmark_report()

    def made(section: str, what: str, value: float) -> dict[str, Any]:
        return {"section": section, "what": what, "value": value}

    old = {
        "machine": {
            "date": "day 1",
            "measured_again": [
                {"sections": ["compiled"], "date": "day 2", "seconds": 1.0},
                {"sections": ["alone", "compiled"], "date": "day 3", "seconds": 1.0},
            ],
        },
        "rows": [made("zero", "a", 1.0), made("compiled", "b", 1.0), made("zero", "c", 1.0)],
    }
    fresh = [made("compiled", "b", 2.0), made("compiled", "d", 3.0)]
    merged = report.merged(old, fresh, ["compiled"], {"date": "day 4", "seconds": 2.0})
    assert [(r["what"], r["value"]) for r in merged["rows"]] == [
        ("a", 1.0),
        ("b", 2.0),
        ("d", 3.0),
        ("c", 1.0),
    ]
    # day 2 measured nothing day 4 did not; day 3 also measured "alone", which still stands
    assert [a["date"] for a in merged["machine"]["measured_again"]] == ["day 3", "day 4"]


def test_another_machines_run_stays_and_replaces_its_own_earlier_run(tmp_path: Path) -> None:
    report = _benchmark_report()

    def machine(cpu: str, date: str) -> dict[str, Any]:
        return {"cpu": cpu, "cores": 16, "date": date}

    here = {"machine": machine("here", "day 1"), "rows": []}
    for date in ("day 2", "day 3"):
        other = tmp_path / f"{date}.json"
        other.write_text(json.dumps({"machine": machine("there", date), "rows": [{"x": date}]}))
        here = report.with_other(here, str(other))
    assert [o["machine"]["date"] for o in here["other_machines"]] == ["day 3"]
    # a section of this machine measured again keeps the other machine's run
    merged = report.merged(here, [], ["zero"], {"date": "day 4", "seconds": 1.0})
    assert merged["other_machines"] == here["other_machines"]


def test_a_faults_row_compares_medians_over_parents_and_counts_each_parent() -> None:
    run, report = _benchmark_script(), _benchmark_report()
    got = {
        "tv": {"faults": [100.0, 0.0, 50.0, 70.0]},
        "netc": {"faults": [90.0, 10.0, 80.0, 70.0]},
        "tv_gc": {"faults": [0.0, 20.0, 40.0, 30.0]},
    }
    run._heap_row("densenet121", 8, got)
    r = run.ROWS.pop()
    assert (r["value"], r["tv_faults"], r["tv_gc_faults"]) == (75.0, 60.0, 25.0)
    assert r["ok"] is False  # netc's median (75) above torchvision's (60)
    assert r["fault_rounds"] == [2, 4]  # parents 1 and 4
    assert r["control_fault_rounds"] == [3, 4]  # parents 1, 3 and 4
    assert (r["fault_spread"]["netc"], r["fault_spread"]["tv_gc"]) == ([10.0, 90.0], [0.0, 40.0])
    assert report._figure(r) == "75"
    detail = report._detail(r)
    assert "over 4 parents: torchvision median 60 (0-100), netc 75 (10-90)" in detail
    assert "torchvision with one gc.collect() after its build 25 (0-40)" in detail
    assert "netc in 2, torchvision after gc.collect() in 3" in detail


def test_the_docs_speak_of_the_software_not_its_making() -> None:
    for doc in DOCS:
        text = doc.read_text().lower()
        for pattern in (r"\bissues? #?\d", r"\bsessions?\b", r"\bmissed\b", r"\blent\b"):
            assert not re.search(pattern, text), f"{doc.name}: {pattern}"


def test_examples_check_compile_and_are_shown_verbatim() -> None:
    """Every spec in docs/examples checks, compiles and runs, and a docs page shows it whole."""
    import torch

    import compiler

    pages = [doc.read_text() for doc in DOCS]
    examples = sorted((ROOT / "docs" / "examples").glob("*.yaml"))
    assert examples
    for path in examples:
        assert any(path.read_text() in page for page in pages), path.name
        module = compiler.compile(path, seed=0).eval()
        graph = compiler.load_spec(path)
        with torch.no_grad():
            out = module(torch.randn(1, *graph.input_shape))
        if graph.output_keys:  # a dict of named outputs
            assert [tuple(out[f.key].shape) for f in graph.features] == [
                (1, *graph.shape_of(f.node)) for f in graph.features
            ]
        else:
            assert out.shape == (1, *graph.shape_of(graph.output))


def test_cores_for_side_by_side_rows_are_read_like_taskset_lists() -> None:
    run = _benchmark_script()
    import argparse
    import os

    allowed = sorted(os.sched_getaffinity(0))
    assert run.parse_cores(f"{allowed[0]}-{allowed[0]}") == [allowed[0]]
    # (a core named twice is one core: two rows at once on it would disturb each other)
    assert run.parse_cores(",".join(map(str, [*allowed, allowed[0]]))) == allowed
    for bad in ("x", "", f"{allowed[-1] + 1}"):
        with pytest.raises(argparse.ArgumentTypeError):
            run.parse_cores(bad)


def _generator() -> Any:
    """docs/gen_reference.py, imported by path (docs/ is no package)."""
    spec = importlib.util.spec_from_file_location(
        "gen_reference", ROOT / "docs" / "gen_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _assert_current(page: str, make: str) -> None:
    fresh = getattr(_generator(), make)()
    path = ROOT / page
    saved = path.read_text() if path.exists() else ""
    assert saved == fresh, f"{page} is stale: regenerate it with `{REGENERATE}`"


def test_op_reference_is_generated_from_the_op_table() -> None:
    _assert_current("docs/reference/ops.md", "op_reference")


def test_library_page_is_generated_from_the_specs() -> None:
    _assert_current("docs/reference/library.md", "library_reference")


def test_command_reference_is_generated_from_the_parser() -> None:
    _assert_current("docs/reference/cli.md", "command_reference")


@pytest.mark.subprocess
def test_the_generator_covers_every_op_command_and_network_without_torch() -> None:
    """Run as CI and people run it (`--check`, a process of its own): it imports no torch, and
    its pages name every op, every command and every library network."""
    code = (
        "import runpy, sys\n"
        "sys.argv = ['docs/gen_reference.py', '--check']\n"
        "try:\n"
        "    runpy.run_path('docs/gen_reference.py', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "assert 'torch' not in sys.modules, 'the generator imported torch'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]

    from compiler.frontend.library import read_library
    from compiler.frontend.lookup import library_root
    from compiler.ops import OPS
    from compiler.tools.cli import build_parser

    ops = (ROOT / "docs" / "reference" / "ops.md").read_text()
    assert all(f"### `{name}`" in ops for name in OPS)
    cli = (ROOT / "docs" / "reference" / "cli.md").read_text()
    commands = next(a.choices for a in build_parser()._actions if a.choices and a.dest == "command")
    assert commands and all(f"## netc {name}" in cli for name in commands)
    library = (ROOT / "docs" / "reference" / "library.md").read_text()
    entries = read_library(library_root(), names=True)
    assert entries and all(f"| `{e.path}` |" in library for e in entries)


def test_every_page_is_in_the_site_navigation() -> None:
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(nav: Any) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        items = nav.values() if isinstance(nav, dict) else nav
        return [page for item in items for page in pages(item)]

    listed = set(pages(config["nav"]))
    docs = ROOT / "docs"
    on_disk = {p.relative_to(docs).as_posix() for p in docs.rglob("*.md")}
    assert on_disk - listed == set(), "add these pages to mkdocs.yml's nav"
    assert listed - on_disk == set(), "mkdocs.yml's nav names pages that do not exist"


def test_every_picture_is_shown_in_the_docs() -> None:
    """Each rendered diagram in docs/images appears on a docs page (the diagrams page shows
    them all; README shows most of them too)."""
    pages = "".join(doc.read_text() for doc in DOCS if doc.name != "README.md")
    for image in sorted((ROOT / "docs" / "images").glob("*.png")):
        assert f"images/{image.name}" in pages, image.name


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """mkdocs build --strict: a broken link, a missing anchor or a page outside the docs fails."""
    try:
        import material  # noqa: F401
        import mkdocs  # noqa: F401
    except ImportError as e:
        pytest.fail(f"{e.name} is missing: pip install -e '.[test]'")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
