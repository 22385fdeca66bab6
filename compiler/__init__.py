"""netc: a compiler from YAML architecture specs to PyTorch modules, ONNX files and diagrams.

``load_spec`` runs the front end (no torch import); ``compile`` also builds the torch module.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from .errors import SpecError
from .frontend import arguments
from .frontend.load import Limits, load_spec
from .gc_pause import gc_paused
from .ir.graph import Graph
from .ops import enable_plugin as _enable
from .ops.plugins import PluginError

if TYPE_CHECKING:
    from torch import fx

    from .lowering.weights import LoadReport

__version__ = "0.1.0"
__all__ = [
    "Graph",
    "Limits",
    "PluginError",
    "SpecError",
    "__version__",
    "compile",
    "enable_plugin",
    "list_models",
    "load_spec",
]


def enable_plugin(module: str) -> tuple[str, ...]:
    """Import the plugin ``module`` and add the ops its ``NETC_OPS`` declares to netc's, for
    this process; returns their names (docs/guide/plugins.md). ``NETC_PLUGINS`` (comma-separated
    modules) does the same for every module it names, on the first spec loaded. Raises
    PluginError when the module cannot be imported or an op it declares is refused (one of
    netc's own names, a missing rule)."""
    return _enable(module)


def list_models(pattern: str = "*") -> list[str]:
    """The names of the library's networks that match ``pattern`` (a shell pattern such as
    ``"resnet*"`` or ``"cifar/*"``), sorted; each is accepted wherever a spec is. Nothing is
    loaded: ``load_spec(name)`` checks one."""
    import fnmatch

    from .frontend.library import library_name, spec_files
    from .frontend.lookup import library_root

    if not isinstance(pattern, str):
        raise TypeError(f"list_models(): pattern must be a str, got {arguments.got(pattern)}")
    root = library_root()
    names = (library_name(p, root) for p in spec_files(root))
    return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))


def compile(  # noqa: A001 - the interface other code relies on is compiler.compile
    path_or_spec: str | os.PathLike[str] | Graph,
    overrides: Iterable[str] | None = None,
    seed: int | None = None,
    zero_init_residual: bool | None = None,
    weights: str | os.PathLike[str] | None = None,
    inference: bool = False,
    outputs: Iterable[str] | None = None,
    partial: bool = False,
    part_weights: Mapping[str, str | os.PathLike[str]] | None = None,
    **params: bool | int | float | str,
) -> fx.GraphModule:
    """Build the torch module a spec describes, initialised as torchvision does.

    Keyword arguments set the spec's parameters, as timm's ``create_model`` takes them:
    ``compile("resnet50", num_classes=10)`` is ``overrides=["params.num_classes=10"]``; a name
    the spec does not declare is a TypeError with a did-you-mean (a str value is an expression).

    ``zero_init_residual`` defaults to the spec's own setting; ``seed`` makes weights reproducible;
    ``weights`` loads a torchvision/timm-format checkpoint strictly
    (compiler.lowering.weights.WeightsError
    with a located report when it does not fit): a file, or ``"torchvision"`` /
    ``"torchvision:IMAGENET1K_V1"`` for the weights torchvision publishes for the spec's model
    (its ``weights_from``, or its name), read from torch.hub's cache or downloaded there once.
    ``partial=True`` loads what fits and leaves the rest as initialised; the load's report (and
    the weights' preprocessing) is in ``module.meta["weights"]``. ``part_weights`` loads a
    checkpoint into a part (the spec's ``parts:``) by its path, as torchvision's
    ``weights_backbone`` does: ``{"backbone": "torchvision"}`` (the published weights of the
    part's model) or a file of the part's own network; reports in
    ``module.meta["part_weights"]``. ``inference=True`` returns the eval-mode module with each
    BatchNorm folded into the conv before it (compiler.lowering.folding) and its conv weights
    channels-last, which CPU convolutions run faster (compiler.lowering.layout).
    ``outputs`` (stage, block or node names) makes a backbone that returns those feature maps
    as a list, with ``feature_info`` as timm's ``features_only`` models have it; the spec's
    ``outputs:`` does the same. ``path_or_spec`` may be a file or a library name such as
    ``"resnet50"``; one compiled before in this process is not checked again while its files
    are unchanged (compiler.frontend.spec_cache).

    Raises SpecError for a bad spec, TypeError or ValueError for an argument of the wrong kind
    (checked before anything is read or built).
    """
    fn = "compile()"
    if not isinstance(path_or_spec, Graph):
        path_or_spec = arguments.spec_path(fn, path_or_spec, graph_ok=True)
    overrides = arguments.overrides(fn, overrides)
    seed = arguments.seed(fn, seed)
    zero_init_residual = arguments.optional_flag(fn, "zero_init_residual", zero_init_residual)
    weights = arguments.weights_path(fn, weights)
    inference = arguments.flag(fn, "inference", inference)
    outputs = arguments.names(fn, "outputs", outputs)
    partial = arguments.flag(fn, "partial", partial)
    part_weights = arguments.part_weights(fn, part_weights)
    # a loaded Graph is final: overrides or outputs given with one would be dropped unread
    if isinstance(path_or_spec, Graph) and overrides:
        raise ValueError(
            f"{fn}: overrides need a spec file or name, not a loaded Graph; "
            "pass them to load_spec() instead"
        )
    if isinstance(path_or_spec, Graph) and outputs is not None:
        raise ValueError(
            f"{fn}: outputs need a spec file or name, not a loaded Graph; "
            f"load it with load_spec(..., overrides=['outputs={json.dumps(outputs)}'])"
        )
    if outputs is not None:
        overrides = [*(overrides or []), f"outputs={json.dumps(outputs)}"]
    if params:
        if isinstance(path_or_spec, Graph):
            raise ValueError(
                f"{fn}: parameters ({', '.join(params)}) need a spec file or name, not a loaded "
                "Graph"
            )
        overrides = [*(overrides or []), *_param_overrides(fn, path_or_spec, params)]
    from .lowering.pretrained import is_named

    named = weights is not None and is_named(weights)
    if isinstance(path_or_spec, Graph):
        return _build(
            path_or_spec, seed, zero_init_residual, weights, named, inference, partial, part_weights
        )
    from .frontend import spec_cache

    # a spec compiled before in this process, its files unchanged, is not checked again
    with spec_cache.checked(path_or_spec, overrides, published_weights=named) as graph:
        return _build(
            graph, seed, zero_init_residual, weights, named, inference, partial, part_weights
        )


def _param_overrides(fn: str, spec: str, params: Mapping[str, object]) -> list[str]:
    """``params.name=value`` for each keyword argument, after checking that the spec declares
    each name and that each value is a number, a bool or an expression."""
    from .errors import suffix_hint

    for key, value in params.items():
        if not isinstance(value, (bool, int, float, str)):
            raise TypeError(
                f"{fn}: {key} must be a number, a bool or an expression (str), got "
                f"{arguments.got(value)}"
            )
    origin = load_spec(spec).origin
    raw = origin.data.get("params") if origin is not None else None
    declared: list[str] = list(raw) if isinstance(raw, dict) else []
    for key in params:
        if key not in declared:
            listing = ", ".join(declared) or "none"
            raise TypeError(
                f"{fn}: {spec} has no parameter {key!r}{suffix_hint(key, declared)} (its "
                f"parameters: {listing})"
            )
    return [f"params.{key}={json.dumps(value)}" for key, value in params.items()]


def _build(
    graph: Graph,
    seed: int | None,
    zero_init_residual: bool | None,
    weights: str | os.PathLike[str] | None,
    named: bool,
    inference: bool,
    partial: bool,
    part_weights: dict[str, str | os.PathLike[str]] | None = None,
) -> fx.GraphModule:
    """compile()'s work once the spec is checked (``named``: ``weights`` names published
    weights)."""
    unknown = [p for p in part_weights or {} if p not in graph.parts]
    if unknown:
        from .errors import suffix_hint
        from .lowering.weights import WeightsError

        raise WeightsError(
            f"part weights: {graph.name} has no part {unknown[0]!r}"
            f"{suffix_hint(unknown[0], graph.parts)} "
            f"(its parts: {', '.join(graph.parts) or 'none'})"
        )
    from .lowering.initialise import initialise, materialise, seeded
    from .lowering.lower import lower

    settings = graph.origin.published_weights if graph.origin is not None else ()
    if named and settings and not graph.published_weights:
        from .lowering.weights import WeightsError

        raise WeightsError(
            f"--weights {weights}: torchvision builds {graph.name} for its published weights "
            f"with {', '.join(settings)}; load the spec with load_spec(..., "
            "published_weights=True) or pass its path"
        )
    if zero_init_residual is None:
        zero_init_residual = graph.origin is not None and graph.origin.zero_init_residual
    with seeded(seed), gc_paused():
        # the layers built without default init, the other modules on the meta device, then
        # given real storage, and every weight initialised once: torch's own constructors would
        # initialise every weight twice
        module = lower(graph, meta_unless_bare=True)
        materialise(module)
        initialise(module, graph, zero_init_residual)
    if weights is not None:
        module.meta["weights"] = _load_weights(module, graph, weights, partial).as_dict()
    if part_weights:
        module.meta["part_weights"] = {
            part: _load_weights(module, graph, source, partial, part).as_dict()
            for part, source in part_weights.items()
        }
    from .lowering.classifier import attach

    attach(module, graph)  # timm's get_classifier, forward_features, ... on a classifier
    if inference:
        from .lowering.folding import fold_module
        from .lowering.layout import channels_last

        module = channels_last(fold_module(module.eval(), graph)[0])
    return module


def _load_weights(
    module: fx.GraphModule,
    graph: Graph,
    weights: str | os.PathLike[str],
    partial: bool,
    part: str = "",
) -> LoadReport:
    """``weights`` (a file or published weights) into the network, or into its part ``part``."""
    from .lowering.pretrained import fetch, is_named, resolve
    from .lowering.weights import load_part_weights, load_weights

    load = functools.partial(load_part_weights, part=part) if part else load_weights
    if not is_named(weights):
        return load(module, graph, path=weights, partial=partial)
    if part:
        model = graph.parts[part].weights_from
    else:
        model = (graph.origin.weights_from if graph.origin is not None else "") or graph.name
    published = resolve(str(weights), model)
    report = load(
        module,
        graph,
        path=fetch(published),
        partial=partial,
        source=published.name,
        upgrade=published.upgrade,
    )
    report.preprocess = published.preprocess
    return report
