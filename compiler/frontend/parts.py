"""Networks as parts of a network: ``parts:`` composes specs.

    parts:
      backbone: {spec: resnet50_dilated, outputs: [layer3, layer4]}

makes the whole of another spec (its stem and stages, pruned to what the listed outputs need: the
head is dropped, as torchvision's IntermediateLayerGetter drops it) a part of this network, at
the module path ``backbone`` (``backbone.layer1.0.conv1``: a checkpoint of the part loads under
that prefix). The part reads the network's input, and its own ``params`` and ``--set`` style
overrides (``set: [params.width=32]``) shape it from outside. The stem, stages and head of the
network read the part's values by path: ``backbone.layer4`` (a stage's output), any node or
block path inside it. The part's spec file is found and trusted as an ``extends:`` target is.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import Loc, SpecError, did_you_mean, suffix_hint
from ..ir.graph import INPUT, MODULE_PART, PartInfo, Stage, feeding
from . import fs
from .access import SEARCH_PATH, refusal, roots
from .lookup import library_root, library_spec
from .nodes import Checker, describe
from .source import Source

if TYPE_CHECKING:
    from .expand import Expander
    from .spec import NetworkSpec

PART_KEYS = {
    "spec": "the spec file or library name of the part (required)",
    "outputs": "the part's values the network reads, like [layer3, layer4] (default: its output)",
    "set": "overrides of the part's spec, like [params.width=32] (as --set)",
    "module": "the part's module that the path stands for, like features (default: the whole)",
    "idle": "values of the part kept with their weights though the network never runs them, "
    "like [layer3, layer4] (smp's PSPNet holds its encoder's last stages)",
}
MAX_PART_DEPTH = 8  # parts of parts


@dataclass(kw_only=True)
class PartSpec:
    """One entry of ``parts:``, its spec checked."""

    path: str  # the module path its nodes are placed under ('backbone')
    spec: NetworkSpec
    loc: Loc
    # the part's module that ``path`` stands for ('features': features.4 is backbone.4, as
    # torchvision's segmentation models take MobileNetV3's features); '': the whole part
    module: str = ""
    # the part's values whose modules it holds though nothing runs them (smp's PSPNet's
    # encoder keeps layer3 and layer4 in its state_dict, its forward stops at layer2)
    idle: list[str] = field(default_factory=list)


def check_parts(c: Checker, top: dict[str, Any], src: Source, depth: int = 0) -> list[PartSpec]:
    """Each ``parts:`` entry's spec, read and checked (errors into ``c.diags``)."""
    from .spec import check_network

    raw = top.get("parts")
    if raw is None:
        return []
    if not isinstance(raw, dict) or not raw:
        c.diags.error(c.src.loc(("parts",)), "'parts' must map module paths to parts")
        return []
    out = []
    for path, entry in raw.items():
        where = ("parts", path)
        loc = c.src.key_loc(where)
        if not isinstance(path, str) or not all(MODULE_PART.fullmatch(p) for p in path.split(".")):
            c.diags.error(
                loc,
                "a part's path must be a module path (names of letters, digits, _ joined by "
                f"dots, like backbone.body), got {path!r}",
            )
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("spec"), str):
            c.diags.error(
                c.src.loc(where),
                f"part '{path}' must be a mapping with a spec, like {{spec: resnet50}}, "
                f"got {describe(entry)}",
            )
            continue
        unknown = [k for k in entry if k not in PART_KEYS]
        if unknown:
            c.diags.error(
                c.src.key_loc((*where, unknown[0])),
                f"unknown key '{unknown[0]}' in part '{path}'"
                f"{suffix_hint(str(unknown[0]), PART_KEYS)}",
                "keys: " + ", ".join(PART_KEYS),
            )
            continue
        if depth >= MAX_PART_DEPTH:
            c.diags.error(loc, f"parts nest deeper than {MAX_PART_DEPTH}")
            continue
        try:
            part_src = _part_source(
                src, entry, top.get("input"), c.src.loc((*where, "spec")), c.src, where
            )
            spec = check_network(part_src)
        except SpecError as e:
            c.diags.items.extend(e.diagnostics)
            continue
        module = entry.get("module", "")
        if not isinstance(module, str) or (
            module and not all(MODULE_PART.fullmatch(p) for p in module.split("."))
        ):
            c.diags.error(c.src.loc((*where, "module")), "a part's 'module' must be a module path")
            continue
        out.append(
            PartSpec(
                path=path, spec=spec, loc=loc, module=module, idle=list(entry.get("idle") or [])
            )
        )
    return out


def _part_source(
    src: Source,
    entry: dict[str, Any],
    shape: Any,
    loc: Loc,
    network: Source | None = None,
    where: tuple[str | int, ...] = (),
) -> Source:
    """The part's spec, read under the rule ``extends:`` follows, its overrides applied, its
    input the network's and its outputs the ones asked for (an error in those is located where
    the network (``network``, the entry at ``where``) asks for them)."""
    from .resolve import _load_chain, apply_overrides, shown_path

    name = entry["spec"]
    first = (src.chain or [src.file])[0]
    allowed = roots(first, library_root())
    path = os.path.normpath(os.path.join(os.path.dirname(loc.file), name))
    if not fs.exists(path):
        path = library_spec(name) or path
        if not fs.exists(path):
            from .library import library_name, spec_files

            root = library_root()
            known = [library_name(p, root) for p in spec_files(root)]
            stem = name[:-5] if name.endswith(".yaml") else name
            raise SpecError.at(loc, f"no such spec: {name}", did_you_mean(stem, known))
    elif why := refusal(path, allowed):  # checked before the file is opened
        raise SpecError.at(
            loc,
            f"cannot read part: {shown_path(path)} {why}",
            f"name its folder with --path or {SEARCH_PATH} if you trust it",
        )
    part = _load_chain(shown_path(path), [], allowed, loc, fs.realpath(path))
    sets = entry.get("set", [])
    if not isinstance(sets, list) or not all(isinstance(s, str) for s in sets):
        raise SpecError.at(
            loc, "a part's 'set' must be a list of overrides, like [params.width=32]"
        )
    if sets:
        try:
            part = apply_overrides(part, sets)
        except SpecError as e:
            raise SpecError.at(loc, "in the part's 'set': " + e.diagnostics[0].message) from None
    data = dict(part.data)
    if isinstance(shape, list):
        data["input"] = shape  # the network's input is the part's
    data.pop("sizes", None)  # the network's own rule is proven over the whole, parts included
    outputs, idle = entry.get("outputs"), entry.get("idle")
    for key, names in (("outputs", outputs), ("idle", idle)):
        if names is not None and (
            not isinstance(names, list) or not names or not all(isinstance(o, str) for o in names)
        ):
            raise SpecError.at(loc, f"a part's '{key}' must be a list of names, like [layer4]")
    if idle is not None and outputs is None:
        raise SpecError.at(loc, "a part with 'idle' values lists its 'outputs' too")
    values = part.values
    if outputs is not None:
        data["outputs"] = [*outputs, *(idle or [])]  # what is kept: the idle values too
        data.pop("aux_outputs", None)
        data.pop("eval_only", None)
        if network is not None:
            asked = [(*where, "outputs", k) for k in range(len(outputs))]
            asked += [(*where, "idle", k) for k in range(len(idle or []))]
            values = {
                **part.values,
                **{("outputs", k): network.loc(p) for k, p in enumerate(asked)},
            }
    return Source(part.file, data, values, part.keys, part.chain)


def info(part: PartSpec) -> PartInfo:
    """What the graph keeps of a part: its path, module and the weights that fit it."""
    data = part.spec.source.data
    model = data.get("weights_from") if isinstance(data, dict) else None
    return PartInfo(path=part.path, module=part.module, weights_from=model or part.spec.name)


def embed(ex: Expander, part: PartSpec) -> None:
    """Expand the part and place its nodes, stages and blocks under ``part.path`` in ``ex``."""
    from .expand import Expander

    inner = Expander(part.spec)
    inner.tally = ex.tally  # the caps bound the whole network, parts included
    graph = inner.run()
    prefix, inside = part.path + ".", part.module + "." if part.module else ""
    outside = [n for n in graph.nodes if not n.startswith(inside)]
    if outside:
        raise SpecError.at(
            part.loc,
            f"part '{part.path}' holds '{outside[0]}', outside its module '{part.module}'",
            "list in the part's 'outputs' only values of that module",
        )

    def moved(name: str) -> str:
        if name == INPUT:
            return name
        return prefix + (name[len(inside) :] if inside and name.startswith(inside) else name)

    for node in graph.nodes.values():
        placed = dataclasses.replace(
            node,
            name=moved(node.name),
            inputs=[moved(i) for i in node.inputs],
            block=moved(node.block) if node.block else None,
            stage=prefix + node.stage,
            holds=[moved(h) for h in node.holds],
            meta=dict(node.meta),
        )
        ex.nodes[placed.name] = placed
        ex.added.append(placed.name)
        ex.shapes[placed.name] = node.meta["shape"]
        ex.scope[placed.name] = placed.name
    for name, value in inner.scope.items():
        if value != INPUT and value in graph.nodes:
            ex.scope.setdefault(moved(name), moved(value))
    for st in graph.stages:
        ex.stages.append(
            Stage(
                name=prefix + st.name,
                section="stages",
                block_type=st.block_type,
                blocks=[moved(b) for b in st.blocks],
                nodes=[moved(n) for n in st.nodes],
                shortcut=st.shortcut,
                connect=st.connect,
            )
        )
    ex.block_params.update({moved(b): p for b, p in graph.block_params.items()})
    ex.nested_blocks.update({moved(b): t for b, t in graph.nested_blocks.items()})
    ex.identity_blocks.update({moved(b): k for b, k in inner.identity_blocks.items()})
    for block_type, order in graph.module_orders.items():
        ex.module_orders.setdefault(block_type, order)
    ex.part_lists.extend(moved(p) for p in graph.module_lists)
    if part.idle:  # what only the idle values need: held, never run
        run = feeding(graph.nodes, [f.node for f in graph.features if f.name not in part.idle])
        ex.idle.update(moved(n) for n in graph.nodes if n not in run)
        for name in ex.idle:
            ex.nodes[name].meta["idle"] = True  # no nn.Sequential holds it (it would run it)
