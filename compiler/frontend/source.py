"""Safe YAML reading with positions: text -> plain data + an index {path -> Loc}.

Specs are untrusted. Only YAML's plain types are accepted (mappings, sequences, strings, numbers,
booleans, null); tags that would construct objects are refused, as are duplicate keys, alias
expansion past a cap ("billion laughs"), deep nesting, oversized and non-UTF-8 files. Nothing here
constructs a Python object other than those plain values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import HIDDEN, Diagnostics, Loc, SpecError
from . import fs

# Caps on what one file may ask of the reader. Generous for real specs (resnet1202 is ~60 lines).
MAX_FILE_BYTES = 1 << 20  # a spec larger than 1 MiB is not hand-written
MAX_DEPTH = 48  # nesting of mappings/sequences; real specs use fewer than 8
MAX_VALUES = 200_000  # values after alias expansion: stops "billion laughs"

Path = tuple[str | int, ...]
_SCALAR_TAGS = {"tag:yaml.org,2002:" + t for t in ("null", "bool", "int", "float", "str")}
_MAP_TAG = "tag:yaml.org,2002:map"
# libyaml's safe loader when PyYAML was built with it (several times faster); same marks and tags
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SEQ_TAG = "tag:yaml.org,2002:seq"


@dataclass
class Source:
    """A parsed document: plain data plus where each value and key came from."""

    file: str
    data: Any
    values: dict[Path, Loc] = field(default_factory=dict)
    keys: dict[Path, Loc] = field(default_factory=dict)
    chain: list[str] = field(default_factory=list)  # this file, then the files it extends

    def loc(self, path: Path) -> Loc:
        """The location of the value at ``path``, or of its nearest located ancestor."""
        while path:
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), Loc(self.file, 1, 1))

    def key_loc(self, path: Path) -> Loc:
        """The location of the key naming ``path`` (falls back to the value's location)."""
        return self.keys.get(path) or self.loc(path)


def read_text(path: str, shown_as: str | None = None) -> tuple[str, str]:
    """Read a spec file as UTF-8 text within the size cap; returns (display name, text)."""
    name = shown_as or path
    where = Loc(name, 0, 0)
    if "\x00" in path:
        raise SpecError.at(where, "a file name cannot contain a NUL character")
    if not fs.exists(path):
        raise SpecError.at(where, f"no such file: {name}")
    if fs.isdir(path):
        raise SpecError.at(where, f"{name} is a directory, not a spec file")
    try:
        raw = fs.read_bytes(path, MAX_FILE_BYTES + 1)
    except fs.NotAFile as e:
        raise SpecError.at(where, f"{name} is {e.kind}, not a spec file") from None
    except OSError as e:  # unreadable, /proc/self/mem, a socket (ENXIO)...
        raise SpecError.at(where, f"cannot read {name}: {e.strerror or e}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise SpecError.at(
            where, f"file is too large: the cap for a spec is {MAX_FILE_BYTES} bytes"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise SpecError.at(Loc(name, line, col), "file is not valid UTF-8") from None
    return name, text


def parse(text: str, file: str) -> Source:
    """Parse one YAML document safely into a :class:`Source`; raises SpecError when refused."""
    lines = text.splitlines() or [""]
    if not text.strip() or all(ln.lstrip().startswith("#") or not ln.strip() for ln in lines):
        raise SpecError.at(Loc(file, 1, 1, lines[0]), "the spec is empty")

    def mark_loc(mark: Any, quoted: bool = False) -> Loc:
        ln = mark.line if mark.line < len(lines) else len(lines) - 1
        return Loc(file, mark.line + 1, mark.column + 1 + int(quoted), lines[ln] if lines else "")

    try:
        _check_depth(text, mark_loc)
        root = yaml.compose(text, Loader=_LOADER)
    except SpecError:
        raise
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        loc = mark_loc(mark) if mark else Loc(file, 1, 1, lines[0])
        raise SpecError.at(loc, f"invalid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise SpecError.at(Loc(file, 1, 1, lines[0]), f"invalid YAML: {e}") from None
    except RecursionError:
        raise SpecError.at(Loc(file, 1, 1, lines[0]), "YAML nested too deeply") from None
    if root is None:
        raise SpecError.at(Loc(file, 1, 1, lines[0]), "the spec is empty")
    return _Builder(file, mark_loc).build(root)


def load_file(path: str, shown_as: str | None = None) -> Source:
    """Read and parse a spec file."""
    name, text = read_text(path, shown_as)
    return parse(text, name)


def _check_depth(text: str, mark_loc: Any) -> None:
    """Refuse deep nesting from the event stream, before the (recursive) composer sees it."""
    depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise SpecError.at(
                    mark_loc(event.start_mark), f"nested deeper than {MAX_DEPTH} levels"
                )
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


class _Builder:
    """Turns a composed YAML node tree into plain data, recording a Loc per value and key."""

    def __init__(self, file: str, mark_loc: Any) -> None:
        self.mark_loc = mark_loc
        self.src = Source(file, None)
        self.count = 0
        self.diags = Diagnostics()
        self.constructor = yaml.SafeLoader("")

    def build(self, root: yaml.Node) -> Source:
        self.src.data = self.value(root, ())
        self.diags.raise_if_any()
        return self.src

    def value(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise SpecError.at(
                self.mark_loc(node.start_mark),
                f"more than {MAX_VALUES} values after expanding aliases; refusing (alias bomb?)",
            )
        if len(path) > MAX_DEPTH:  # aliases nest without nesting the text _check_depth reads
            raise SpecError.at(
                self.mark_loc(node.start_mark),
                f"nested deeper than {MAX_DEPTH} levels once aliases are expanded",
            )
        quoted = isinstance(node, yaml.ScalarNode) and node.style in ("'", '"')
        self.src.values[path] = self.mark_loc(node.start_mark, quoted)
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                return self.bad_tag(node, path)
            return [self.value(item, (*path, i)) for i, item in enumerate(node.value)]
        if node.tag not in _SCALAR_TAGS:
            return self.bad_tag(node, path)
        try:
            value = self.constructor.construct_object(node)
        except ValueError:  # an integer of thousands of digits (Python's conversion cap)
            self.diags.error(
                self.src.values[path], "number too long: a spec number has at most 4,300 digits"
            )
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.diags.error(self.src.values[path], f"{node.value!r}: spec numbers are finite")
        if isinstance(value, str):
            self.plain_text(value, self.src.values[path])
        return value

    def plain_text(self, text: str, loc: Loc) -> None:
        """Refuse characters that would let text leave its place where it is shown or written."""
        found = HIDDEN.search(text)
        if found:
            self.diags.error(
                loc,
                f"text holds the character U+{ord(found.group()):04X}; spec text may not hold "
                "control characters (other than tab and newline), bidirectional controls or "
                "line separators",
            )

    def mapping(self, node: yaml.MappingNode, path: Path) -> Any:
        if node.tag != _MAP_TAG:
            return self.bad_tag(node, path)
        out: dict[str, Any] = {}
        for knode, vnode in node.value:
            kloc = self.mark_loc(knode.start_mark)
            if knode.tag == "tag:yaml.org,2002:merge":
                self.diags.error(kloc, "merge keys (<<) are not supported; use 'extends'")
                continue
            if not isinstance(knode, yaml.ScalarNode) or knode.tag not in _SCALAR_TAGS:
                self.diags.error(kloc, "mapping keys must be plain names")
                continue
            key = self.constructor.construct_object(knode)
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                self.diags.error(kloc, f"mapping key {knode.value!r} must be a name")
                continue
            key = str(key)
            self.plain_text(key, kloc)
            if key in out:
                prev = self.src.keys[(*path, key)]
                self.diags.error(kloc, f"duplicate key '{key}' (first defined at line {prev.line})")
                continue
            self.src.keys[(*path, key)] = kloc
            out[key] = self.value(vnode, (*path, key))
        return out

    def bad_tag(self, node: yaml.Node, path: Path) -> None:
        self.diags.error(
            self.src.values[path],
            f"unsupported YAML tag '{node.tag}'",
            "specs hold plain data only: mappings, lists, strings, numbers, booleans",
        )
        return None
