"""compile(path) checks a spec once per process and reuses the checked graph while every file it
read is unchanged and every block file it looked for and did not find is still absent."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

import compiler
from compiler import SpecError
from compiler.frontend import spec_cache

SPECS = Path(__file__).resolve().parent.parent / "specs"
RESNET20_PARAMS = 269_722


@pytest.fixture
def front_ends(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The spec paths the front end ran for, in order (the cache emptied first)."""
    spec_cache.clear()
    ran: list[str] = []
    real = spec_cache.load_spec

    def counting(path: Any, *args: Any, **kwargs: Any) -> compiler.Graph:
        ran.append(os.fspath(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(spec_cache, "load_spec", counting)
    return ran


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _resnet20_in(folder: Path) -> Path:
    """A copy of the library's ResNet-20 spec in ``folder``, the library's blocks/ beside it."""
    (folder / "blocks").symlink_to(SPECS / "blocks")
    spec = folder / "net.yaml"
    spec.write_text((SPECS / "cifar" / "resnet20.yaml").read_text())
    return spec


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_a_spec_compiled_again_is_not_checked_again(front_ends: list[str]) -> None:
    path = SPECS / "cifar" / "resnet20.yaml"
    first = compiler.compile(path, seed=3)
    again = compiler.compile(path, seed=3)
    assert front_ends == [os.fspath(path)]
    assert first is not again and type(first).__name__ == type(again).__name__
    _same_state(first, again)
    assert [n for n, _ in first.named_modules()] == [n for n, _ in again.named_modules()]
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(first.eval()(x), again.eval()(x))
    # the modules share no parameter with each other
    assert not {p.data_ptr() for p in first.parameters()} & {
        p.data_ptr() for p in again.parameters()
    }
    # other arguments are other entries; the graph a caller loads is never memoised
    compiler.compile(path, overrides=["params.n=2"])
    assert len(front_ends) == 2
    graph = compiler.load_spec(path)
    compiler.compile(graph)
    assert graph.memo is None


def test_an_edited_spec_is_read_again_whatever_its_timestamp(
    tmp_path: Path, front_ends: list[str]
) -> None:
    spec = _resnet20_in(tmp_path)
    stamp = os.stat(spec).st_mtime_ns
    assert _params(compiler.compile(spec)) == RESNET20_PARAMS
    # the same size and the same modification time: only the bytes differ
    spec.write_text(spec.read_text().replace("n: 3", "n: 2"))
    os.utime(spec, ns=(stamp, stamp))
    assert _params(compiler.compile(spec)) < RESNET20_PARAMS
    assert len(front_ends) == 2


def test_an_edited_parent_and_a_new_nearer_block_file_are_seen(
    tmp_path: Path, front_ends: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # resnet20's block type, from the library's blocks/ folder, until one appears nearer
    monkeypatch.setenv("NETC_PATH", str(tmp_path))  # the parent lies above the child's folder
    parent = _resnet20_in(tmp_path)
    child = tmp_path / "a" / "child.yaml"
    child.parent.mkdir()
    child.write_text(f"extends: {parent}\nname: child\n")
    assert _params(compiler.compile(child)) == RESNET20_PARAMS
    assert _params(compiler.compile(child)) == RESNET20_PARAMS
    assert len(front_ends) == 1
    parent.write_text(parent.read_text().replace("n: 3", "n: 2"))
    smaller = _params(compiler.compile(child))
    assert smaller < RESNET20_PARAMS and len(front_ends) == 2
    own = child.parent / "blocks"
    own.mkdir()
    basic = (SPECS / "blocks" / "basic.yaml").read_text()
    (own / "basic.yaml").write_text(basic.replace("expansion: 1 ", "expansion: 2 "))
    assert _params(compiler.compile(child)) > smaller and len(front_ends) == 3


def test_a_bad_spec_errors_until_it_is_fixed(tmp_path: Path, front_ends: list[str]) -> None:
    spec = _resnet20_in(tmp_path)
    good = spec.read_text()
    spec.write_text(good.replace("n: 3", "n: -1"))
    with pytest.raises(SpecError):
        compiler.compile(spec)
    spec.write_text(good)
    assert _params(compiler.compile(spec)) == RESNET20_PARAMS
    spec.unlink()
    with pytest.raises(SpecError, match="no such file"):
        compiler.compile(spec)


def test_a_graph_serves_one_build_at_a_time(front_ends: list[str]) -> None:
    """While one build uses the checked graph, another build of the same spec checks it itself;
    threads building one spec at once all get the whole network."""
    path = SPECS / "cifar" / "resnet20.yaml"
    reference = compiler.compile(path, seed=5)
    with spec_cache.checked(path, None, published_weights=False) as graph:
        assert graph.memo is not None  # the cache's own graph
        meanwhile = compiler.compile(path, seed=5)
    assert len(front_ends) == 2
    _same_state(reference, meanwhile)

    built: list[torch.nn.Module] = []

    def work() -> None:
        for _ in range(3):
            built.append(compiler.compile(path))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 6
    # (the weights differ: threads draw from torch's one global generator in turn)
    shapes = {k: v.shape for k, v in reference.state_dict().items()}
    for module in built:
        assert {k: v.shape for k, v in module.state_dict().items()} == shapes
        assert list(module.state_dict()) == list(shapes)
    # no two builds share a module or a tensor
    pointers = [{p.data_ptr() for p in m.parameters()} for m in [reference, meanwhile, *built]]
    assert sum(map(len, pointers)) == len(set().union(*pointers))


def test_inference_and_outputs_go_through_the_kept_graph(front_ends: list[str]) -> None:
    """The kept graph serves BN folding and backbones as it serves a plain build (folding works
    on a copy of it, never on the kept graph)."""
    path = SPECS / "resnet18.yaml"
    plain = compiler.compile(path, seed=1)
    folded = compiler.compile(path, seed=1, inference=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    again = compiler.compile(path, seed=1)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in again.modules())
    _same_state(plain, again)
    x = torch.randn(1, 3, 64, 64)
    assert torch.allclose(folded(x), plain.eval()(x), atol=1e-5)
    assert len(front_ends) == 1
    backbone = compiler.compile(path, outputs=["layer2", "layer4"])
    assert [f.shape[1] for f in backbone.eval()(x)] == [128, 512]
    compiler.compile(path, outputs=["layer2", "layer4"])
    assert len(front_ends) == 2


def test_a_file_that_appears_under_a_library_name_is_read(
    tmp_path: Path, front_ends: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``compile("resnet20.yaml")`` means the library's spec until a file of that name appears
    in the working folder; then it means the file."""
    monkeypatch.chdir(tmp_path)
    assert _params(compiler.compile("cifar/resnet20.yaml")) == RESNET20_PARAMS
    (tmp_path / "cifar").mkdir()
    spec = _resnet20_in(tmp_path / "cifar")
    spec.rename(tmp_path / "cifar" / "resnet20.yaml")
    (tmp_path / "cifar" / "resnet20.yaml").write_text(
        (SPECS / "cifar" / "resnet20.yaml").read_text().replace("n: 3", "n: 2")
    )
    assert _params(compiler.compile("cifar/resnet20.yaml")) < RESNET20_PARAMS
    assert len(front_ends) == 2
