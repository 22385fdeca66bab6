"""A checkpoint is untrusted input: a cached torchvision file whose sha256 does not match the
hash in its name, values of another kind than the module's (bool, integer, complex into float),
NaN or infinite values, meta and sparse tensors are all refused with a WeightsError located by
key, never converted silently or shown as a traceback. Tiny checkpoints, no download."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch

import compiler
from compiler.lowering import pretrained
from compiler.lowering.weights import WeightsError, where
from tests.conftest import TESTS, run_cli

TINY = str(TESTS / "specs" / "tiny.yaml")


@pytest.fixture
def graph() -> compiler.Graph:
    return compiler.load_spec(TINY)


@pytest.fixture
def state() -> dict[str, torch.Tensor]:
    """The tiny network's own weights: every entry fits."""
    return compiler.compile(TINY, seed=0).state_dict()


def _saved(tmp_path: Path, state: dict[str, torch.Tensor]) -> str:
    path = tmp_path / "tiny.pth"
    torch.save(state, path)
    return str(path)


def _refused(path: str) -> str:
    """The WeightsError compile gives, and check that the CLI says the same in one go, exit 1."""
    with pytest.raises(WeightsError) as e:
        compiler.compile(TINY, weights=path)
    code, out, err = run_cli("compile", TINY, "--weights", path)
    assert (code, out, err) == (1, "", f"{e.value}\n")
    return str(e.value)


@pytest.mark.parametrize("dtype", [torch.bool, torch.int64, torch.int32, torch.complex64])
def test_another_kind_into_a_float_parameter_is_refused(
    dtype: torch.dtype, state: dict[str, torch.Tensor], graph: compiler.Graph, tmp_path: Path
) -> None:
    state["conv1.weight"] = torch.ones_like(state["conv1.weight"], dtype=dtype)
    state["fc.bias"] = torch.zeros_like(state["fc.bias"], dtype=dtype)
    path = _saved(tmp_path, state)
    assert _refused(path) == "\n".join(
        [
            f"{path}: error: the checkpoint's values cannot be loaded into 'tiny' "
            "(2 of the wrong type, 0 not finite)",
            "  wrong type (a load would convert it silently):",
            f"    conv1.weight: checkpoint {dtype}, spec torch.float32"
            + where(graph, "conv1.weight"),
            f"    fc.bias: checkpoint {dtype}, spec torch.float32{where(graph, 'fc.bias')}",
        ]
    )


def test_a_float_into_an_integer_buffer_is_refused(
    state: dict[str, torch.Tensor], graph: compiler.Graph, tmp_path: Path
) -> None:
    key = "layer2.1.bn2.num_batches_tracked"
    state[key] = torch.tensor(2.5)
    path = _saved(tmp_path, state)
    assert _refused(path).splitlines()[2] == (
        f"    {key}: checkpoint torch.float32, spec torch.int64{where(graph, key)}"
    )


def test_integer_buffers_and_other_float_widths_still_load(
    state: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    """BatchNorm's num_batches_tracked is int64 (int32 in some exports); float16 or float64
    weights convert faithfully to the module's float32."""
    state["bn1.num_batches_tracked"] = torch.tensor(7, dtype=torch.int32)
    state["layer1.0.bn1.num_batches_tracked"] = torch.tensor(9)
    state["fc.weight"] = state["fc.weight"].half()
    state["conv1.weight"] = state["conv1.weight"].double()
    m = compiler.compile(TINY, weights=_saved(tmp_path, state))
    got = m.state_dict()
    assert got["bn1.num_batches_tracked"].dtype == torch.int64
    assert int(got["bn1.num_batches_tracked"]) == 7
    assert int(got["layer1.0.bn1.num_batches_tracked"]) == 9
    assert torch.equal(got["fc.weight"], state["fc.weight"].float())
    assert torch.equal(got["conv1.weight"], state["conv1.weight"].float())
    assert m.meta["weights"]["loaded"] == len(state)


def test_nan_and_infinite_values_are_refused(
    state: dict[str, torch.Tensor], graph: compiler.Graph, tmp_path: Path
) -> None:
    state["conv1.weight"][0, 0, 0, :2] = float("nan")
    state["fc.bias"][3] = float("-inf")
    state["layer1.0.bn1.running_var"][:] = float("inf")
    path = _saved(tmp_path, state)
    expected = "\n".join(
        [
            f"{path}: error: the checkpoint's values cannot be loaded into 'tiny' "
            "(0 of the wrong type, 3 not finite)",
            "  NaN or infinite values:",
            f"    conv1.weight: 2 NaN, 0 infinite of 432{where(graph, 'conv1.weight')}",
            "    layer1.0.bn1.running_var: 0 NaN, 16 infinite of 16"
            + where(graph, "layer1.0.bn1.running_var"),
            f"    fc.bias: 0 NaN, 1 infinite of 10{where(graph, 'fc.bias')}",
        ]
    )
    assert _refused(path) == expected
    with pytest.raises(WeightsError) as e:  # a partial load takes only finite values too
        compiler.compile(TINY, weights=path, partial=True)
    assert str(e.value) == expected


def test_many_bad_entries_show_the_first_few_and_the_count(
    state: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    floats = [k for k, v in state.items() if v.is_floating_point()]
    for k in floats:
        state[k] = torch.full_like(state[k], float("nan"))
    lines = _refused(_saved(tmp_path, state)).splitlines()
    assert lines[0].endswith(f"(0 of the wrong type, {len(floats)} not finite)")
    assert len(floats) == 37 and len(lines) == 2 + 12 + 1
    assert lines[-1] == "    ... and 25 more"


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda t: torch.empty_like(t, device="meta"), "a meta tensor (no data)"),
        (lambda t: t.to_sparse(), "a sparse tensor (torch.sparse_coo)"),
        (lambda t: t.flatten(1).to_sparse_csr(), "a sparse tensor (torch.sparse_csr)"),
    ],
    ids=["meta", "sparse_coo", "sparse_csr"],
)
def test_tensors_without_plain_data_are_refused(
    make: object, why: str, state: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    assert callable(make)
    state["conv1.weight"] = make(state["conv1.weight"])
    state["fc.weight"] = make(state["fc.weight"])
    path = _saved(tmp_path, state)
    assert _refused(path) == "\n".join(
        [
            f"{path}: error: 2 entries are not plain tensors with data",
            f"  conv1.weight: {why}",
            f"  fc.weight: {why}",
        ]
    )


# ---- the hash in a cached torchvision checkpoint's name ----------------------------------------


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch.hub cache, and no network: a download would be a test failure."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url: str, path: str) -> None:
        raise AssertionError(f"download of {url}")

    monkeypatch.setattr(pretrained, "_download", offline)
    monkeypatch.setattr(pretrained, "_digests", {})
    return tmp_path


def test_a_cached_checkpoint_whose_hash_differs_from_its_name_is_refused(
    torch_home: Path,
) -> None:
    published = pretrained.resolve("torchvision", "resnet18")
    path = Path(published.path)
    assert path.name == "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    torch.save({"fc.bias": torch.zeros(1000)}, path)  # loads fine, but is not torchvision's file
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    expected = (
        f"{path}: error: the file's sha256 ({digest[:16]}...) does not start with f37072fd, the "
        "hash in its name: it is damaged or is not ResNet18_Weights.IMAGENET1K_V1\n"
        f"  note: delete it; it will be downloaded again from {published.url}"
    )
    with pytest.raises(WeightsError) as e:
        compiler.compile("resnet18", weights="torchvision")
    assert str(e.value) == expected
    code, out, err = run_cli("compile", "resnet18", "--weights", "torchvision")
    assert (code, out, err) == (1, "", expected + "\n")
    assert path.exists()  # refused, not deleted: the user decides


def _named_after_its_hash(folder: Path, data: bytes) -> pretrained.Pretrained:
    """A checkpoint in the cache whose name holds its own sha256 prefix, as torchvision's do."""
    path = folder / f"net-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    path.write_bytes(data)
    return pretrained.Pretrained(
        model="net", name="Net_Weights.V1", url="https://example.invalid/x", path=str(path),
        preprocess={},
    )  # fmt: skip


def test_the_verdict_is_kept_while_the_file_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[str] = []
    sha256 = pretrained._sha256

    def counted(path: str) -> str:
        hashed.append(path)
        return sha256(path)

    monkeypatch.setattr(pretrained, "_sha256", counted)
    monkeypatch.setattr(pretrained, "_digests", {})
    weights = _named_after_its_hash(tmp_path, b"weights" * 1000)
    assert pretrained.fetch(weights) == weights.path
    assert pretrained.fetch(weights) == weights.path
    assert hashed == [weights.path]  # hashed once for both loads
    st = os.stat(weights.path)
    os.utime(weights.path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert pretrained.fetch(weights) == weights.path  # touched: hashed again, still good
    assert len(hashed) == 2
    Path(weights.path).write_bytes(b"other weights" * 1000)  # replaced in the cache
    with pytest.raises(WeightsError, match=r"does not start with [0-9a-f]{8}, the hash in its"):
        pretrained.fetch(weights)
    with pytest.raises(WeightsError, match=r"note: delete it; it will be downloaded again"):
        pretrained.fetch(weights)
    assert len(hashed) == 3  # the refusal is kept too while the file stays as it is


def test_a_name_without_a_hash_is_not_checked(tmp_path: Path) -> None:
    path = tmp_path / "net.pth"
    path.write_bytes(b"anything")
    weights = pretrained.Pretrained(
        model="net", name="N.V1", url="https://example.invalid/net.pth", path=str(path),
        preprocess={},
    )  # fmt: skip
    assert pretrained.fetch(weights) == str(path)
