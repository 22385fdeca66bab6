"""A one-block network, for drawing a block type file on its own (``netc diagram BLOCK.yaml``)."""

from __future__ import annotations

import json
import os
import re

from ..errors import SpecError, command_line_loc, overrides_file
from ..ir.graph import Graph
from ..ops import MAXPOOL, OPS, PERMUTE, TOKENS, UPSAMPLE, channels
from .load import front_end
from .lookup import is_block_file
from .source import Source, load_file, parse

BLOCK_STAGE = "unit"  # the stage name of the one-block network a block diagram is drawn from
DEFAULT_REQUIRED = 64  # value given to a block's required parameters (width) when drawing it
SEQUENCE_SIDE = 14  # a block on token sequences is drawn on 14 x 14 = 196 tokens (ViT-B/16's)
SEQUENCE, CHANNELS_LAST = "sequence", "channels_last"  # what a block's input is made into
MAX_DRAWN_INPUTS = 8  # the most inputs tried for a block that names them by an expression
VIDEO, SIGNAL = "video", "signal"  # a [C, T, H, W] map (8 frames), a [C, L] map (1,024 long)


def block_network(
    path: str | os.PathLike[str],
    params: list[str] | None = None,
    in_channels: int | None = None,
    size: int = 56,
) -> tuple[Graph, str]:
    """A one-block network for drawing a block type file; returns (graph, block path).

    Required parameters default to 64; ``params`` (``key=value``) set others. Unless
    ``in_channels`` is given, the input gets the block's output channels, so the shortcut is the
    identity, as in the paper's figures (``stride=2`` shows a projection instead).
    """
    block = load_file(os.fspath(path))
    if not is_block_file(block.data):
        raise SpecError.at(block.loc(()), "not a block type file (no 'block:' and 'nodes:')")
    name = block.data["block"]
    stage: dict[str, object] = {"block": name}
    declared = block.data.get("params") or {}
    if isinstance(declared, dict):
        stage.update({k: DEFAULT_REQUIRED for k, v in declared.items() if v is None})
    stage.update(_block_params(params or []))
    # a block that reads several inputs (input.1, ...: a decoder's encoder maps) is drawn
    # reading the network's input that many times, or maps each twice the size of the one
    # before (a decoder reads its maps from deep to shallow), or half (a feature pyramid's
    # levels, fine to coarse)
    text = json.dumps(block.data.get("nodes"))
    count = 1 + max((int(n) for n in re.findall(r"\binput\.(\d+)\b", text)), default=0)
    # inputs named by an expression ("input.{i + 1}"): as many as MAX_DRAWN_INPUTS at most
    counts = [count]
    if "input.{" in text:  # the literal count first (those inputs may be optional), then more
        counts += [n for n in range(2, MAX_DRAWN_INPUTS + 1) if n > count]
    if "in" in stage:  # the caller's --set in=...
        counts = [1]
    # a transformer's block reads a token sequence (drawn on the 196 tokens of a 14x14 map),
    # a Swin block a channels-last map
    nodes = block.data.get("nodes")
    named = (
        [n.get("op") for n in nodes.values() if isinstance(n, dict)]
        if isinstance(nodes, dict)
        else []
    )
    known = [
        OPS[op] for op in named if isinstance(op, str) and op in OPS
    ]  # bad ones: checked later
    layout = (
        SEQUENCE
        if any(op.sequence_input for op in known)
        else CHANNELS_LAST
        if any(op.channels_last_input for op in known)
        else ""
    )
    # the guess first; a block that makes its own layout from a map (MaxViT's partitions) reads
    # a plain one; a block of 3-D or 1-D convs a video or a signal: the first layout that
    # checks, else the guess's error
    # a block whose inputs must be as wide as its own `width` (a pyramid's fusions of equal
    # maps) is drawn on maps of that width when the default does not fit
    own = declared.get("width") if isinstance(declared, dict) else None
    fits = in_channels is None and isinstance(own, int) and not isinstance(own, bool)
    widths = [in_channels, own] if fits else [in_channels]
    first: SpecError | None = None
    for candidate in dict.fromkeys((layout, "", CHANNELS_LAST, SEQUENCE, VIDEO, SIGNAL)):
        side = SEQUENCE_SIDE if candidate == SEQUENCE else size
        for count, growth in ((n, g) for n in counts for g in ((1, 2, -2) if n > 1 else (1,))):
            for width in widths:
                try:
                    graph = _fitted(block, name, stage, width, side, candidate, count, growth)
                    return graph, f"{BLOCK_STAGE}.0"
                except SpecError as e:
                    first = first or e
    assert first is not None
    raise first


def _fitted(
    block: Source,
    name: str,
    stage: dict[str, object],
    in_channels: int | None,
    size: int,
    layout: str,
    count: int = 1,
    growth: int = 1,
) -> Graph:
    """The one-block network, its input as wide as the block's output unless told; a block of
    ``count`` inputs reads maps each ``growth`` times the size of the one before (-2: half)."""
    width = in_channels or DEFAULT_REQUIRED
    for _ in range(2):
        graph = _one_block(block, name, stage, width, size, layout, count, growth)
        out = channels(graph.shape_of(graph.output))
        if in_channels is not None or out == width:
            break
        width = out
    return graph


def _one_block(
    block: Source,
    name: str,
    stage: dict[str, object],
    channels: int,
    size: int,
    layout: str,
    count: int = 1,
    growth: int = 1,
) -> Graph:
    prefix = ("block_types", name)
    # a flat block (VGG's layers, numbered in their container) is drawn as the block it is
    drawn = {k: v for k, v in block.data.items() if k != "flat"}
    data: dict[str, object] = {
        "name": f"{name}_block",
        "input": {VIDEO: [channels, 8, size, size], SIGNAL: [channels, 1024]}.get(
            layout, [channels, size, size]
        ),
        "block_types": {name: drawn},
        "stages": {BLOCK_STAGE: stage},
    }
    if layout == SEQUENCE:
        data["stem"] = {"to_layout": {"op": TOKENS}}
    elif layout == CHANNELS_LAST:
        data["stem"] = {"to_layout": {"op": PERMUTE, "dims": [0, 2, 3, 1]}}
    if count > 1:  # the input, then each further one `growth` times the size of the one before
        made = [f"input_{k}" for k in range(1, count)] if growth != 1 else []
        stem: dict[str, object] = {
            m: {"op": UPSAMPLE, "in": "input", "scale": growth**k}
            for k, m in enumerate(made, start=1)
        }
        if growth < 0:  # each the one before halved, as a pyramid's max pools halve it
            stem = {m: {"op": MAXPOOL, "kernel": 3, "stride": 2, "padding": 1} for m in made}
        data["stem"] = stem
        reads = ["input", *made] if made else ["input"] * count
        data["stages"] = {BLOCK_STAGE: {**stage, "in": reads}}
    values = {(*prefix, *p): loc for p, loc in block.values.items()}
    keys = {(*prefix, *p): loc for p, loc in block.keys.items()}
    here = block.loc(())
    for path in (("name",), ("input",), ("stages", BLOCK_STAGE), ("stem", "to_layout", "op")):
        values[path] = here
    return front_end(Source(block.file, data, values, keys, [block.file]))


def _block_params(items: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise SpecError.at(
                command_line_loc(item), f"'{item}' must look like name=value, e.g. stride=2"
            )
        out[key] = parse(value, overrides_file()).data if value.strip() else None
    return out
