"""The front end in one call: file -> resolved source -> spec -> IR -> verified, shaped, counted.

Nothing here imports torch: ``netc check`` and editors use this path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import Diagnostic, Loc, SpecError
from .expand import DEFAULT_MAX_NODES, expand
from .gc_pause import gc_paused
from .ir import Graph
from .passes import stats, verify
from .resolve import apply_overrides, load_resolved
from .source import Source
from .spec import check_network


@dataclass(frozen=True)
class Limits:
    """Caps checked before anything is allocated; raise them with the CLI flags named here."""

    max_nodes: int = DEFAULT_MAX_NODES  # --max-nodes
    max_params: int = 2_000_000_000  # --max-params: 8 GB of float32 weights
    max_activation_bytes: int = 8 << 30  # --max-activation-mb: 8 GiB of outputs per sample


def load_spec(
    path: str | os.PathLike[str],
    overrides: list[str] | None = None,
    limits: Limits | None = None,
    published_weights: bool = False,
) -> Graph:
    """Load, validate, expand and check a network spec (a file or a library name); the counts
    are in ``graph.totals`` (``graph.params``, ``graph.macs``). ``published_weights`` applies
    the spec's ``published_weights`` settings before ``overrides``: what torchvision's builder
    sets when it loads the weights it publishes (GoogLeNet's ``transform_input``).

    Raises SpecError (with every located problem) for a bad spec; never imports torch.
    """
    base = load_resolved(os.fspath(path))  # read once; overrides apply to it in memory
    src = apply_overrides(base, overrides) if overrides else base
    settings = src.data.get("published_weights") if isinstance(src.data, dict) else None
    if settings is not None:
        _check_published(src, settings)
    if published_weights and settings:
        # the spec's settings first: the caller's own overrides still win
        src = apply_overrides(base, [*settings, *(overrides or [])])
    graph = front_end(src, limits)
    graph.published_weights = published_weights
    return graph


def _check_published(src: Source, settings: object) -> None:
    """A spec's ``published_weights``: --set overrides, and a parameter they set is one the spec
    declares (a misspelt one would leave the input as it is, without an error)."""
    loc = src.loc(("published_weights",))
    if not isinstance(settings, list) or not all(isinstance(s, str) for s in settings):
        raise SpecError.at(
            loc,
            "'published_weights' must be a list of --set overrides, like "
            "[params.transform_input=true]",
        )
    declared = src.data.get("params") or {}
    for setting in settings:
        key = setting.partition("=")[0].strip()
        if key.startswith("params.") and key.removeprefix("params.") not in declared:
            raise SpecError.at(loc, f"'published_weights' sets {key}, which 'params' lacks")


def front_end(src: Source, limits: Limits | None = None) -> Graph:
    """The front end from a resolved Source: spec, expansion, verify, stats, caps."""
    limits = limits or Limits()
    spec = check_network(src)
    with gc_paused():
        graph = expand(spec, limits.max_nodes)
        verify.run(graph)
        stats.run(graph)
    _check_limits(graph, spec.loc("name"), limits)
    return graph


def _check_limits(graph: Graph, loc: Loc, limits: Limits) -> None:
    problems = []
    if graph.params > limits.max_params:
        problems.append(
            Diagnostic(
                loc,
                f"the network has {graph.params:,} parameters; the cap is {limits.max_params:,}",
                ["raise it with --max-params if this is intended"],
            )
        )
    act = graph.activation_bytes
    if act > limits.max_activation_bytes:
        problems.append(
            Diagnostic(
                loc,
                f"one sample needs {act / 2**20:,.0f} MiB of "
                f"activations; the cap is "
                f"{limits.max_activation_bytes / 2**20:,.0f} MiB",
                ["raise it with --max-activation-mb if this is intended"],
            )
        )
    if problems:
        raise SpecError(problems)
