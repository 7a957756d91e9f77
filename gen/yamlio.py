"""All YAML handling of gen, configured once: specs loaded with positions, manifests loaded, data emitted."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import _ruamel_yaml  # type: ignore[import-not-found]
import ruamel.yaml
from _ruamel_yaml import CEmitter, CParser
from ruamel.yaml.composer import Composer
from ruamel.yaml.cyaml import CSafeLoader
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.resolver import BaseResolver, Resolver, implicit_resolvers
from ruamel.yaml.scanner import ScannerError

from gen import repofs
from gen.errors import Problem, SpecError, short_repr

MAX_SPEC_BYTES = 1024 * 1024
_TOO_LARGE = f"file is larger than {MAX_SPEC_BYTES} bytes; refused before parsing"
MAX_DEPTH = 32
# A spec holds about a hundred values; a 1 MiB flat list (half a million) would take seconds to compose.
MAX_NODES = 10_000
# A manifest gen or kustomize parses (base/, overlays/, argocd/): gen's objects nest 10 levels, a CRD about 30.
MAX_MANIFEST_DEPTH = 64
MAX_MANIFEST_NODES = 100_000

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
        parents = (self.keys.get(path[:n]) or self.values.get(path[:n]) for n in range(len(path), -1, -1))
        return self.values.get(path) or next(filter(None, parents), (1, 1))


class _Fail(Exception):  # noqa: N818 - internal signal, never leaves this module
    def __init__(self, at: tuple[int, int], message: str) -> None:
        super().__init__(message)
        self.at, self.message = at, message


def _at(mark: Any) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1)  # a library mark counts from 0


def library_identity() -> str:
    """Which ruamel.yaml and libyaml build gen parses and emits with: another one may emit other bytes."""
    st = os.stat(_ruamel_yaml.__file__)
    return f"ruamel.yaml {ruamel.yaml.__version__}, {_ruamel_yaml.__file__} {st.st_size} {st.st_mtime_ns}"


def _invalid(e: YAMLError) -> _Fail:
    """A library's refusal of a YAML text, as a positioned problem."""
    if not isinstance(e, MarkedYAMLError):
        return _Fail((1, 1), "invalid YAML: " + " ".join(str(e).split()))
    mark = e.problem_mark or e.context_mark
    # A scanner error's problem mark is where libyaml stopped reading: on the line of the token it
    # could not finish, the character at fault; on a later line (or past the end of the file), it ran
    # on looking for what was missing, and that token's start (the context mark) is the offending text.
    if isinstance(e, ScannerError) and e.context_mark is not None and mark.line != e.context_mark.line:
        mark = e.context_mark
    message = " ".join(x for x in (e.context, e.problem) if x) or "invalid YAML"
    hint = next((h for problem, h in _HINTS if problem in message), "")
    return _Fail(_at(mark) if mark else (1, 1), f"invalid YAML: {message}{hint}")


# libyaml's words for the usual slips, and what to do about each.
_HINTS = (
    ("plain scalar found unexpected ':'", "; a value with ':' inside { } or [ ] must be quoted"),
    ("mapping values are not allowed", "; a value with ': ' in it must be quoted"),
    ("block mapping did not find expected key", "; this line is indented differently from the keys above it"),
)


def read(path: os.PathLike[str] | str, filename: str) -> bytes:
    """The bytes of a spec file: a regular file (never a symlink, a FIFO or a directory) within the size limit."""
    try:
        return repofs.read(path, MAX_SPEC_BYTES)
    except repofs.NotAFile as e:
        why = _TOO_LARGE if e.too_large else f"{e.why}; gen reads only a regular file here"
        raise SpecError([Problem(filename, 1, 1, "", why)]) from None
    except OSError as e:
        raise SpecError([Problem(filename, 1, 1, "", f"cannot be read: {e.strerror or e}")]) from None


def check_bounds(text: str) -> tuple[int, int, str] | None:
    """Where a YAML text (of any number of documents) leaves the bounds of a manifest, as (line, column, why)."""
    # A pure function of the text, and every overlay's build reads the same base/ files: a text is
    # checked once. It is known by its digest, so that a large one (an AppProject as large as the
    # fleet, on both sides of a diff) is not kept in memory for it.
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    if digest not in _CHECKED:
        if len(_CHECKED) > 10_000:
            _CHECKED.clear()
        _CHECKED[digest] = _bounds(text)
    return _CHECKED[digest]


_CHECKED: dict[bytes, tuple[int, int, str] | None] = {}


def _bounds(text: str) -> tuple[int, int, str] | None:
    # On libyaml's events as they arrive: an alias bomb or 100 000 brackets cost no more than the bound.
    parser = CParser(text)
    depth = nodes = 0
    try:
        while not parser.check_event(StreamEndEvent):
            event = parser.get_event()
            depth += isinstance(event, CollectionStartEvent) - isinstance(event, CollectionEndEvent)
            if not isinstance(event, NodeEvent):
                continue
            nodes += 1
            at = _at(event.start_mark)
            if event.anchor is not None:  # an alias's anchor is the name it refers to
                return (*at, "YAML anchors and aliases are not allowed")
            if nodes > MAX_MANIFEST_NODES:
                return (*at, f"more than {MAX_MANIFEST_NODES} keys and values")
            if depth > MAX_MANIFEST_DEPTH:
                return (*at, f"nesting is deeper than {MAX_MANIFEST_DEPTH} levels")
    except YAMLError as e:
        fail = _invalid(e)
        return (*fail.at, fail.message)
    finally:
        parser.dispose()
    return None


def load(raw: bytes, filename: str) -> Positioned:
    """Parse one spec file; raise SpecError with exactly one positioned problem."""
    try:
        if len(raw) > MAX_SPEC_BYTES:
            raise _Fail((1, 1), _TOO_LARGE)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            # latin-1 reads each byte as one character: the column counts bytes.
            at = _line_col(raw.decode("latin-1"), e.start)
            raise _Fail(at, f"not valid UTF-8 (byte 0x{raw[e.start]:02x})") from None
        return _load_text(text.removeprefix("\ufeff"))
    except _Fail as f:
        raise SpecError([Problem(filename, *f.at, "", f.message)]) from None


class _SpecComposer(Composer, Resolver):
    """ruamel's composer (YAML 1.2 resolution) over libyaml's parser, refusing what a spec never holds."""

    # Checked as each node arrives, so that nesting stops at its bound rather than at Python's
    # recursion limit (libyaml's own composer, 2.5 times as fast, crashes on 100 000 nested brackets).
    max_depth = 0  # the composer's own bound counts scalars too; nesting is checked below

    def __init__(self, text: str) -> None:
        self._parser = CParser(text)
        Composer.__init__(self, loader=self)
        Resolver.__init__(self, loadumper=self)
        self.nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self._parser.peek_event()
        at = _at(event.start_mark)
        if event.anchor is not None:  # here: the composer would resolve an alias silently
            raise _Fail(at, "YAML anchors and aliases are not allowed in a spec")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Fail(at, f"more than {MAX_NODES} keys and values; a cluster spec holds far fewer")
        if isinstance(event, CollectionStartEvent) and self.depth > MAX_DEPTH:  # the root is level 0
            raise _Fail(at, f"nesting is deeper than {MAX_DEPTH} levels")
        return super().compose_node(parent, index)


class _CComposer(CParser, Resolver):  # type: ignore[misc]
    """libyaml's own composer, in C, resolving as `_SpecComposer` does."""

    def __init__(self, text: str) -> None:
        CParser.__init__(self, text)
        # Not given itself as its loader: that cycle would keep every parser and its buffers alive
        # while a render runs with the collector paused.
        Resolver.__init__(self)


# Measured on 2 cores: libyaml's composer takes 0.075 ms for a typical spec, ruamel's 0.175 ms, a
# twentieth of a full render's time. With ruamel's alone, a from-scratch render of 1,000 clusters
# took 5.9 to 7.3 times less user CPU than Kapitan in three runs: not reliably the sixth the speed
# target asks (fleet_bench.py --kapitan). It keeps no anchor and resolves aliases silently, so only a
# text that cannot hold one (nor a tag, a directive or deep flow nesting) is given to it, and only
# up to a size whose block nesting its recursion in C takes in its stride.
_FAST_MAX_TEXT = 16 * 1024
_FAST_MAX_BRACKETS = 8


def _fast_root(text: str) -> Node | None:
    """The document's root, composed in C; None when ruamel's composer must read the text (it says why)."""
    brackets = text.count("[") + text.count("{")
    if len(text) > _FAST_MAX_TEXT or brackets > _FAST_MAX_BRACKETS or any(c in text for c in "&*!%"):
        return None
    composer = _CComposer(text)
    try:
        root: Node | None = composer.get_single_node()
    except YAMLError:
        return None
    finally:
        composer.dispose()
    # Nesting checked without recursion: past the bound, ruamel's composer gives the error.
    pending: list[tuple[Node, int]] = [(root, 0)] if isinstance(root, MappingNode | SequenceNode) else []
    while pending:
        node, depth = pending.pop()
        if depth >= MAX_DEPTH:
            return None
        children = node.value if isinstance(node, SequenceNode) else (n for pair in node.value for n in pair)
        pending += [(c, depth + 1) for c in children if isinstance(c, MappingNode | SequenceNode)]
    return root


def _load_text(text: str) -> Positioned:
    if (root := _fast_root(text)) is not None:
        return _positioned(root)
    composer = _SpecComposer(text)
    parser = composer._parser
    try:
        parser.get_event()
        root = None if parser.check_event(StreamEndEvent) else composer.compose_document()
        if not parser.check_event(StreamEndEvent):
            parser.get_event()
            raise _Fail(_at(parser.peek_event().start_mark), "more than one YAML document; one file holds one spec")
    except ReaderError as e:
        # The reader refuses control characters before parsing; it knows only the offset.
        raise _Fail(
            _line_col(text, e.position), f"invalid YAML: control character U+{e.character:04X} is not allowed"
        ) from None
    except YAMLError as e:
        fail = _invalid(e)
        line, col = fail.at
        lines = text.splitlines()
        # Only blanks before the error: a tab there indents (after a key, a tab may separate a value).
        before = lines[line - 1][:col] if line <= len(lines) else ""
        if isinstance(e, MarkedYAMLError) and "\t" in before and not before.strip():
            raise _Fail(fail.at, "tab character in indentation; YAML indents with spaces") from None
        raise fail from None
    finally:
        parser.dispose()
    if root is None:
        raise _Fail((1, 1), "the file is empty; expected a Cluster spec mapping")
    return _positioned(root)


def _positioned(root: Node) -> Positioned:
    if not isinstance(root, MappingNode):
        kind = "a list" if isinstance(root, SequenceNode) else "a scalar"
        raise _Fail(
            _at(root.start_mark), f"the document is {kind}; expected a mapping (apiVersion, kind, metadata, spec)"
        )
    out = Positioned(None)
    out.data = _value(root, (), out)
    return out


def _value(node: Node, path: Path, out: Positioned) -> Any:
    """Plain data of a composed node, recording where each value and key sits."""
    out.values[path] = at = _at(node.start_mark)
    tag = str(node.tag)
    if isinstance(node, ScalarNode):
        return _scalar(tag, node.value, at)
    if tag != _STD + ("map" if isinstance(node, MappingNode) else "seq"):
        raise _Fail(at, f"YAML tag {_tag_name(tag)} is not allowed in a spec")
    if isinstance(node, SequenceNode):
        return [_value(item, (*path, i), out) for i, item in enumerate(node.value)]
    data: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key_tag = str(key_node.tag)
        if key_tag == _STD + "merge":
            raise _Fail(_at(key_node.start_mark), "YAML merge keys (<<) are not allowed in a spec")
        if not isinstance(key_node, ScalarNode) or key_tag not in _SCALAR_TAGS:
            raise _Fail(_at(key_node.start_mark), "mapping keys must be plain strings")
        key = str(key_node.value)
        if key in data:
            first = out.keys[(*path, key)][0]
            raise _Fail(_at(key_node.start_mark), f"duplicate key {key!r} (first defined at line {first})")
        out.keys[(*path, key)] = _at(key_node.start_mark)
        data[key] = _value(value_node, (*path, key), out)
    return data


def _line_col(text: str, offset: int) -> tuple[int, int]:
    return text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_STD) :] if tag.startswith(_STD) else tag


def _scalar(tag: str, value: str, at: tuple[int, int]) -> Any:
    kind = tag[len(_STD) :]
    if kind == "timestamp":
        # Resolved from a plain scalar such as a date-named revision: nobody wrote a tag.
        raise _Fail(at, f"{short_repr(value)} reads as a YAML date; quote it to make it a string")
    if tag not in _SCALAR_TAGS:
        raise _Fail(at, f"YAML tag {_tag_name(tag)} is not allowed in a spec")
    if kind in ("str", "null", "bool"):
        return {"str": value, "null": None, "bool": value.lower() == "true"}[kind]
    digits = value.replace("_", "")
    try:
        if kind == "float":
            # YAML spells infinity and not-a-number .inf and .nan, Python inf and nan.
            return float(digits.lower().replace(".inf", "inf").replace(".nan", "nan"))
        try:
            number = int(digits, 0)
        except ValueError:
            number = int(digits, 10)  # YAML 1.2 reads 017 as decimal 17; base 0 refuses leading zeros
    except ValueError:
        raise _Fail(at, f"cannot read {short_repr(value)} as {kind}") from None
    # No consumer reads more than 64 bits, and a huge number (0x and thousands
    # of digits) cannot even be turned back into decimal text for a message.
    if not -(2**63) <= number < 2**63:
        raise _Fail(at, f"{short_repr(value)} is out of the 64-bit integer range")
    return number


class _EitherVersionResolver(BaseResolver):
    """Reads a plain scalar as YAML 1.1 or 1.2 would, whichever is not a string: the emitter quotes such strings."""


for _versions, *_resolver in implicit_resolvers:
    _EitherVersionResolver.add_implicit_resolver_base(*_resolver)
_RESOLVER = _EitherVersionResolver()


_STR = _STD + "str"
_START, _END = MappingStartEvent(None, None, True, flow_style=False), MappingEndEvent()
_SEQ_START, _SEQ_END = SequenceStartEvent(None, None, True, flow_style=False), SequenceEndEvent()


def _scalar_event(tag: str, value: str, style: str | None = None) -> ScalarEvent:
    """A scalar as ruamel's serializer would send it: plain only where the resolver reads back its tag."""
    # A block scalar (style "|") is never written plain. The tag's suffix is compared: comparing the
    # Tag itself decodes it character by character each time.
    plain = style is None and _RESOLVER.resolve(ScalarNode, value, (True, False)).suffix == tag
    return ScalarEvent(None, tag, (plain, tag == _STR), value, style=style)


# Fleets repeat their texts, and an event is never changed once made: one for each text, up to a bound.
_TEXTS: dict[str, ScalarEvent] = {}
_NULL, _TRUE, _FALSE = (
    _scalar_event(_STD + tag, v) for tag, v in (("null", "null"), ("bool", "true"), ("bool", "false"))
)


def _text_event(value: str) -> ScalarEvent:
    if len(_TEXTS) > 100_000:
        _TEXTS.clear()
    event = _TEXTS[value] = _scalar_event(_STR, value)
    return event


def _events(data: Any, emit: Any) -> None:
    """Hand data to libyaml's emitter as events: block style, keys in insertion order, no anchors."""
    # Not through ruamel's representer and serializer: with them, `render --all` of
    # 1,000 clusters took 2.6 s of CPU rather than 1.9 s (fleet_bench.py). A one-line text is
    # looked up in line, the most frequent event by far.
    kind = type(data)
    if kind is str:
        # Multi-line text (a config file) as a literal block; libyaml quotes it where a block
        # cannot hold it. Not kept: such a text is most often one cluster's own.
        emit(_scalar_event(_STR, data, "|") if "\n" in data else _TEXTS.get(data) or _text_event(data))
    elif kind is dict:
        emit(_START)
        for k, v in data.items():
            if type(k) is str and "\n" not in k:
                emit(_TEXTS.get(k) or _text_event(k))
            else:
                _events(k, emit)
            if type(v) is str and "\n" not in v:
                emit(_TEXTS.get(v) or _text_event(v))
            else:
                _events(v, emit)
        emit(_END)
    elif kind is list or kind is tuple:
        emit(_SEQ_START)
        for v in data:
            _events(v, emit)
        emit(_SEQ_END)
    elif data is None:
        emit(_NULL)
    elif kind is bool:
        emit(_TRUE if data else _FALSE)
    elif kind is int:
        emit(_scalar_event(_STD + "int", str(data)))
    elif kind is float:
        # YAML spells infinity and not-a-number .inf and .nan, Python inf and nan.
        emit(_scalar_event(_STD + "float", repr(data).lower().replace("inf", ".inf").replace("nan", ".nan")))
    elif isinstance(data, Mapping):
        _events(dict(data), emit)
    elif isinstance(data, str):
        _events(str(data), emit)
    else:
        raise TypeError(f"cannot emit {kind.__name__} as YAML")


_DUMPED: dict[str, str] = {}


def dump(data: Any, *, repeated: bool = False) -> str:
    """Emit one YAML document; the data model is JSON's (dicts, lists, str, int, float, bool, None).

    `repeated`: a small document the fleet repeats (a JSON patch, a namespace), emitted once.
    """
    # Output is a pure function of the data.
    key = repr(data) if repeated else ""
    text = _DUMPED.get(key) if repeated else None
    if text is None:
        buf = io.StringIO()
        emitter = CEmitter(buf, indent=2, width=4096, allow_unicode=True, line_break="\n")
        try:
            emitter.open()
            emitter.emit(DocumentStartEvent(explicit=False))
            _events(data, emitter.emit)
            emitter.emit(DocumentEndEvent(explicit=False))
            emitter.close()
        finally:
            emitter.dispose()
        text = buf.getvalue()
        if repeated:
            if len(_DUMPED) > 10_000:
                _DUMPED.clear()
            _DUMPED[key] = text
    return text


def dump_all(docs: list[Any]) -> str:
    return "---\n".join(dump(d) for d in docs)


def parse_all_file(path: os.PathLike[str] | str, filename: str) -> list[Any]:
    """Every document of a committed YAML file (an Argo CD file); what cannot be read is a problem of `filename`."""
    return parse_all_bytes(repofs.read(path), filename)


def parse_all_bytes(data: bytes, filename: str) -> list[Any]:
    """Every document of a YAML file's bytes; bytes that are no UTF-8 or no YAML are a problem of `filename`."""
    try:
        return parse_all_plain(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise SpecError([Problem(filename, 1, 1, "", f"not valid UTF-8 (byte 0x{e.object[e.start]:02x})")]) from None
    except YAMLError as e:
        fail = _invalid(e)
        raise SpecError([Problem(filename, *fail.at, "", fail.message)]) from None


def parse_plain(text: str) -> Any:
    """Load trusted YAML (our own output, kustomize's output) without positions."""
    return next(iter(parse_all_plain(text)), None)


class _ManifestLoader(CSafeLoader):
    """ruamel's libyaml-based safe loader; a date stays the text it was, as in a Kubernetes object."""


_ManifestLoader.add_constructor(_STD + "timestamp", _ManifestLoader.construct_yaml_str)


def parse_all_plain(text: str) -> list[Any]:
    """Every non-empty document of trusted YAML (written by gen or kustomize, or within `check_bounds`)."""
    loader = _ManifestLoader(text)
    try:
        docs = [loader.get_data() for _ in iter(loader.check_data, False)]
    finally:
        loader.dispose()
    return [d for d in docs if d is not None]
