"""Output paths come from a command line: every command that writes a file refuses a device, a
FIFO, a socket, a directory, a missing or read-only folder with one line (`netc: error: cannot
write X: why`, exit 1) before any work, writes through a symlink to a regular file, takes any
name NAME_MAX allows, leaves no temporary file when stopped by SIGTERM or SIGINT, and a failed
export's report says that nothing was written."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import exporters.onnx as onnx_exporter
from compiler.atomic import TMP_PREFIX, TMP_SUFFIX, atomic_path
from tests.conftest import ROOT, TESTS, run_cli

TINY = str(TESTS / "specs" / "tiny.yaml")

# each command that writes a file, given the path to refuse and a path it may write; the
# refusal comes before any module is built, so these are fast
COMMANDS: dict[str, Callable[[str, str], list[str]]] = {
    "export -o": lambda bad, ok: ["export", TINY, "-o", bad],
    "export --report": lambda bad, ok: ["export", TINY, "-o", ok, "--report", bad],
    "compile --onnx": lambda bad, ok: ["compile", TINY, "--onnx", bad],
    "compile --report": lambda bad, ok: ["compile", TINY, "--onnx", ok, "--report", bad],
    "diagram -o": lambda bad, ok: ["diagram", TINY, "-o", bad],
    "emit -o": lambda bad, ok: ["emit", TINY, "-o", bad],
    "schema -o": lambda bad, ok: ["schema", "-o", bad],
    "gradflow -o": lambda bad, ok: ["gradflow", TINY, "-o", bad],
}


@pytest.fixture(autouse=True)
def never_replace_a_special_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a refusal regress, fail the test instead of turning /dev/null into a file."""
    real = os.replace

    def guarded(src: Any, dst: Any, **kw: Any) -> None:
        if os.path.exists(dst) and not os.path.isfile(dst):
            raise AssertionError(f"os.replace onto {dst}, which is not a regular file")
        real(src, dst, **kw)

    monkeypatch.setattr(os, "replace", guarded)


def _special(kind: str, folder: Path) -> Iterator[tuple[str, str]]:
    """A special file of ``kind`` and the reason a write to it is refused."""
    if kind == "device":
        yield "/dev/null", "it is a character device, not a regular file"
    elif kind == "fifo":
        os.mkfifo(folder / "fifo")
        yield str(folder / "fifo"), "it is a FIFO (named pipe), not a regular file"
    elif kind == "socket":
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(folder / "sock"))
            yield str(folder / "sock"), "it is a socket, not a regular file"
    else:
        (folder / "dir.out").mkdir()
        yield str(folder / "dir.out"), "it is a directory"


@pytest.mark.parametrize("kind", ["device", "fifo", "socket", "directory"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_special_file_is_refused_and_left_as_it_was(
    command: str, kind: str, tmp_path: Path
) -> None:
    folder = tmp_path / "out"  # short: a socket's path is limited to about 100 bytes
    folder.mkdir()
    for bad, why in _special(kind, folder):
        mode = os.stat(bad).st_mode
        before = sorted(os.listdir(folder))
        code, out, err = run_cli(*COMMANDS[command](bad, str(folder / "ok.onnx")))
        assert (code, out, err) == (1, "", f"netc: error: cannot write {bad}: {why}\n")
        assert os.stat(bad).st_mode == mode  # still the device, FIFO, socket or directory
        assert sorted(os.listdir(folder)) == before  # and nothing written beside it


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_missing_folder_is_one_line(command: str, tmp_path: Path) -> None:
    bad = str(tmp_path / "missing" / "dir" / "x.out")
    code, out, err = run_cli(*COMMANDS[command](bad, str(tmp_path / "ok.onnx")))
    why = f"the folder {tmp_path / 'missing' / 'dir'} does not exist"
    assert (code, out, err) == (1, "", f"netc: error: cannot write {bad}: {why}\n")
    assert list(tmp_path.iterdir()) == []


def test_a_relative_path_is_reported_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("export", TINY, "-o", "missing/dir/x.onnx")
    assert (code, out) == (1, "")
    assert err == "netc: error: cannot write missing/dir/x.onnx: the folder missing/dir does " + (
        "not exist\n"
    )
    code, out, err = run_cli("emit", TINY, "-o", "x.py/y.py")  # a file where a folder should be
    assert (code, out) == (1, "")
    assert err == "netc: error: cannot write x.py/y.py: the folder x.py does not exist\n"
    Path("x.py").write_text("")
    code, out, err = run_cli("emit", TINY, "-o", "x.py/y.py")
    assert (code, out, err) == (
        1,
        "",
        "netc: error: cannot write x.py/y.py: x.py is not a folder\n",
    )


READ_ONLY_COMMANDS = ["export -o", "export --report", "compile --onnx", "emit -o", "schema -o"]
# root writes into any folder: it runs the commands without the capabilities that allow that
AS_USER = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


@pytest.mark.subprocess
def test_a_read_only_folder_is_one_line(tmp_path: Path) -> None:
    root = os.geteuid() == 0
    if root and shutil.which(AS_USER[0]) is None:
        pytest.skip("as root a read-only folder needs setpriv to be read-only")
    ro, ok = tmp_path / "ro", tmp_path / "ok"
    ro.mkdir()
    ok.mkdir()
    ro.chmod(0o555)
    try:
        for command in READ_ONLY_COMMANDS:
            bad = str(ro / "x.out")
            argv = COMMANDS[command](bad, str(ok / "ok.onnx"))
            if root:
                run = subprocess.run(
                    [*AS_USER, sys.executable, "-m", "compiler", *argv],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                code, out, err = run.returncode, run.stdout, run.stderr
            else:
                code, out, err = run_cli(*argv)
            why = f"the folder {ro} is not writable"
            assert (code, out, err) == (1, "", f"netc: error: cannot write {bad}: {why}\n")
            assert list(ro.iterdir()) == [] and list(ok.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real.py"
    real.write_text("previous\n")
    real.chmod(0o640)
    link = tmp_path / "link.py"
    link.symlink_to(real.name)  # relative, as `ln -s real.py link.py` makes it
    code, out, err = run_cli("emit", TINY, "-o", str(link))
    assert (code, out, err) == (0, f"wrote {link}\n", "")
    assert link.is_symlink() and os.readlink(link) == "real.py"
    assert real.read_text().startswith('"""') and "import torch" in real.read_text()
    assert stat.S_IMODE(real.stat().st_mode) == 0o640  # the file's permissions are kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.py", "real.py"]


def test_a_symlink_to_anything_but_a_regular_file_is_refused(tmp_path: Path) -> None:
    cases = {
        "dangling": ("nowhere.py", "it is a symlink to nowhere.py, which does not exist"),
        "to_device": ("/dev/null", "it is a character device, not a regular file"),
        "to_dir": (".", "it is a directory"),
    }
    for name, (points_to, why) in cases.items():
        link = tmp_path / name
        link.symlink_to(points_to)
        code, out, err = run_cli("emit", TINY, "-o", str(link))
        assert (code, out, err) == (1, "", f"netc: error: cannot write {link}: {why}\n")
        assert link.is_symlink() and os.readlink(link) == points_to
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(cases)


def test_any_name_name_max_allows_is_written(tmp_path: Path) -> None:
    name = "n" * 250 + ".onnx"  # 255 bytes, NAME_MAX
    code, out, err = run_cli("export", TINY, "-o", str(tmp_path / name), "-q")
    assert (code, out, err) == (0, "", "")
    code, out, err = run_cli("emit", TINY, "-o", str(tmp_path / ("m" * 252 + ".py")), "-q")
    assert (code, out, err) == (0, "", "")
    assert sorted(len(p.name) for p in tmp_path.iterdir()) == [255, 255]
    with atomic_path(tmp_path / name) as tmp:
        short = os.path.basename(tmp)
        assert short.startswith(TMP_PREFIX) and short.endswith(TMP_SUFFIX) and len(short) < 20
        Path(tmp).write_bytes(b"x")
    assert (tmp_path / name).read_bytes() == b"x"


def test_a_name_past_name_max_is_one_line(tmp_path: Path) -> None:
    bad = str(tmp_path / ("n" * 256 + ".py"))
    code, out, err = run_cli("emit", TINY, "-o", bad)
    assert (code, out, err) == (1, "", f"netc: error: cannot write {bad}: File name too long\n")


def test_main_leaves_the_sigterm_handler_as_it_found_it() -> None:
    before = signal.getsignal(signal.SIGTERM)
    assert run_cli("schema")[0] == 0
    assert signal.getsignal(signal.SIGTERM) is before


# the child stops inside the export (in validation, with the temporary file written) and says so
CHILD = """
import signal, sys, time
import exporters.onnx as onnx_exporter

signal.signal(signal.SIGINT, signal.default_int_handler)  # even where the runner ignores it

def stalled(*args, **kwargs):
    print("validating", flush=True)
    time.sleep(120)

onnx_exporter._validate = stalled
from compiler.tools.cli import main
sys.exit(main(["export", sys.argv[1], "-o", sys.argv[2]]))
"""


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
@pytest.mark.subprocess
def test_a_signal_during_an_export_leaves_no_temporary_file(
    sig: signal.Signals, status: int, tmp_path: Path
) -> None:
    target = tmp_path / "m.onnx"
    target.write_bytes(b"previous good file")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, TINY, str(target)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "validating\n"
        temporary = [p.name for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)]
        assert len(temporary) == 1  # the export is under way, into its temporary file
        child.send_signal(sig)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == status, err
    assert (out, err) == ("", f"exporting tiny to {target} ...\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
    assert target.read_bytes() == b"previous good file"


def _failing(model: Any, reference: Any, graph: Any, report: Any, seed: int) -> None:
    report.passed, report.verdict = False, "FAIL: made to fail"


def test_a_failed_export_reports_that_nothing_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnx_exporter, "_validate", _failing)
    target, report = tmp_path / "m.onnx", tmp_path / "r.json"
    code, out, err = run_cli("export", TINY, "-o", str(target), "--report", str(report))
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert lines[:3] == [
        f"exporting tiny to {target} ...",
        f"netc: error: validation failed: FAIL: made to fail; {target} was not written",
        f"not exported: tiny; nothing was written to {target}",
    ]
    assert "  file       not written" in lines and "exported" not in err.replace("not exported", "")
    assert lines[-1] == "  verdict    FAIL: made to fail"
    data = json.loads(report.read_text())
    assert (data["written"], data["file_bytes"], data["path"]) == (False, None, str(target))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_a_written_export_reports_its_file(tmp_path: Path) -> None:
    target, report = tmp_path / "m.onnx", tmp_path / "r.json"
    code, out, err = run_cli("export", TINY, "-o", str(target), "--report", str(report))
    assert code == 0, err
    size = target.stat().st_size
    assert out.splitlines()[0] == f"exported tiny -> {target}"
    assert out.splitlines()[3].startswith(f"  file       {size:,} bytes, ")
    data = json.loads(report.read_text())
    assert (data["written"], data["file_bytes"]) == (True, size)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "r.json"]


def test_a_target_that_turns_into_a_directory_during_the_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "m.onnx"
    validate = onnx_exporter._validate

    def meanwhile(*args: Any) -> None:
        validate(*args)
        target.mkdir()

    monkeypatch.setattr(onnx_exporter, "_validate", meanwhile)
    code, out, err = run_cli("export", TINY, "-o", str(target), "-q")
    assert (code, out, err) == (1, "", f"netc: error: cannot write {target}: it is a directory\n")
    assert target.is_dir() and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_a_report_folder_removed_during_the_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, folder = tmp_path / "m.onnx", tmp_path / "reports"
    folder.mkdir()
    export = onnx_exporter.export

    def meanwhile(*args: Any, **kwargs: Any) -> Any:
        shutil.rmtree(folder)
        return export(*args, **kwargs)

    monkeypatch.setattr(onnx_exporter, "export", meanwhile)
    report = folder / "r.json"
    code, out, err = run_cli("export", TINY, "-o", str(target), "--report", str(report), "-q")
    why = f"the folder {folder} does not exist"
    assert (code, out, err) == (1, "", f"netc: error: cannot write {report}: {why}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # the export itself stands
