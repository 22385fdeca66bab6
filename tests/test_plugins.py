"""User ops from plugins: enabled by the user only, then known to every command like netc's own
(check, compile, diagram, emit, export, schema), refused with a clear error when they cannot be.

The worked example (docs/examples/netc_swish_beta) is imported from its folder here; the test
that pip-installs it and runs netc in another process is tests/test_plugins_installed.py."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import compiler
from compiler.errors import SpecError
from compiler.frontend import spec_cache
from compiler.ops import OPS, plugins
from compiler.tools.cli import main
from tests.conftest import ROOT

EXAMPLE = ROOT / "docs" / "examples" / "netc_swish_beta"
SPEC = EXAMPLE / "swish_net.yaml"


@pytest.fixture
def clean() -> Iterator[None]:
    """No plugin enabled before or after: the process's op table is netc's own again."""
    sys.path.insert(0, str(EXAMPLE))
    before = set(OPS)
    try:
        yield
    finally:
        plugins.disable_all(OPS)
        spec_cache.clear()
        sys.path.remove(str(EXAMPLE))
        for name in [m for m in sys.modules if m.startswith(("netc_swish_beta", "tests.plugins"))]:
            del sys.modules[name]
        assert set(OPS) == before


def test_a_spec_naming_a_plugin_op_is_refused_until_the_user_enables_it(clean: None) -> None:
    with pytest.raises(SpecError) as e:
        compiler.load_spec(SPEC)
    assert "unknown op 'swish_beta'" in e.value.render()
    assert "netc_swish_beta" not in sys.modules  # naming it in a spec loads nothing
    assert compiler.enable_plugin("netc_swish_beta") == ("swish_beta",)
    graph = compiler.load_spec(SPEC)
    assert graph.nodes["act1"].op == "swish_beta" and graph.nodes["act1"].attrs["beta"] == 1.5
    assert graph.nodes["act2"].attrs["beta"] == 2.0
    assert OPS["swish_beta"].plugin == "netc_swish_beta"


def test_the_plugin_op_builds_what_its_definition_says(clean: None) -> None:
    compiler.enable_plugin("netc_swish_beta")
    module = compiler.compile(SPEC, seed=0).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        got = module.act1(module.bn1(module.conv1(x)))
        y = module.bn1(module.conv1(x))
    assert torch.equal(got, y * torch.sigmoid(1.5 * y))
    assert module(x).shape == (2, 10)


def test_check_stays_torch_free_with_a_torch_free_plugin(clean: None) -> None:
    import subprocess

    probe = (
        "import sys, compiler\n"
        "compiler.enable_plugin('netc_swish_beta')\n"
        f"compiler.load_spec({str(SPEC)!r})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))\n"
    )
    env = {"PYTHONPATH": f"{EXAMPLE}:{ROOT}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_every_command_knows_the_plugin_op(clean: None, tmp_path: Path) -> None:
    spec = str(SPEC)
    assert main(["check", "-q", spec]) == 2  # not enabled
    assert main(["check", "-q", "--plugin", "netc_swish_beta", spec]) == 0
    dot = tmp_path / "ops.dot"
    assert main(["diagram", spec, "--detail", "ops", "-o", str(dot)]) == 0
    assert "swish β=1.5" in dot.read_text() and "swish β=2" in dot.read_text()
    schema = tmp_path / "schema.json"
    assert main(["schema", "-o", str(schema)]) == 0
    assert '"op_swish_beta"' in schema.read_text()
    onnx_file = tmp_path / "net.onnx"
    assert main(["export", spec, "-q", "--seed", "0", "-o", str(onnx_file)]) == 0
    assert onnx_file.stat().st_size > 0


def test_the_emitted_file_imports_the_plugin_and_builds_the_same_network(
    clean: None, tmp_path: Path
) -> None:
    compiler.enable_plugin("netc_swish_beta")
    target = tmp_path / "swish_net_src.py"
    assert main(["emit", str(SPEC), "-o", str(target)]) == 0
    source = target.read_text()
    assert "import netc_swish_beta.layers" in source
    assert "netc_swish_beta.layers.SwishBeta(beta=1.5)" in source
    sys.path.insert(0, str(tmp_path))
    try:
        emitted = importlib.import_module("swish_net_src").build(seed=0).eval()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("swish_net_src", None)
    ours = compiler.compile(SPEC, seed=0).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(emitted(x), ours(x))
    assert list(emitted.state_dict()) == list(ours.state_dict())


def test_an_op_without_an_onnx_rule_is_refused_by_export_before_any_work(
    clean: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "stretched.yaml"
    spec.write_text(
        "name: stretched\ninput: [3, 8, 8]\nstem:\n  conv: {op: conv, out: 4, kernel: 3}\n"
        "  stretch: {op: stretch}\nhead:\n  pool: {op: global_avgpool}\n"
    )
    args = ["export", "--plugin", "tests.plugins.no_onnx", str(spec), "-o", str(tmp_path / "x")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{spec}:5:3: error: node 'stretch': op 'stretch' (plugin tests.plugins.no_onnx)" in err
    assert "has no ONNX rule" in err and not (tmp_path / "x").exists()
    # everything else works: its init rule gives its weight, and emit imports the rule
    module = compiler.compile(spec, seed=0)
    assert torch.equal(module.stretch.weight, torch.full((4,), 2.0))
    target = tmp_path / "stretched_src.py"
    assert main(["emit", str(spec), "-o", str(target)]) == 0
    assert "tests.plugins.no_onnx.init_stretch" in target.read_text()


@pytest.mark.parametrize(
    ("module", "problem"),
    [
        ("tests.plugins.collides", "op 'relu' is already one of netc's own ops"),
        ("tests.plugins.empty", "declares no ops: it needs NETC_OPS"),
        ("tests.plugins.bad_kind", "diagram must be one of"),
        ("tests.plugins.bad_kind", "text attribute 'how' must list its choices"),
        ("tests.plugins.not_there", "cannot import it (ModuleNotFoundError"),
        ("os; import shutil", "a plugin is a Python module name like pkg.ops"),
    ],
)
def test_a_plugin_that_cannot_join_is_refused_whole(clean: None, module: str, problem: str) -> None:
    before = dict(OPS)
    with pytest.raises(compiler.PluginError) as e:
        compiler.enable_plugin(module)
    assert problem in str(e.value)
    assert before == OPS and plugins.enabled() == ()


def test_the_command_line_reports_a_bad_plugin_without_a_traceback(
    clean: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--plugin", "tests.plugins.collides", str(SPEC)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("netc: error: plugin tests.plugins.collides: op 'relu' is already")
    assert "Traceback" not in err


def test_a_second_plugin_cannot_take_an_op_name_another_enabled(clean: None) -> None:
    compiler.enable_plugin("netc_swish_beta")
    assert compiler.enable_plugin("netc_swish_beta") == ("swish_beta",)  # again: a no-op
    sys.modules["twin"] = sys.modules["netc_swish_beta"]
    try:
        with pytest.raises(compiler.PluginError, match="provided by the plugin netc_swish_beta"):
            compiler.enable_plugin("twin")
    finally:
        del sys.modules["twin"]


def test_the_environment_enables_plugins_and_a_spec_cannot(
    clean: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a spec has no key that loads code: 'plugins:' is an unknown key, and an op named after a
    # module is an unknown op that imports nothing
    spec = tmp_path / "sneaky.yaml"
    spec.write_text(
        "name: sneaky\ninput: [3, 8, 8]\nplugins: [netc_swish_beta]\n"
        "stem:\n  a: {op: netc_swish_beta}\n  b: {op: tests.plugins.no_onnx}\n"
    )
    with pytest.raises(SpecError) as e:
        compiler.load_spec(spec)
    text = e.value.render()
    assert "unknown key 'plugins'" in text
    assert "unknown op 'netc_swish_beta'" in text and "unknown op 'tests.plugins.no_onnx'" in text
    assert "netc_swish_beta" not in sys.modules and "tests.plugins.no_onnx" not in sys.modules
    monkeypatch.setenv(plugins.ENVIRONMENT, "netc_swish_beta")
    assert compiler.load_spec(SPEC).nodes["act1"].op == "swish_beta"
    assert plugins.enabled() == ("netc_swish_beta",)


def test_the_plugin_page_shows_the_example_package_verbatim() -> None:
    page = (ROOT / "docs" / "guide" / "plugins.md").read_text()
    for name in ("netc_swish_beta/__init__.py", "netc_swish_beta/layers.py", "swish_net.yaml"):
        assert (EXAMPLE / name).read_text().rstrip("\n") in page, name
