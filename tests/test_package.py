"""The wheel ships the spec library: installed (not editable) into an empty folder and run from
another, netc lists it, compiles library specs by name and lets a user's spec extend one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.frontend.library import spec_files
from tests.conftest import ROOT, SPECS

pytestmark = pytest.mark.subprocess


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """netc's wheel installed into a fresh target folder (its dependencies come from this
    environment: torch and the rest are not rebuilt)."""
    wheels = tmp_path_factory.mktemp("wheel")
    target = tmp_path_factory.mktemp("site")
    _pip("wheel", "--no-deps", "-w", str(wheels), str(ROOT))
    _pip("install", "--no-deps", "--target", str(target), *map(str, wheels.glob("*.whl")))
    return target


def _pip(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "-q", *args], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def _netc(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, "-m", "compiler", *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_the_installed_package_is_the_wheel_not_the_checkout(
    installed: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    where = subprocess.run(
        [sys.executable, "-c", "import compiler; print(compiler.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(installed))
    assert (installed / "compiler" / "specs" / "blocks" / "bottleneck.yaml").is_file()


def test_netc_list_shows_the_whole_library_from_an_empty_folder(
    installed: Path, tmp_path: Path
) -> None:
    done = _netc(installed, tmp_path, "list")
    assert done.returncode == 0, done.stderr
    names = {line.split()[0] for line in done.stdout.splitlines()[1:]}
    want = {os.path.relpath(p, SPECS)[:-5] for p in spec_files(str(SPECS))}
    assert names == want and "cifar/resnet20" in names and "resnet50" in names


def test_library_names_compile_and_extend_from_anywhere(installed: Path, tmp_path: Path) -> None:
    done = _netc(installed, tmp_path, "compile", "resnet18", "--json")
    assert done.returncode == 0, done.stderr
    assert '"params": 11689512' in done.stdout
    mine = tmp_path / "mine.yaml"
    mine.write_text("extends: resnet50\nname: my_resnet\nparams: {num_classes: 10}\n")
    done = _netc(installed, tmp_path, "check", "mine.yaml")
    assert done.returncode == 0, done.stderr
    assert "ok: mine.yaml (my_resnet: 23,528,522 params" in done.stdout
    missing = _netc(installed, tmp_path, "check", "resnet5000")
    assert missing.returncode == 2 and "no such file: resnet5000" in missing.stderr
