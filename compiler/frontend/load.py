"""The front end in one call: file -> resolved source -> spec -> IR -> verified, shaped, counted.

Nothing here imports torch: ``netc check`` and editors use this path.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import SpecError
from ..gc_pause import gc_paused
from ..ir.graph import Graph
from ..ir.passes import sizes, stats, verify
from ..ops import OPS, plugins
from . import arguments
from .caps import Caps
from .expand import expand
from .resolve import apply_overrides, load_resolved
from .source import Source
from .spec import check_network


@dataclass(frozen=True)
class Limits:
    """Caps checked before anything is allocated; raise them with the CLI flags named here."""

    max_nodes: int = Caps.max_nodes  # --max-nodes
    max_params: int = Caps.max_params  # --max-params: 8 GB of float32 weights
    max_activation_bytes: int = Caps.max_activation_bytes  # --max-activation-mb: 8 GiB/sample

    def __post_init__(self) -> None:
        # a cap of 1e6 or True would compare as a number and never say why it is wrong
        for name, value in vars(self).items():
            arguments.whole("Limits()", name, value)


def load_spec(
    path: str | os.PathLike[str],
    overrides: Iterable[str] | None = None,
    limits: Limits | None = None,
    published_weights: bool = False,
) -> Graph:
    """Load, validate, expand and check a network spec (a file or a library name); the counts
    are in ``graph.totals`` (``graph.params``, ``graph.macs``). ``published_weights`` applies
    the spec's ``published_weights`` settings before ``overrides``: what torchvision's builder
    sets when it loads the weights it publishes (GoogLeNet's ``transform_input``).

    Raises SpecError (with every located problem) for a bad spec, TypeError or ValueError for
    an argument of the wrong kind; never imports torch.
    """
    fn = "load_spec()"
    plugins.from_environment(OPS)  # NETC_PLUGINS: the user's own ops, before any spec is read
    path = arguments.spec_path(fn, path)
    overrides = arguments.overrides(fn, overrides)
    limits = arguments.instance(fn, "limits", limits, Limits, "compiler.Limits")
    published_weights = arguments.flag(fn, "published_weights", published_weights)
    base = load_resolved(path)  # read once; overrides apply to it in memory
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
    """The front end from a resolved Source: spec, expansion (which applies the caps as it
    goes), verify, stats."""
    limits = limits or Limits()
    spec = check_network(src)
    with gc_paused():
        graph = expand(spec, Caps(**dataclasses.asdict(limits)))
        verify.run(graph)
        stats.run(graph)
        sizes.prove(graph)
    return graph
