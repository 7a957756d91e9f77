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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from gen.errors import Problem, SpecError, short_repr

MAX_SPEC_BYTES = 1024 * 1024
_TOO_LARGE = f"file is larger than {MAX_SPEC_BYTES} bytes; refused before parsing"
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


def library_identity() -> str:
    """Which ruamel.yaml and libyaml build gen parses and emits with: another one may emit other bytes."""
    import _ruamel_yaml  # type: ignore[import-not-found]
    import ruamel.yaml

    st = os.stat(_ruamel_yaml.__file__)
    return f"ruamel.yaml {ruamel.yaml.__version__}, {_ruamel_yaml.__file__} {st.st_size} {st.st_mtime_ns}"


def _parse(text: str) -> Iterator[Any]:
    """The events of a YAML text from libyaml's parser (ruamel.yaml.clib), without ruamel's wrapper."""
    from ruamel.yaml.cyaml import CParser  # type: ignore[attr-defined]

    parser = CParser(text)
    try:
        while parser.check_event():
            yield parser.get_event()
    finally:
        parser.dispose()


def read(path: os.PathLike[str] | str, filename: str) -> bytes:
    """The bytes of a spec file: a regular file (never a symlink, a FIFO or a directory) within the size limit.

    Anything else is a problem of the input, refused before a byte is read.
    """
    from gen import repofs

    try:
        return repofs.read(path, MAX_SPEC_BYTES)
    except repofs.NotAFile as e:
        if e.too_large:
            raise SpecError([Problem(filename, 1, 1, "", _TOO_LARGE)]) from None
        raise SpecError([Problem(filename, 1, 1, "", f"{e.why}; gen reads only a regular file here")]) from None
    except OSError as e:
        raise SpecError([Problem(filename, 1, 1, "", f"cannot be read: {e.strerror or e}")]) from None


# Bounds on a manifest file gen or kustomize parses (base/, overlays/, argocd/): the
# deepest object gen renders nests 10 levels, a CRD about 30.
MAX_MANIFEST_DEPTH = 64
MAX_MANIFEST_NODES = 100_000


def check_bounds(text: str) -> tuple[int, int, str] | None:
    """Where a YAML text (of any number of documents) leaves the bounds of a manifest, as (line, column, why).

    Nesting, size and aliases (whose expansion multiplies a small file) are
    checked as the events arrive, so a hostile file costs no more than its bound.
    """
    from ruamel.yaml import events as ev
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    depth = nodes = 0
    event: Any
    try:
        for event in _parse(text):
            kind = type(event)
            if kind is ev.MappingEndEvent or kind is ev.SequenceEndEvent:
                depth -= 1
                continue
            if not issubclass(kind, ev.NodeEvent):
                continue
            where = (event.start_mark.line + 1, event.start_mark.column + 1)
            nodes += 1
            if kind is ev.AliasEvent or event.anchor is not None:
                return (*where, "YAML anchors and aliases are not allowed")
            if nodes > MAX_MANIFEST_NODES:
                return (*where, f"more than {MAX_MANIFEST_NODES} keys and values")
            if kind is ev.MappingStartEvent or kind is ev.SequenceStartEvent:
                depth += 1
                if depth > MAX_MANIFEST_DEPTH:
                    return (*where, f"nesting is deeper than {MAX_MANIFEST_DEPTH} levels")
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        msg = " ".join(x for x in (e.context, e.problem) if x) or "invalid YAML"
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return (line, col, f"invalid YAML: {msg}")
    except YAMLError as e:
        return (1, 1, "invalid YAML: " + " ".join(str(e).split()))
    return None


def load(raw: bytes, filename: str) -> Positioned:
    """Parse one spec file; raise SpecError with exactly one positioned problem."""
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError([Problem(filename, 1, 1, "", _TOO_LARGE)])
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
        out = _build(text)
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
    except YAMLError as e:
        raise _Fail(1, 1, "invalid YAML: " + " ".join(str(e).split())) from None
    return out


class _Map:
    """A mapping being built: its dict, its path, and the key waiting for a value."""

    __slots__ = ("data", "key", "path")

    def __init__(self, path: Path) -> None:
        self.data: dict[str, Any] = {}
        self.path = path
        self.key: str | None = None


class _Seq:
    __slots__ = ("data", "path")

    def __init__(self, path: Path) -> None:
        self.data: list[Any] = []
        self.path = path


def _build(text: str) -> Positioned:
    """A spec's data and positions, built from the parser's events in one pass.

    Checks on the document's shape (nesting, size, anchors, a second document) run
    as events arrive, before anything else: the parser keeps its own stack, so the
    walk stops at the first level too deep instead of recursing into it. A problem
    with the content (a tag, a duplicate key) is kept until the whole text has
    parsed, so that a syntax error anywhere is the one reported.
    """
    from ruamel.yaml import events as ev

    builder = _Builder()
    documents = count = 0
    event: Any
    for event in _parse(text):
        kind = type(event)
        if kind is ev.DocumentStartEvent:
            documents += 1
        elif kind is ev.MappingEndEvent or kind is ev.SequenceEndEvent:
            builder.end()
        elif issubclass(kind, ev.NodeEvent):
            line, col = event.start_mark.line + 1, event.start_mark.column + 1
            if documents > 1:
                raise _Fail(line, col, "more than one YAML document; one file holds one spec")
            # Here rather than later: an alias of a scalar looks like a plain value.
            if event.anchor is not None:
                raise _Fail(line, col, "YAML anchors and aliases are not allowed in a spec")
            count += 1
            if count > MAX_NODES:
                raise _Fail(line, col, f"more than {MAX_NODES} keys and values; a cluster spec holds far fewer")
            collection = kind is ev.MappingStartEvent or kind is ev.SequenceStartEvent
            if collection and len(builder.stack) > MAX_DEPTH:  # the root mapping is level 0
                raise _Fail(line, col, f"nesting is deeper than {MAX_DEPTH} levels")
            builder.node(event, kind is ev.MappingStartEvent, collection, (line, col))
    return builder.result()


class _Builder:
    """Turns node events into plain data and positions; stops building at the first problem."""

    def __init__(self) -> None:
        self.out = Positioned(data=None)
        self.stack: list[_Map | _Seq] = []
        self.roots = 0
        self.failure: _Fail | None = None

    def node(self, event: Any, is_map: bool, collection: bool, at: tuple[int, int]) -> None:
        if self.failure is None:
            self.failure = self._node(event, is_map, collection, at)
            if self.failure is None or not collection:
                return
        if collection:
            self.stack.append(_Seq(()))  # counted for nesting, no longer built

    def _node(self, event: Any, is_map: bool, collection: bool, at: tuple[int, int]) -> _Fail | None:
        parent = self.stack[-1] if self.stack else None
        if isinstance(parent, _Map) and parent.key is None:
            return self._key(event, parent, collection, at)
        if parent is None:
            self.roots += 1
            path: Path = ()
        elif isinstance(parent, _Map):
            path = (*parent.path, str(parent.key))
        else:
            path = (*parent.path, len(parent.data))
        self.out.values[path] = at
        if not collection:
            try:
                self._place(_scalar_value(event, *at))
            except _Fail as f:
                return f
            return None
        plain = _STD + ("map" if is_map else "seq")
        tag = event.tag or plain
        if tag != plain:
            return _Fail(*at, f"YAML tag {_tag_name(tag)} is not allowed in a spec")
        self.stack.append(_Map(path) if is_map else _Seq(path))
        return None

    def _key(self, event: Any, parent: _Map, collection: bool, at: tuple[int, int]) -> _Fail | None:
        tag = "" if collection else _event_tag(event)
        if tag == _STD + "merge":
            return _Fail(*at, "YAML merge keys (<<) are not allowed in a spec")
        if collection or tag not in _SCALAR_TAGS:
            return _Fail(*at, "mapping keys must be plain strings")
        key = str(event.value)
        if key in parent.data:
            first = self.out.keys[(*parent.path, key)]
            return _Fail(*at, f"duplicate key {key!r} (first defined at line {first[0]})")
        self.out.keys[(*parent.path, key)] = at
        parent.key = key
        return None

    def end(self) -> None:
        done = self.stack.pop()
        if self.failure is None:
            self._place(done.data)

    def _place(self, value: Any) -> None:
        if not self.stack:
            self.out.data = value
        elif isinstance(self.stack[-1], _Map):
            parent = self.stack[-1]
            parent.data[str(parent.key)] = value
            parent.key = None
        else:
            self.stack[-1].data.append(value)

    def result(self) -> Positioned:
        if self.failure is not None:
            raise self.failure
        if self.roots == 0:
            raise _Fail(1, 1, "the file is empty; expected a Cluster spec mapping")
        data = self.out.data
        if not isinstance(data, dict):
            kind = "a list" if isinstance(data, list) else "a scalar"
            message = f"the document is {kind}; expected a mapping (apiVersion, kind, metadata, spec)"
            raise _Fail(*self.out.values[()], message)
        return self.out


def _event_tag(event: Any) -> str:
    tag = event.tag
    if tag is None or tag == "!":
        return _resolve(event.value) if event.implicit[0] else _STD + "str"
    return str(tag)


def _scalar_value(event: Any, line: int, col: int) -> Any:
    tag = _event_tag(event)
    if tag == _STD + "timestamp":
        # Resolved from a plain scalar such as a date-named revision: nobody wrote a tag.
        raise _Fail(line, col, f"{short_repr(event.value)} reads as a YAML date; quote it to make it a string")
    if tag not in _SCALAR_TAGS:
        raise _Fail(line, col, f"YAML tag {_tag_name(tag)} is not allowed in a spec")
    return _scalar(tag, event.value, line, col)


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


_LEAVES = (str, int, float, bool, type(None))


def _collect(data: Any, out: list[Any], events: _Events) -> None:
    # The hot loop of every render: leaf events are looked up inline, not through calls.
    kind = type(data)
    scalars = events.scalars
    if kind is dict:
        out.append(events.map_start)
        for key, value in data.items():
            out.append(scalars.get((str, key)) or events.scalar(key))
            vkind = type(value)
            if vkind in _LEAVES:
                out.append(scalars.get((vkind, value)) or events.scalar(value))
            else:
                _collect(value, out, events)
        out.append(events.map_end)
    elif kind is list or kind is tuple:
        out.append(events.seq_start)
        for value in data:
            vkind = type(value)
            if vkind in _LEAVES:
                out.append(scalars.get((vkind, value)) or events.scalar(value))
            else:
                _collect(value, out, events)
        out.append(events.seq_end)
    elif kind in _LEAVES:
        out.append(events.scalar(data))
    elif isinstance(data, Mapping):
        _collect(dict(data), out, events)
    elif isinstance(data, str):
        _collect(str(data), out, events)
    else:
        raise TypeError(f"cannot emit {kind.__name__} as YAML")


def dump_all(docs: list[Any]) -> str:
    return "---\n".join(dump(d) for d in docs)


def parse_all_file(path: os.PathLike[str] | str, filename: str) -> list[Any]:
    """Every document of a committed YAML file (an Argo CD file); what cannot be read is a problem of it.

    `filename` is how the problem names the file.
    """
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    from gen import repofs

    try:
        text = repofs.read_text(path)
    except UnicodeDecodeError as e:
        raise SpecError([Problem(filename, 1, 1, "", f"not valid UTF-8 (byte 0x{e.object[e.start]:02x})")]) from None
    try:
        return parse_all_plain(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        msg = " ".join(x for x in (e.context, e.problem) if x) or "invalid YAML"
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise SpecError([Problem(filename, line, col, "", f"invalid YAML: {msg}")]) from None
    except YAMLError as e:
        raise SpecError([Problem(filename, 1, 1, "", "invalid YAML: " + " ".join(str(e).split()))]) from None


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
    for event in _parse(text):
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
