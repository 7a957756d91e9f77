"""All YAML handling of gen: positioned loading of specs and deterministic emitting.

Nothing else in gen touches ruamel.yaml. Specs are composed into nodes with the
libyaml-based parser (fast, and every node keeps its line and column), then
turned into plain Python data by hand so that duplicate keys, aliases, explicit
tags and absurd nesting are refused with a position instead of being accepted.
"""

from __future__ import annotations

import io
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gen.errors import Problem, SpecError

MAX_SPEC_BYTES = 1024 * 1024
MAX_DEPTH = 32
# A full spec holds about a hundred values. Composing nodes costs several
# microseconds each, so a 1 MiB flat list (half a million values) would take
# seconds; anything past this bound is refused while parsing, long before that.
MAX_NODES = 10_000

Path = tuple[str | int, ...]

_STD = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_STD + t for t in ("str", "int", "float", "bool", "null")}


@dataclass
class Positioned:
    """Plain data of one YAML document and where each value and key sits (1-based)."""

    data: Any
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path) -> tuple[int, int]:
        """Best position for a path: its value, else its key, else its closest parent."""
        for n in range(len(path), -1, -1):
            sub = path[:n]
            if sub in self.values and n == len(path):
                return self.values[sub]
            if sub in self.keys:
                return self.keys[sub]
            if sub in self.values:
                return self.values[sub]
        return (1, 1)

    def key_where(self, path: Path) -> tuple[int, int]:
        return self.keys.get(path) or self.where(path)


class _Fail(Exception):  # noqa: N818 - internal signal, never leaves this module
    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.line, self.col, self.message = line, col, message


_LOCAL = threading.local()


def _yaml() -> Any:
    """ruamel's safe (libyaml) loader, built once per thread: building one costs a directory scan."""
    yaml = getattr(_LOCAL, "yaml", None)
    if yaml is None:
        from ruamel.yaml import YAML

        yaml = _LOCAL.yaml = YAML(typ="safe", pure=False)
    return yaml


def read(path: os.PathLike[str] | str, filename: str) -> bytes:
    """The bytes of a spec file, never more than one byte past the size limit.

    A spec may be a symlink to anything: a file of gigabytes is refused by `load`
    without being read whole. A file that cannot be read is a problem of the input.
    """
    try:
        with open(path, "rb") as f:
            return f.read(MAX_SPEC_BYTES + 1)
    except OSError as e:
        raise SpecError([Problem(filename, 1, 1, "", f"cannot be read: {e.strerror or e}")]) from None


def load(raw: bytes, filename: str) -> Positioned:
    """Parse one spec file; raise SpecError with exactly one positioned problem."""
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(
            [Problem(filename, 1, 1, "", f"file is larger than {MAX_SPEC_BYTES} bytes; refused before parsing")]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        before = raw[: e.start]
        line = before.count(b"\n") + 1
        col = e.start - (before.rfind(b"\n") + 1) + 1
        raise SpecError([Problem(filename, line, col, "", f"not valid UTF-8 (byte 0x{raw[e.start]:02x})")]) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        return _load_text(text)
    except _Fail as f:
        raise SpecError([Problem(filename, f.line, f.col, "", f.message)]) from None


def _load_text(text: str) -> Positioned:
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    try:
        nodes = _compose(text)
    except ReaderError as e:
        # The reader refuses control characters before parsing; it knows only the offset.
        line, col = _line_col(text, e.position)
        code = e.character if isinstance(e.character, int) else ord(e.character)
        raise _Fail(line, col, f"invalid YAML: control character U+{code:04X} is not allowed") from None
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        msg = " ".join(x for x in (e.context, e.problem) if x) or "invalid YAML"
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        lines = text.splitlines()
        if mark and line <= len(lines) and "\t" in lines[line - 1][:col]:
            raise _Fail(line, col, "tab character in indentation; YAML indents with spaces") from None
        raise _Fail(line, col, f"invalid YAML: {msg}") from None
    except RecursionError:
        raise _Fail(1, 1, f"nesting is deeper than {MAX_DEPTH} levels") from None
    except YAMLError as e:
        raise _Fail(1, 1, "invalid YAML: " + " ".join(str(e).split())) from None
    if not nodes or nodes[0] is None:
        raise _Fail(1, 1, "the file is empty; expected a Cluster spec mapping")
    if len(nodes) > 1:
        m = nodes[1].start_mark
        raise _Fail(m.line + 1, m.column + 1, "more than one YAML document; one file holds one spec")
    root = nodes[0]
    out = Positioned(data=None)
    out.data = _convert(root, (), out, set(), 0)
    if not isinstance(out.data, dict):
        kind = "a list" if isinstance(out.data, list) else "a scalar"
        raise _Fail(
            root.start_mark.line + 1,
            root.start_mark.column + 1,
            f"the document is {kind}; expected a mapping (apiVersion, kind, metadata, spec)",
        )
    return out


class _Node:
    """A node of a spec document: what ruamel's composer would build, without its costs."""

    __slots__ = ("anchor", "start_mark", "tag", "value")

    def __init__(self, tag: str, value: Any, start_mark: Any) -> None:
        self.tag, self.value, self.start_mark, self.anchor = tag, value, start_mark, None


class _Mapping(_Node):
    __slots__ = ("pending",)

    def __init__(self, tag: str, value: Any, start_mark: Any) -> None:
        super().__init__(tag, value, start_mark)
        self.pending: _Node | None = None  # a key waiting for its value


class _Sequence(_Node):
    __slots__ = ()


class _Scalar(_Node):
    __slots__ = ()


def _compose(text: str) -> list[_Node]:
    """The documents of a text as nodes, built from the parser's events in one pass.

    The checks run while events arrive, before anything is built from them: the
    C composer recurses once per nesting level without Python's recursion guard
    (a hundred thousand `[` crash the interpreter rather than raise), and the
    parser keeps its own stack, so the walk stops at the first level too deep,
    value too many, anchor, alias or second document.
    """
    from ruamel.yaml import events as ev

    docs: list[_Node] = []
    stack: list[_Node] = []
    documents = count = 0
    event: Any
    for event in _yaml().parse(text):
        kind = type(event)
        if kind is ev.DocumentStartEvent:
            documents += 1
            continue
        if kind is ev.MappingEndEvent or kind is ev.SequenceEndEvent:
            _attach(stack.pop(), stack, docs)
            continue
        if not issubclass(kind, ev.NodeEvent):
            continue
        mark = event.start_mark
        if documents > 1:
            raise _Fail(mark.line + 1, mark.column + 1, "more than one YAML document; one file holds one spec")
        # Here rather than while converting: an alias of a scalar looks like a plain value.
        if event.anchor is not None:
            raise _Fail(mark.line + 1, mark.column + 1, "YAML anchors and aliases are not allowed in a spec")
        count += 1
        if count > MAX_NODES:
            raise _Fail(
                mark.line + 1, mark.column + 1, f"more than {MAX_NODES} keys and values; a cluster spec holds far fewer"
            )
        if kind is ev.ScalarEvent:
            tag = event.tag
            if tag is None or tag == "!":
                tag = _resolve(event.value) if event.implicit[0] else _STD + "str"
            _attach(_Scalar(tag, event.value, mark), stack, docs)
        elif kind is ev.MappingStartEvent or kind is ev.SequenceStartEvent:
            # The root mapping is level 0 for _convert.
            if len(stack) > MAX_DEPTH:
                raise _Fail(mark.line + 1, mark.column + 1, f"nesting is deeper than {MAX_DEPTH} levels")
            if kind is ev.MappingStartEvent:
                node: _Node = _Mapping(event.tag or _STD + "map", [], mark)
            else:
                node = _Sequence(event.tag or _STD + "seq", [], mark)
            stack.append(node)
    return docs


def _attach(node: _Node, stack: list[_Node], docs: list[_Node]) -> None:
    if not stack:
        docs.append(node)
        return
    parent = stack[-1]
    if isinstance(parent, _Mapping):
        if parent.pending is None:
            parent.pending = node
        else:
            parent.value.append((parent.pending, node))
            parent.pending = None
    else:
        parent.value.append(node)


_RESOLVED: dict[str, str] = {}
_IMPLICIT: Any = None


def _resolve(value: str) -> str:
    """The tag YAML 1.2 gives a plain scalar (ruamel's own rules, looked up without its overhead)."""
    global _IMPLICIT  # noqa: PLW0603 - ruamel's table, fetched once
    tag = _RESOLVED.get(value)
    if tag is not None:
        return tag
    if _IMPLICIT is None:
        from ruamel.yaml.resolver import VersionedResolver

        _IMPLICIT = VersionedResolver(version=(1, 2)).versioned_resolver
    tag = _STD + "str"
    for candidate, regexp in [*_IMPLICIT.get(value[:1], []), *_IMPLICIT.get(None, [])]:
        if regexp.match(value):
            tag = str(candidate)
            break
    if len(_RESOLVED) < 10_000:
        _RESOLVED[value] = tag
    return tag


def _line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_STD) :] if tag.startswith(_STD) else tag


def _convert(node: Any, path: Path, out: Positioned, seen: set[int], depth: int) -> Any:
    MappingNode, SequenceNode = _Mapping, _Sequence  # noqa: N806 - the composer's names

    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    if depth > MAX_DEPTH:
        raise _Fail(line, col, f"nesting is deeper than {MAX_DEPTH} levels")
    if id(node) in seen or getattr(node, "anchor", None):
        raise _Fail(line, col, "YAML anchors and aliases are not allowed in a spec")
    tag = str(node.tag)
    out.values[path] = (line, col)
    if isinstance(node, MappingNode):
        if tag != _STD + "map":
            raise _Fail(line, col, f"YAML tag {_tag_name(tag)} is not allowed in a spec")
        seen.add(id(node))
        result: dict[str, Any] = {}
        for knode, vnode in node.value:
            kl, kc = knode.start_mark.line + 1, knode.start_mark.column + 1
            if str(knode.tag) == _STD + "merge":
                raise _Fail(kl, kc, "YAML merge keys (<<) are not allowed in a spec")
            if isinstance(knode, MappingNode | SequenceNode) or str(knode.tag) not in _SCALAR_TAGS:
                raise _Fail(kl, kc, "mapping keys must be plain strings")
            key = str(knode.value)
            if key in result:
                first = out.keys[(*path, key)]
                raise _Fail(kl, kc, f"duplicate key {key!r} (first defined at line {first[0]})")
            out.keys[(*path, key)] = (kl, kc)
            result[key] = _convert(vnode, (*path, key), out, seen, depth + 1)
        return result
    if isinstance(node, SequenceNode):
        if tag != _STD + "seq":
            raise _Fail(line, col, f"YAML tag {_tag_name(tag)} is not allowed in a spec")
        seen.add(id(node))
        return [_convert(v, (*path, i), out, seen, depth + 1) for i, v in enumerate(node.value)]
    if tag == _STD + "timestamp":
        # Resolved from a plain scalar such as a date-named revision: nobody wrote a tag.
        raise _Fail(line, col, f"{short_repr(node.value)} reads as a YAML date; quote it to make it a string")
    if tag not in _SCALAR_TAGS:
        raise _Fail(line, col, f"YAML tag {_tag_name(tag)} is not allowed in a spec")
    return _scalar(tag, node.value, line, col)


def _scalar(tag: str, value: str, line: int, col: int) -> Any:
    kind = tag[len(_STD) :]
    if kind == "str":
        return value
    if kind == "null":
        return None
    if kind == "bool":
        return value.lower() in ("true", "yes", "on")
    digits = value.replace("_", "")
    try:
        if kind == "int":
            try:
                number = int(digits, 0)
            except ValueError:
                # YAML 1.2 reads 017 as decimal 17; base 0 refuses leading zeros.
                number = int(digits, 10)
            # No consumer reads more than 64 bits, and a huge number (0x and thousands
            # of digits) cannot even be turned back into decimal text for a message.
            if not -(2**63) <= number < 2**63:
                raise _Fail(line, col, f"{short_repr(value)} is out of the 64-bit integer range")
            return number
        # YAML spells infinity and not-a-number .inf and .nan, Python inf and nan.
        return float(digits.lower().replace(".inf", "inf").replace(".nan", "nan"))
    except ValueError:
        raise _Fail(line, col, f"cannot read {short_repr(value)} as {kind}") from None


def short_repr(value: str, limit: int = 60) -> str:
    """repr() of a value for an error line, cut short so that a huge value cannot flood the output."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value)} characters)"


# ---------------------------------------------------------------- emitting

# Plain scalars that a YAML 1.1 or 1.2 reader (kustomize's included) would not read
# back as the same string: these are quoted.
_NOT_A_PLAIN_STRING = re.compile(
    r"""^(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE|y|Y|yes|Yes|YES|n|N|no|No|NO
    |on|On|ON|off|Off|OFF
    |[-+]?(?:0|[1-9][0-9_]*)|[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?0x[0-9a-fA-F_]+
    |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
    |[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)
    |[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}.*|<<|=|)$""",
    re.X,
)


class _Events:
    """Event objects for the emitter, built once: many keys and values repeat in every document.

    The emitter only reads events, so one event object can stand for every
    occurrence of the same scalar.
    """

    def __init__(self) -> None:
        from ruamel.yaml import events as ev

        self.ev = ev
        self.map_start = ev.MappingStartEvent(None, None, True, flow_style=False)
        self.map_end = ev.MappingEndEvent()
        self.seq_start = ev.SequenceStartEvent(None, None, True, flow_style=False)
        self.seq_end = ev.SequenceEndEvent()
        self.head = [ev.StreamStartEvent(encoding=None), ev.DocumentStartEvent(explicit=False)]
        self.tail = [ev.DocumentEndEvent(explicit=False), ev.StreamEndEvent()]
        self.scalars: dict[tuple[type, Any], Any] = {}

    def scalar(self, data: Any) -> Any:
        key = (type(data), data)
        event = self.scalars.get(key)
        if event is not None:
            return event
        scalar = self.ev.ScalarEvent
        if type(data) is str:
            if "\n" in data:
                # libyaml falls back to a quoted style where a literal block cannot hold the text.
                event = scalar(None, None, (True, True), data, style="|")
            else:
                plain = _NOT_A_PLAIN_STRING.match(data) is None
                event = scalar(None, None, (plain, True), data, style=None)
        elif type(data) is bool:
            event = scalar(None, None, (True, False), "true" if data else "false")
        elif data is None:
            event = scalar(None, None, (True, False), "null")
        else:
            event = scalar(None, None, (True, False), repr(data))
        if len(self.scalars) > 100_000:  # bounded: long-running callers render many fleets
            self.scalars.clear()
        self.scalars[key] = event
        return event


_EVENTS: _Events | None = None
_DUMPED: dict[str, str] = {}


def dump(data: Any) -> str:
    """Emit one YAML document: keys in insertion order, multi-line strings as literal blocks.

    The data model is JSON's (dicts, lists, str, int, float, bool, None). Events go
    straight to libyaml's emitter (ruamel.yaml.clib): ruamel's Python representer
    would cost four times as much for the same bytes.
    """
    from ruamel.yaml.cyaml import CEmitter  # type: ignore[attr-defined]

    # Output is a pure function of the data, and fleets repeat whole documents
    # (a patch, a datasource) from cluster to cluster: emit each one once.
    key = repr(data)
    text = _DUMPED.get(key)
    if text is not None:
        return text
    global _EVENTS  # noqa: PLW0603 - built on first use, then shared
    events = _EVENTS = _EVENTS or _Events()
    out: list[Any] = list(events.head)
    _collect(data, out, events)
    out += events.tail
    buf = io.StringIO()
    emitter = CEmitter(buf, canonical=False, indent=2, width=4096, allow_unicode=True, line_break="\n")
    for event in out:
        emitter.emit(event)
    text = buf.getvalue()
    if len(_DUMPED) > 10_000:
        _DUMPED.clear()
    _DUMPED[key] = text
    return text


def _collect(data: Any, out: list[Any], events: _Events) -> None:
    kind = type(data)
    if kind is dict:
        out.append(events.map_start)
        for key, value in data.items():
            out.append(events.scalar(key))
            _collect(value, out, events)
        out.append(events.map_end)
    elif kind is list or kind is tuple:
        out.append(events.seq_start)
        for value in data:
            _collect(value, out, events)
        out.append(events.seq_end)
    elif kind is str or kind is bool or kind is int or kind is float or data is None:
        out.append(events.scalar(data))
    elif isinstance(data, Mapping):
        _collect(dict(data), out, events)
    elif isinstance(data, str):
        _collect(str(data), out, events)
    else:
        raise TypeError(f"cannot emit {kind.__name__} as YAML")


def dump_all(docs: list[Any]) -> str:
    return "---\n".join(dump(d) for d in docs)


def parse_plain(text: str) -> Any:
    """Load trusted YAML (our own output, kustomize's output) without positions."""
    docs = parse_all_plain(text)
    return docs[0] if docs else None


class _Frame:
    """A mapping being built: its dict and the key waiting for a value."""

    __slots__ = ("key", "map")

    def __init__(self) -> None:
        self.map: dict[Any, Any] = {}
        self.key: Any = _Frame


def parse_all_plain(text: str) -> list[Any]:
    """Every non-empty document of trusted YAML, built straight from the parser's events.

    Trusted means written by gen or by kustomize: no anchors or aliases. ruamel's
    own constructor costs several times as much.
    """
    from ruamel.yaml import events as ev

    docs: list[Any] = []
    stack: list[Any] = []  # open collections: a list, or a _Frame for a mapping
    event: Any
    value: Any
    for event in _yaml().parse(text):
        kind = type(event)
        if kind is ev.ScalarEvent:
            tag = event.tag
            if tag is None or tag == "!":
                tag = _resolve(event.value) if event.implicit[0] else _STD + "str"
            value = _scalar(tag, event.value, 0, 0) if tag in _SCALAR_TAGS else event.value
        elif kind is ev.MappingStartEvent:
            stack.append(_Frame())
            continue
        elif kind is ev.SequenceStartEvent:
            stack.append([])
            continue
        elif kind is ev.MappingEndEvent:
            value = stack.pop().map
        elif kind is ev.SequenceEndEvent:
            value = stack.pop()
        elif kind is ev.AliasEvent:
            raise ValueError("aliases are not expected in trusted YAML")
        else:
            continue
        if not stack:
            if value is not None:
                docs.append(value)
        elif type(stack[-1]) is _Frame:
            frame = stack[-1]
            if frame.key is _Frame:
                frame.key = value
            else:
                frame.map[frame.key] = value
                frame.key = _Frame
        else:
            stack[-1].append(value)
    return docs
