"""A spec cannot make netc read other files, hang on a special file, or print a traceback.

The rule (docs/threat-model.md, compiler/frontend/access.py): what a spec names in turn (an
``extends:``
target, a block file) must resolve inside the named spec's folder, the library or a folder of
NETC_PATH/--path, and be a .yaml file; anything that is not a regular file is refused by name.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

import compiler
from compiler.errors import SpecError
from tests.conftest import bounded, run_cli

SECRET = "root:SECRET-HASH:19000:0:99999:7:::"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A secret file beside a project folder: tmp/secret(.yaml), tmp/proj/."""
    (tmp_path / "secret").write_text(SECRET + "\n")
    (tmp_path / "secret.yaml").write_text(f"password: {SECRET}\n")
    (tmp_path / "proj").mkdir()
    return tmp_path / "proj"


def _check(spec: Path, *args: str) -> tuple[int, str]:
    code, out, err = run_cli("check", str(spec), *args)
    return code, out + err


@pytest.mark.parametrize(
    "target",
    [
        "../secret",
        "../secret.yaml",
        "../../../../../../../../etc/passwd",
        "/etc/passwd",
        "/proc/self/environ",
    ],
)
def test_extends_cannot_read_a_file_outside(project: Path, target: str) -> None:
    spec = project / "net.yaml"
    spec.write_text(f"extends: {target}\nname: net\n")
    code, out = _check(spec)
    assert code == 2
    assert "net.yaml:1:10: error: cannot extend: " in out
    assert "lies outside the folders a spec may read" in out
    assert "SECRET" not in out and "root:" not in out and "password" not in out


def test_a_symlink_cannot_lead_extends_or_a_block_file_outside(project: Path) -> None:
    (project / "base.yaml").symlink_to(project.parent / "secret.yaml")
    spec = project / "net.yaml"
    spec.write_text("extends: base.yaml\nname: net\n")
    code, out = _check(spec)
    assert code == 2 and f"resolves to {project.parent / 'secret.yaml'}, which lies outside" in out
    assert "password" not in out and "SECRET" not in out
    # a block file, or the whole blocks/ folder, linked to elsewhere is never read
    (project / "blocks").mkdir()
    (project / "blocks" / "pair.yaml").symlink_to(project.parent / "secret.yaml")
    spec.write_text("name: net\ninput: [3, 8, 8]\nstages:\n  layer1: {block: pair}\n")
    code, out = _check(spec)
    assert code == 2 and "unknown block type 'pair'" in out and "password" not in out
    (project / "blocks" / "pair.yaml").unlink()
    (project / "blocks").rmdir()
    (project / "blocks").symlink_to(project.parent)
    (project.parent / "pair.yaml").write_text(f"password: {SECRET}\n")
    code, out = _check(spec)
    assert code == 2 and "unknown block type 'pair'" in out and "password" not in out


def test_a_folder_the_user_names_may_be_read(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = project.parent / "shared"
    shared.mkdir()
    (shared / "base.yaml").write_text("extends: cifar/resnet20\nname: base\n")
    spec = project / "net.yaml"
    spec.write_text("extends: ../shared/base.yaml\nname: net\n")
    monkeypatch.delenv("NETC_PATH", raising=False)
    assert _check(spec)[0] == 2
    code, out = _check(spec, "--path", str(shared))
    assert code == 0 and out.startswith(f"ok: {spec} (net: ")
    assert "NETC_PATH" not in os.environ  # --path holds for its command only
    assert _check(spec)[0] == 2
    monkeypatch.setenv("NETC_PATH", str(shared))
    assert compiler.load_spec(spec).params == compiler.load_spec("cifar/resnet20").params


def test_library_names_and_paths_inside_the_folder_still_work(project: Path) -> None:
    (project / "sub").mkdir()
    (project / "sub" / "base.yaml").write_text("extends: resnet18\nname: base\n")
    spec = project / "net.yaml"
    spec.write_text("extends: sub/base.yaml\nname: net\n")
    assert compiler.load_spec(spec).params == compiler.load_spec("resnet18").params


def test_a_named_pipe_is_refused_wherever_it_is_met(project: Path) -> None:
    fifo = project / "pipe.yaml"
    os.mkfifo(fifo)
    result = bounded(lambda: _check(fifo))
    assert result == (2, f"{fifo}: error: {fifo} is a named pipe, not a spec file\n")
    spec = project / "net.yaml"
    spec.write_text("extends: pipe.yaml\nname: net\n")
    code, out = bounded(lambda: _check(spec))
    assert code == 2 and "cannot extend: " in out and "is a named pipe, not a spec file" in out
    (project / "blocks").mkdir()
    os.mkfifo(project / "blocks" / "pair.yaml")
    spec.write_text("name: net\ninput: [3, 8, 8]\nstages:\n  layer1: {block: pair}\n")
    code, out = bounded(lambda: _check(spec))
    assert code == 2 and "unknown block type 'pair'" in out
    # `netc list FOLDER` reads every spec of a folder: the pipe is one entry's error
    code, out, err = bounded(lambda: run_cli("list", str(project)))
    assert "is a named pipe, not a spec file" in out + err


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/dev/null", "/dev/null is a character device, not a spec file"),
        ("/dev/zero", "/dev/zero is a character device, not a spec file"),
        ("/proc/self/mem", "cannot read /proc/self/mem: "),
        ("/", "/ is a directory, not a spec file"),
    ],
)
def test_special_files_as_the_spec(path: str, message: str) -> None:
    code, out = bounded(lambda: _check(Path(path)))
    assert code == 2 and message in out and "Traceback" not in out


def test_a_socket_as_the_spec(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        code, out = bounded(lambda: _check(path))
    finally:
        server.close()
    assert code == 2 and (f"cannot read {path}: " in out or "is a socket" in out)


def test_unreadable_files_and_folders_are_located_errors(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tests run as root in CI, and root reads a file of mode 000: the refusal is simulated
    import compiler.frontend.fs
    import compiler.frontend.lookup

    spec = project / "net.yaml"
    spec.write_text("name: net\ninput: [3, 8, 8]\nstages:\n  layer1: {block: pair}\n")
    (project / "blocks").mkdir()

    def refused(*args: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(
        compiler.frontend.lookup.os, "listdir", refused
    )  # an unreadable blocks/ folder
    code, out = _check(spec)
    assert code == 2 and "unknown block type 'pair'" in out and "Traceback" not in out
    monkeypatch.setattr(compiler.frontend.fs.os, "open", refused)  # an unreadable spec
    code, out = _check(spec)
    assert (code, out) == (2, f"{spec}: error: cannot read {spec}: Permission denied\n")


def test_aliases_nested_past_the_cap_are_refused() -> None:
    lines = ["x0: &a0 [1]", *(f"x{i}: &a{i} [*a{i - 1}]" for i in range(1, 1500))]
    from compiler.frontend.source import parse

    with pytest.raises(SpecError, match="nested deeper than 48 levels once aliases are expanded"):
        parse("\n".join(lines), "alias.yaml")


def test_hidden_folders_inside_the_spec_folder_are_not_read(project: Path) -> None:
    # a spec saved in $HOME must not read ~/.circleci/cli.yml or ~/.aws/*.yaml
    (project / ".circleci").mkdir()
    (project / ".circleci" / "cli.yml").write_text(f"token: {SECRET}\n")
    spec = project / "net.yaml"
    spec.write_text("extends: .circleci/cli.yml\nname: net\n")
    code, out = _check(spec)
    assert code == 2 and "lies in a hidden folder or file" in out
    assert "SECRET" not in out and "token" not in out
