"""Loading torchvision- or timm-format checkpoints into a compiled module, safely.

Checkpoints are read with ``torch.load(weights_only=True)``: only tensors and plain containers,
never arbitrary pickled objects. A checkpoint that does not fit the spec gets a report of missing,
unexpected and wrong-shape keys, each missing or wrong key located at the spec node it belongs to;
a partial load takes what fits and reports the rest the same way.

Values are checked as well as names and shapes, since load_state_dict converts silently: a
tensor without data (meta), a sparse or quantized one, one whose kind differs from the module's
(bool, integer or complex into a float parameter; integer buffers such as BatchNorm's
num_batches_tracked stay integers), and NaN or infinite values are refused, each by key.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import one_line
from ..ir.graph import Graph

WRAPPERS = ("state_dict", "model", "model_state", "net")  # common checkpoint nestings
SHOWN = 12  # keys listed per kind of problem: enough to see the pattern; counts say how many


# renames an older layout's checkpoint entries to the current one
Upgrade = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]


class WeightsError(Exception):
    """A checkpoint that cannot be read or does not fit; ``str()`` is the full report."""


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a state_dict saved with torch.save (optionally wrapped in {'state_dict': ...})."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightsError(f"{path}: error: no such checkpoint file")
    try:
        # torch warns about sparse and legacy contents; what matters is reported below
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or unsafe files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(f"{path}: error: cannot read checkpoint: {first}") from None
    for key in WRAPPERS:
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items()
    ):
        raise WeightsError(f"{path}: error: not a state_dict (a mapping of names to tensors)")
    odd = {k: why for k, v in data.items() if (why := _not_plain(v))}
    if odd:
        raise WeightsError(
            f"{path}: error: {len(odd)} entries are not plain tensors with data\n"
            + _listed([f"{one_line(k)}: {why}" for k, why in odd.items()])
        )
    return data


def _not_plain(t: torch.Tensor) -> str | None:
    """Why ``t`` cannot be copied into a module's parameter, or None when it can."""
    if t.is_meta:
        return "a meta tensor (no data)"
    if t.layout != torch.strided:
        return f"a sparse tensor ({t.layout})"
    if t.is_quantized:
        return f"a quantized tensor ({t.dtype})"
    return None


def _kind(dtype: torch.dtype) -> str:
    """What a dtype holds; a load within one kind converts faithfully (float16 -> float32)."""
    if dtype.is_complex:
        return "complex"
    if dtype.is_floating_point:
        return "float"
    return "bool" if dtype == torch.bool else "integer"


def _listed(lines: list[str], indent: str = "  ") -> str:
    """The first SHOWN lines, indented, and how many more there are."""
    shown = [indent + line for line in lines[:SHOWN]]
    if len(lines) > SHOWN:
        shown.append(f"{indent}... and {len(lines) - SHOWN} more")
    return "\n".join(shown)


def _check_values(
    source: str, graph: Graph, own: dict[str, torch.Tensor], fits: dict[str, torch.Tensor]
) -> None:
    """Refuse entries whose kind differs from the module's, and non-finite values."""
    kinds = [
        f"{k}: checkpoint {v.dtype}, spec {own[k].dtype}{where(graph, k)}"
        for k, v in fits.items()
        if _kind(v.dtype) != _kind(own[k].dtype)
    ]
    finite = []
    for k, v in fits.items():
        if (v.is_floating_point() or v.is_complex()) and not bool(torch.isfinite(v).all()):
            nan, inf = int(torch.isnan(v).sum()), int(torch.isinf(v).sum())
            finite.append(f"{k}: {nan:,} NaN, {inf:,} infinite of {v.numel():,}{where(graph, k)}")
    if not kinds and not finite:
        return
    counts = f"{len(kinds)} of the wrong type, {len(finite)} not finite"
    lines = [
        f"{source}: error: the checkpoint's values cannot be loaded into '{graph.name}' ({counts})"
    ]
    if kinds:
        lines += ["  wrong type (a load would convert it silently):", _listed(kinds, "    ")]
    if finite:
        lines += ["  NaN or infinite values:", _listed(finite, "    ")]
    raise WeightsError("\n".join(lines))


@dataclass(kw_only=True)
class LoadReport:
    """What a checkpoint gave a module, entry by entry (``--partial`` loads what fits)."""

    source: str  # the file, or the published weights' name
    loaded: int = 0
    # left as initialised: key -> (the checkpoint's shape, the spec's)
    shape_differs: dict[str, tuple[list[int], list[int]]] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)  # the spec's, not in the checkpoint
    unused: list[str] = field(default_factory=list)  # the checkpoint's, not in the spec
    preprocess: dict[str, Any] | None = None  # published weights: how to feed the model

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "loaded": self.loaded,
            "shape_differs": {
                k: {"checkpoint": c, "spec": s} for k, (c, s) in self.shape_differs.items()
            },
            "absent": self.absent,
            "unused": self.unused,
            **({"preprocess": self.preprocess} if self.preprocess else {}),
        }


def load_weights(
    module: nn.Module,
    graph: Graph,
    path: str | os.PathLike[str],
    partial: bool = False,
    source: str | None = None,
    upgrade: Upgrade | None = None,
) -> LoadReport:
    """Load a checkpoint. Strictly by default: a WeightsError with a located report on any
    mismatch. ``partial``: every entry whose name and shape match, the rest left as initialised
    (a new head, added layers), all of it in the returned report. ``upgrade`` renames an older
    layout's entries first, as the reference's own modules do when they load it."""
    own = module.state_dict()
    state = _frozen_steps_dropped(read_state_dict(path), own, "")
    state = upgrade(state) if upgrade is not None else state
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    where = source or os.fspath(path)
    if not partial and (missing or unexpected or wrong):
        raise WeightsError(_report(where, graph, own, state, missing, unexpected, wrong))
    return _load_fitting(module, graph, own, state, where, missing, wrong, unexpected, not partial)


def load_part_weights(
    module: nn.Module,
    graph: Graph,
    part: str,
    path: str | os.PathLike[str],
    partial: bool = False,
    source: str | None = None,
    upgrade: Upgrade | None = None,
) -> LoadReport:
    """Load a checkpoint of the network a part is (an ImageNet ResNet-50 into a segmentation
    network's backbone): its entries under the part's path, strictly for the part's own (every
    one of them must be in the checkpoint, shaped alike) unless ``partial``; the checkpoint's
    entries the part does not hold (the classifier a part leaves out) are reported as unused."""
    info = graph.parts[part]
    prefix, inside = part + ".", info.module + "." if info.module else ""
    own = {k: v for k, v in module.state_dict().items() if k.startswith(prefix)}
    state = _frozen_steps_dropped(read_state_dict(path), own, prefix, inside)
    state = upgrade(state) if upgrade is not None else state
    placed: dict[str, torch.Tensor] = {}
    unused: list[str] = []
    for key, value in state.items():
        moved = prefix + key[len(inside) :] if key.startswith(inside) else None
        if moved in own:
            placed[moved] = value
        else:
            unused.append(key)
    missing = [k for k in own if k not in placed]
    wrong = [k for k in own if k in placed and placed[k].shape != own[k].shape]
    where_from = f"{source or os.fspath(path)} (into part '{part}')"
    if not partial and (missing or wrong):
        raise WeightsError(_report(where_from, graph, own, placed, missing, [], wrong))
    # (the rest of the network is not in the checkpoint: never a strict load)
    return _load_fitting(module, graph, own, placed, where_from, missing, wrong, unused, False)


def _frozen_steps_dropped(
    state: dict[str, torch.Tensor], own: dict[str, torch.Tensor], prefix: str, inside: str = ""
) -> dict[str, torch.Tensor]:
    """``state`` without the step counts (``num_batches_tracked``) of BatchNorms that are frozen
    here: a frozen BatchNorm keeps none, and drops the one a BatchNorm's checkpoint holds, as
    torchvision's FrozenBatchNorm2d does."""

    def here(key: str) -> str:
        return prefix + key[len(inside) :] if key.startswith(inside) else ""

    step = "num_batches_tracked"
    return {
        k: v
        for k, v in state.items()
        if not (
            k.endswith("." + step)
            and here(k) not in own
            and here(k)[: -len(step)] + "running_mean" in own
        )
    }


def _load_fitting(
    module: nn.Module,
    graph: Graph,
    own: dict[str, torch.Tensor],
    state: dict[str, torch.Tensor],
    where: str,
    missing: list[str],
    wrong: list[str],
    unused: list[str],
    strict: bool,
) -> LoadReport:
    """Load the checkpoint's entries that fit (named as the module's, shaped alike), their
    values checked first; the report of what was loaded and what was not."""
    fits = {k: v for k, v in state.items() if k in own and k not in wrong}
    _check_values(where, graph, own, fits)
    module.load_state_dict(fits, strict=strict)
    return LoadReport(
        source=where,
        loaded=len(fits),
        shape_differs={k: (list(state[k].shape), list(own[k].shape)) for k in wrong},
        absent=missing,
        unused=unused,
    )


def where(graph: Graph, key: str) -> str:
    """'  (file:line:col, node 'name')' for a state_dict key, or '' for one no node owns."""
    node = graph.nodes.get(key.rsplit(".", 1)[0])
    return f"  ({node.loc}, node '{node.name}')" if node else ""


def _report(
    path: str,
    graph: Graph,
    own: dict[str, torch.Tensor],
    state: dict[str, torch.Tensor],
    missing: list[str],
    unexpected: list[str],
    wrong: list[str],
) -> str:
    counts = f"{len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} wrong shape"
    lines = [f"{path}: error: the checkpoint does not fit '{graph.name}' ({counts})"]
    limit = 12  # enough to see the pattern; the counts say how many there are
    lines += [f"  missing: {k}{where(graph, k)}" for k in missing[:limit]]
    lines += [f"  unexpected: {one_line(k)}" for k in unexpected[:limit]]
    lines += [
        f"  wrong shape: {k}: checkpoint {list(state[k].shape)}, spec {list(own[k].shape)}"
        f"{where(graph, k)}"
        for k in wrong[:limit]
    ]
    if max(len(missing), len(unexpected), len(wrong)) > limit:
        lines.append(f"  (the first {limit} of each kind are shown)")
    return "\n".join(lines)
