"""Every invalid spec in tests/invalid/ gives exactly the error stored beside it, exit status 2,
and no traceback. Regenerate an .err file only after reading the new message."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import TESTS, run_cli

CASES = sorted((TESTS / "invalid").glob("*.yaml"))


def test_the_folder_covers_every_kind_of_mistake() -> None:
    names = {p.stem for p in CASES}
    required = {
        "unknown_key",
        "wrong_type",
        "unknown_block",
        "unknown_op",
        "undefined_reference",
        "forward_reference",
        "cycle",
        "channel_mismatch",
        "groups_not_dividing",
        "spatial_below_one",
        "zero_width",
        "negative_repeat",
        "bad_expression",
        "extends_loop",
        "missing_file",
        "probability_above_one",
        "add_of_one_input",
        "zero_epsilon",
    }
    assert required <= names
    assert all(p.with_suffix(".err").exists() for p in CASES)


@pytest.mark.parametrize("spec", CASES, ids=[p.stem for p in CASES])
def test_invalid_spec_gives_its_error(spec: Path, in_root: Path) -> None:
    code, out, err = run_cli("check", str(spec.relative_to(in_root)))
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert err == spec.with_suffix(".err").read_text()
    first = err.splitlines()[0]
    assert ": error: " in first and first.split(":")[0].endswith(".yaml")


def test_all_errors_of_a_file_at_once(in_root: Path) -> None:
    code, _, err = run_cli("check", "tests/invalid/several_errors.yaml")
    assert code == 2 and err.count(": error: ") == 2


def test_check_continues_past_a_bad_file(in_root: Path) -> None:
    code, out, err = run_cli("check", "tests/invalid/cycle.yaml", "specs/resnet18.yaml")
    assert code == 2
    assert "ok: specs/resnet18.yaml" in out and "cycle.yaml:4:21: error" in err
