"""The README and docs describe the software: their links resolve, performance.md is what the
benchmark script generates from results.json, and none of them speaks of how netc was made."""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


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


def test_performance_doc_is_generated_from_the_results() -> None:
    run = _benchmark_script()
    data = json.loads((ROOT / "benchmarks" / "results.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "performance.md"
        run.write_doc(data, path)
        fresh = path.read_text()
    saved = (ROOT / "docs" / "performance.md").read_text()
    assert saved == fresh, "regenerate it: python benchmarks/run.py --doc-only"


def test_a_section_measured_again_replaces_its_rows_and_its_earlier_note() -> None:
    run = _benchmark_script()

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
    merged = run._merged(old, fresh, ["compiled"], {"date": "day 4", "seconds": 2.0})
    assert [(r["what"], r["value"]) for r in merged["rows"]] == [
        ("a", 1.0),
        ("b", 2.0),
        ("d", 3.0),
        ("c", 1.0),
    ]
    # day 2 measured nothing day 4 did not; day 3 also measured "alone", which still stands
    assert [a["date"] for a in merged["machine"]["measured_again"]] == ["day 3", "day 4"]


def test_another_machines_run_stays_and_replaces_its_own_earlier_run(tmp_path: Path) -> None:
    run = _benchmark_script()

    def machine(cpu: str, date: str) -> dict[str, Any]:
        return {"cpu": cpu, "cores": 16, "date": date}

    here = {"machine": machine("here", "day 1"), "rows": []}
    for date in ("day 2", "day 3"):
        other = tmp_path / f"{date}.json"
        other.write_text(json.dumps({"machine": machine("there", date), "rows": [{"x": date}]}))
        here = run._with_other(here, str(other))
    assert [o["machine"]["date"] for o in here["other_machines"]] == ["day 3"]
    # a section of this machine measured again keeps the other machine's run
    merged = run._merged(here, [], ["zero"], {"date": "day 4", "seconds": 1.0})
    assert merged["other_machines"] == here["other_machines"]


def test_a_faults_row_compares_medians_over_parents_and_counts_each_parent() -> None:
    run = _benchmark_script()
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
    assert run._figure(r) == "75"
    detail = run._detail(r)
    assert "over 4 parents: torchvision median 60 (0-100), netc 75 (10-90)" in detail
    assert "torchvision with one gc.collect() after its build 25 (0-40)" in detail
    assert "netc in 2, torchvision after gc.collect() in 3" in detail


def test_the_docs_speak_of_the_software_not_its_making() -> None:
    for doc in DOCS:
        text = doc.read_text().lower()
        for pattern in (r"\bissues? #?\d", r"\bsessions?\b", r"\bmissed\b", r"\blent\b"):
            assert not re.search(pattern, text), f"{doc.name}: {pattern}"


def test_examples_check_compile_and_are_shown_verbatim() -> None:
    """Every spec in docs/examples checks, compiles and runs, and the README shows it whole."""
    import torch

    import compiler

    readme = (ROOT / "README.md").read_text()
    examples = sorted((ROOT / "docs" / "examples").glob("*.yaml"))
    assert examples
    for path in examples:
        assert path.read_text() in readme, path.name
        module = compiler.compile(path, seed=0).eval()
        graph = compiler.load_spec(path)
        with torch.no_grad():
            out = module(torch.randn(1, *graph.input_shape))
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
