"""The one YAML reader and the one YAML writer of zoo, search and profiles.

Reading is yaml.SafeLoader with limits, so untrusted text becomes plain data or one ConfigError
(file, line, what is wrong), never a traceback, a hang or code run:
- the document is at most MAX_YAML_BYTES of UTF-8;
- nodes are counted while composing, aliases expanded (each use counts the aliased subtree again), so a
  "billion laughs" document is refused before anything is built from it; an alias inside its own anchor
  (recursive data) is refused; nesting is at most MAX_YAML_DEPTH;
- a key given twice in one mapping is an error naming both lines (`<<` merges may still be overridden);
- a value its tag cannot hold (2023-02-30, `!!int x`, an int of more than 4300 digits) names its line.
The data comes back with the line of every top-level key and of every item of a top-level list (rows).

Writing (`dump_config`) gives readable configs: top-level keys in order, one flow-style row per line with
its global row index as a comment.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import ConfigError, shown
from .limits import MAX_YAML_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES

SECTIONS = ("backbone", "head")  # the top-level lists written one row per line
_MERGE = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Lines:
    """1-based lines of a document's top-level keys and of the items of its top-level lists."""

    keys: Mapping[str, int] = field(default_factory=dict)
    items: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def key(self, name: str) -> int | None:
        return self.keys.get(name)

    def item(self, name: str, index: int) -> int | None:
        lines = self.items.get(name, ())
        return lines[index] if 0 <= index < len(lines) else None


NO_LINES = Lines()


@dataclass(frozen=True)
class Document:
    data: Any
    lines: Lines = NO_LINES


class _Refused(Exception):
    """A limit or value problem found while loading; becomes a ConfigError naming the line."""

    def __init__(self, text: str, mark: Any) -> None:
        super().__init__(text)
        self.text = text
        self.line = mark.line + 1 if mark is not None else None


class _Loader(yaml.SafeLoader):
    """SafeLoader that counts expanded nodes, bounds depth, refuses duplicate keys and bad values."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}  # id(node) -> its node count with aliases expanded
        self._open: list[str] = []  # anchors of the collections being composed
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) and event.anchor in self._open:
            raise _Refused(f"YAML alias *{event.anchor} is inside its own anchor (recursive data is not allowed)",
                           event.start_mark)
        collection = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
        if collection:
            self._depth += 1
            if self._depth > MAX_YAML_DEPTH:
                raise _Refused(f"YAML nesting is deeper than {MAX_YAML_DEPTH} levels", event.start_mark)
            self._open.append(event.anchor)
        node = super().compose_node(parent, index)
        if collection:
            self._depth -= 1
            self._open.pop()
        if id(node) not in self._sizes:  # an alias returns a node already counted
            children = node.value if isinstance(node, yaml.SequenceNode) else \
                [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else []
            size = 1 + sum(self._sizes[id(c)] for c in children)
            if size > MAX_YAML_NODES:
                raise _Refused(f"YAML document has more than {MAX_YAML_NODES:,} nodes once its aliases are "
                               f"expanded (the limit on nodes; an alias bomb?)", node.start_mark)
            self._sizes[id(node)] = size
        return node

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, AttributeError, OverflowError, KeyError, IndexError) as e:
            raise _Refused(_value_problem(node, e), node.start_mark) from None

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE:
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    known = key in first
                except TypeError:  # unhashable: SafeConstructor reports it
                    continue
                if known:
                    raise _Refused(f"duplicate key {shown(key)} (first given at line {first[key]})",
                                   key_node.start_mark)
                first[key] = line
        return super().construct_mapping(node, deep=deep)


def _value_problem(node: Any, e: Exception) -> str:
    tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
    reason = str(e).splitlines()[0] if str(e).strip() else type(e).__name__
    if "integer string conversion" in reason:
        reason = "an integer of more than 4300 digits"
    elif isinstance(e, AttributeError):  # SafeConstructor's regexp found no match
        reason = "not in the format of the tag"
    value = node.value if isinstance(node, yaml.ScalarNode) else f"<{type(node).__name__}>"
    return f"YAML value {shown(value)} is not a valid {tag}: {reason}"


def read_text(text: str | bytes, *, source: str) -> Document:
    """Parse one YAML document from untrusted text; `source` names it in errors (a file, `--row`)."""
    if isinstance(text, bytes):
        text = _decode(text, source)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise ConfigError(source, f"YAML text is larger than {MAX_YAML_BYTES:,} bytes")
    loader = None
    try:
        loader = _Loader(text)  # its Reader already refuses characters YAML does not allow
        node = loader.get_single_node()
        lines = _lines(node)
        data = loader.construct_document(node) if node is not None else None
    except _Refused as e:
        raise ConfigError(source, e.text, line=e.line) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or e.context or str(e).splitlines()[0]
        raise ConfigError(source, f"YAML syntax error: {problem}", line=mark.line + 1 if mark else None) from None
    except yaml.reader.ReaderError as e:  # a character YAML does not allow (control characters)
        line = text.count("\n", 0, e.position) + 1
        raise ConfigError(source, f"YAML syntax error: {e.reason} #x{e.character:04x}", line=line) from None
    finally:
        if loader is not None:
            loader.dispose()
    return Document(data, lines)


def read_file(path: str | Path, *, source: str | None = None) -> Document:
    """read_text of a file, refusing a file too large before reading it."""
    src = source or str(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_YAML_BYTES + 1)
    except OSError as e:
        raise ConfigError(src, f"cannot read: {e.strerror or e}") from None
    return read_text(raw, source=src)


def _decode(raw: bytes, source: str) -> str:
    if len(raw) > MAX_YAML_BYTES:
        raise ConfigError(source, f"YAML text is larger than {MAX_YAML_BYTES:,} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - raw.rfind(b"\n", 0, e.start)
        raise ConfigError(source, f"not UTF-8 text: byte 0x{raw[e.start]:02x} at column {column}",
                          line=line) from None


def _lines(node: Any) -> Lines:
    if not isinstance(node, yaml.MappingNode):
        return NO_LINES
    keys: dict[str, int] = {}
    items: dict[str, tuple[int, ...]] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE:
            continue
        keys.setdefault(key_node.value, key_node.start_mark.line + 1)
        if isinstance(value_node, yaml.SequenceNode):
            items.setdefault(key_node.value, tuple(n.start_mark.line + 1 for n in value_node.value))
    return Lines(keys, items)


# -- writing ------------------------------------------------------------------------------------------

def dump_config(data: Mapping[str, Any], *, header: str = "") -> str:
    """Readable YAML: `# header` lines, top-level keys in order, one flow-style row per line with its
    global index (backbone then head, as the model summary numbers rows)."""
    out: list[str] = [f"# {line}".rstrip() for line in header.splitlines()]
    index = 0
    for key, value in data.items():
        if key in SECTIONS and isinstance(value, list):
            out.append(f"{key}:")
            rows = [_flow(row) for row in value]
            width = max((len(r) for r in rows), default=0)
            for text in rows:
                out.append(f"  - {text.ljust(width)}  # {index}")
                index += 1
        else:
            leaf = not isinstance(value, (list, dict))  # flow style only inside collections
            out.append(yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=False if leaf else None,
                                      width=float("inf")).rstrip())
    return "\n".join(out) + "\n"


def write_config(data: Mapping[str, Any], path: str | Path, *, header: str = "") -> str:
    """dump_config into `path` (its folder is created); returns the path written."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(dump_config(data, header=header), encoding="utf-8")
    return str(p)


def _flow(row: Any) -> str:
    return yaml.safe_dump(row, default_flow_style=True, width=float("inf")).strip()
