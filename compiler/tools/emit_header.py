"""The head of `netc emit`'s file: its docstring and the imports its classes and helpers use."""

from __future__ import annotations

import inspect
from collections.abc import Collection
from typing import Any

from ..ir.graph import Graph
from ..pysource import docstring


def header_text(
    graph: Graph, imports: Collection[str], named_sequential: bool, helpers: Collection[Any]
) -> str:
    """The file's docstring (the network, and what the file needs) and its imports: plugin
    modules where its ops come from plugins, OrderedDict where a Sequential is built from one,
    torch.nn.functional where a copied helper calls it."""
    g = graph
    lines = [
        docstring(
            f"{g.name}: {g.description or 'a network'}".rstrip()
            + "\n\nWritten by `netc emit` from the spec; it needs only PyTorch"
            + (f" and the plugin modules {', '.join(sorted(imports))}.\n" if imports else ". ")
            + "`build(seed=...)` gives\nthe weights netc's `compile(spec, seed=...)` gives."
        ),
        "",
        "from __future__ import annotations",
        "",
        *(["from collections import OrderedDict"] if named_sequential else []),
        "from collections.abc import Callable",
        "from dataclasses import dataclass",
        "from typing import Any",
        "",
        "import torch",
    ]
    if any(inspect.getsource(h).count("F.") for h in helpers):
        lines.append("import torch.nn.functional as F")
    lines += ["from torch import nn"]
    if imports:  # the plugins' modules: their ops' classes, functions and init rules
        lines += ["", *(f"import {m}" for m in sorted(imports))]
    lines += ["", "Attrs = dict[str, Any]"]
    return "\n".join(lines)
