"""The plugin example end to end as a user has it: pip-installed (docs/examples/netc_swish_beta,
into a fresh target folder beside this environment's netc and torch), then netc run in another
process: its entry point names the plugin in the error before it is enabled, and once enabled
every command works, down to running the emitted file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.subprocess

EXAMPLE = ROOT / "docs" / "examples" / "netc_swish_beta"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    source = tmp_path_factory.mktemp("plugin") / "netc_swish_beta"  # pip builds in the folder
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         str(source)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return target


def _run(site: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "NETC_PLUGINS"}
    environ.update(PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]), **env)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=environ, capture_output=True, text=True
    )


def test_the_installed_plugin_is_named_in_the_error_until_enabled(
    site: Path, tmp_path: Path
) -> None:
    done = _run(site, tmp_path, "-m", "compiler", "check", str(EXAMPLE / "swish_net.yaml"))
    assert done.returncode == 2
    assert "unknown op 'swish_beta': the plugin netc_swish_beta provides it" in done.stderr
    assert "--plugin netc_swish_beta" in done.stderr


def test_every_command_works_once_enabled(site: Path, tmp_path: Path) -> None:
    spec = str(EXAMPLE / "swish_net.yaml")
    plugin = ("--plugin", "netc_swish_beta")
    for args in (
        ("check", *plugin, spec),
        ("compile", *plugin, "--json", spec),
        ("export", *plugin, spec, "-q", "--seed", "0", "-o", "net.onnx"),
        ("emit", *plugin, spec, "-o", "swish_net_src.py"),
        ("diagram", *plugin, spec, "--detail", "ops", "-o", "net.dot"),
    ):
        done = _run(site, tmp_path, "-m", "compiler", *args)
        assert done.returncode == 0, (args, done.stderr)
    done = _run(site, tmp_path, "-m", "compiler", "check", spec, NETC_PLUGINS="netc_swish_beta")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "net.onnx").stat().st_size > 0
    probe = (
        "import torch, swish_net_src, compiler\n"
        "compiler.enable_plugin('netc_swish_beta')\n"
        f"ours = compiler.compile({spec!r}, seed=0).eval()\n"
        "theirs = swish_net_src.build(seed=0).eval()\n"
        "x = torch.randn(2, 3, 32, 32)\n"
        "print(torch.equal(ours(x), theirs(x)))\n"
    )
    done = _run(site, tmp_path, "-c", probe)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
