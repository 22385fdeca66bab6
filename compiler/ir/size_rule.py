"""The input sizes a network accepts: the spec's ``sizes:``, beside the nominal ``input:``.

``input: [3, 520, 520]`` is the size the tables, the counts and the diagrams are for; ``sizes:``
says which other sizes the built module takes, each spatial side on its own (height and width
of an image, the length of a 1-D map, duration, height and width of a video):

    sizes: any                                   # every side from 1
    sizes: {min: 32}                             # from 32
    sizes: {multiple: 32}                        # 32, 64, 96, ...
    sizes: {multiple: 16, remainder: 12, min: 188}   # the U-Net's tiles: 188, 204, ..., 572
    sizes: {min: 64, max: 1024, multiple: 8}

``netc check`` proves the network valid at every accepted size (compiler/ir/passes/sizes.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import Loc

# the keys of the mapping form, with what each means (the error for an unknown one lists them)
RULE_KEYS = {
    "min": "the smallest side (default 1)",
    "max": "the largest side (default: none)",
    "multiple": "every side is a multiple of this (default 1)",
    "remainder": "... plus this remainder (default 0; less than multiple)",
}


@dataclass(frozen=True, kw_only=True)
class SizeRule:
    """Which sides are accepted: ``min <= n <= max`` and ``n % multiple == remainder``."""

    min: int = 1
    max: int | None = None
    multiple: int = 1
    remainder: int = 0
    loc: Loc | None = None  # where the spec writes it (errors of the proof point there)

    def accepts(self, n: int) -> bool:
        return (
            n >= self.min
            and (self.max is None or n <= self.max)
            and n % self.multiple == self.remainder
        )

    def first(self, at_least: int) -> int | None:
        """The smallest accepted side >= ``at_least``, or None if there is none."""
        n = max(at_least, self.min, 1)
        n += (self.remainder - n) % self.multiple
        return n if self.max is None or n <= self.max else None

    def text(self) -> str:
        """In words: 'any side from 32 that is a multiple of 32'."""
        parts = ["any side"]
        if self.max is not None:
            parts.append(f"from {self.min} to {self.max}")
        elif self.min > 1:
            parts.append(f"from {self.min}")
        if self.multiple > 1:
            parts.append(
                f"that is a multiple of {self.multiple}"
                + (f" plus {self.remainder}" if self.remainder else "")
            )
        return " ".join(parts)

    def as_data(self) -> dict[str, int]:
        """The mapping form, without defaults (the schema's, the ONNX metadata's)."""
        out = {"min": self.min, "multiple": self.multiple, "remainder": self.remainder}
        if self.max is not None:
            out["max"] = self.max
        return {k: v for k, v in out.items() if v != {"min": 1, "multiple": 1}.get(k, 0)}
