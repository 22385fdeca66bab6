"""What a network returns: its ``outputs:`` (a list, or a dict by key), its training-only
``aux_outputs:`` and the outputs ``eval_only:`` keeps out of training, each resolved like
``output``."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ..errors import suffix_hint
from ..ir.graph import INPUT, Feature
from .context import Context, Failed

if TYPE_CHECKING:
    from .expand import Expander


def features(ex: Expander, top: Context, key: str = "outputs") -> list[Feature]:
    """The feature maps ``outputs:`` asks for (or the training outputs ``aux_outputs:``),
    each resolved like ``output``."""
    out: list[Feature] = []
    names = ex.spec.outputs if key == "outputs" else ex.spec.aux_outputs
    keys = ex.spec.output_keys if key == "outputs" else []
    for k, name in enumerate(names):
        loc = ex.spec.loc(key, keys[k] if keys else k)
        try:
            # (a name may be a template of the network's params)
            name = ex.rendered(name, ex.net_env, loc, top, f"output '{name}'")
            node = ex.resolve(name, {}, loc, top, set())
        except Failed:
            continue
        if node == INPUT or node is None:
            ex.error(top, loc, f"'{name}' is the network's input, not a feature map")
        elif any(f.node == node for f in out):
            ex.error(top, loc, f"'{name}' is already one of the outputs")
        else:
            out.append(Feature(name=name, node=node, key=keys[k] if keys else ""))
    ex.diags.raise_if_any()
    return out


def eval_only(ex: Expander, top: Context, features: list[Feature]) -> list[Feature]:
    """``features`` with those ``eval_only:`` names marked (by key where the outputs are a
    mapping, else by name); training must return one of them at least."""
    spec = ex.spec
    if not spec.eval_only:
        return features
    by = {f.key or f.name: f for f in features}
    marked: set[str] = set()
    for k, raw in enumerate(spec.eval_only):
        loc = spec.loc("eval_only", k)
        # (a name may be a template of the network's params, as the outputs' own may)
        try:
            name = ex.rendered(raw, ex.net_env, loc, top, f"'eval_only' entry '{raw}'")
        except Failed:
            continue
        if not features:
            ex.error(top, loc, "'eval_only' names some of 'outputs': this network has none")
            break
        if name not in by:
            what = "keys" if features[0].key else "names"
            ex.error(
                top,
                loc,
                f"'{name}' is not one of the outputs{suffix_hint(name, list(by))}",
                f"the outputs' {what}: " + ", ".join(by),
            )
        elif name in marked:
            ex.error(top, loc, f"'{name}' is listed twice")
        marked.add(name)
    if features and marked >= set(by):
        ex.error(
            top,
            spec.loc("eval_only"),
            "every output is eval-only: a training forward would return nothing",
            "list the outputs training reads in 'outputs' without naming them here",
        )
    ex.diags.raise_if_any()
    return [dataclasses.replace(f, eval_only=(f.key or f.name) in marked) for f in features]
