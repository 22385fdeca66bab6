"""Python source for values a spec controls: each written so that it cannot leave its place.

``netc emit`` writes a module that its user imports, so every string from a spec that reaches it
(the network's name and description, block type and node names) goes through here: text in a
docstring has its backslashes and quotes escaped and anything unprintable written as an escape;
a name becomes an attribute only when it is an ASCII identifier and no keyword, otherwise a
quoted literal; other values are written as literals that evaluate back to them.
"""

from __future__ import annotations

import keyword
import math
from typing import Any


def docstring(text: str) -> str:
    """``text`` as a triple-quoted literal: a quote, a backslash or a control character in it
    is escaped, so the literal ends where it is meant to and says exactly ``text``."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n" or ch.isprintable():
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1])  # '\x1b', '\u2028', '\ud800'
    return '"""' + "".join(out) + '"""'


def string(text: str) -> str:
    """A one-line string literal of ``text``, in double quotes when nothing needs escaping."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return repr(text)


def is_attribute(name: str) -> bool:
    """Whether ``name`` can be written as ``obj.name`` (else it is read with getattr)."""
    return name.isascii() and name.isidentifier() and not keyword.iskeyword(name)


def identifier(name: str, fallback: str) -> str:
    """An ASCII identifier made from ``name``'s letters and digits (others become ``_``),
    prefixed with ``fallback`` when it would not start with a letter."""
    cleaned = "".join(c if c.isascii() and c.isalnum() else "_" for c in name)
    return cleaned if cleaned[:1].isalpha() else fallback + cleaned


def literal(value: Any) -> str:
    """``value`` (a number, text, bool, None, or a list, tuple or dict of them) as source that
    evaluates to it; a non-finite float is spelled ``float('inf')`` (its repr is a bare name)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, str):
        return string(value)
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        items = [literal(v) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def variable(path: str) -> str:
    """A local variable's name for the value of the module at ``path``."""
    return identifier(path, "v_")


def access(base: str, rel: str) -> str:
    """The expression for the module at the dotted ``rel`` below ``base`` (``getattr`` for a
    part that is no attribute name, such as RegNet's 'block1-0' or a Sequential's '0')."""
    out = base
    for part in rel.split("."):
        out = f"{out}.{part}" if is_attribute(part) else f"getattr({out}, {string(part)})"
    return out


def assign(base: str, rel: str, text: str) -> str:
    """The ``__init__`` line that puts the module ``text`` builds at ``rel`` below ``base``."""
    *parents, leaf = rel.split(".")
    holder = access(base, ".".join(parents)) if parents else base
    if is_attribute(leaf):
        return f"        {holder}.{leaf} = {text}"
    return f"        {holder}.add_module({string(leaf)}, {text})"
