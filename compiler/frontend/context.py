"""Where the expansion makes a node: its context (module path prefix, stage, block, where to
point errors), a block's local names, and the signal that a node could not be made."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import Loc


class Failed(Exception):
    """This node could not be made; its error is already recorded."""


@dataclass(frozen=True, kw_only=True)
class Context:
    """Where in the network a node is being made, for names and error messages."""

    prefix: str  # module path prefix, '' or 'layer1.0.'
    stage: str
    block: str | None
    where: str  # "stage 'layer3' block 0: " or ''
    anchor: Loc | None = None  # the stage line in the network file, for errors in block files
    shortcut_kind: str = ""
    numbered: str = ""  # a flat block's container: each node is its next numbered member
    inputs: tuple[str, ...] = ()  # a block's inputs in a dense stage (its `input` is all of them)
    nesting: tuple[str, ...] = ()  # the block types of the blocks this one lies in, outermost first
    outer_where: str = ""  # a nested block's: the `where` of the stage's block it lies in


BLOCK_INPUTS = "<inputs>"  # `input` of a block in a dense stage: every value the block reads


Local = dict[str, str | None]  # a block's names -> node names (None: a removed shortcut)
