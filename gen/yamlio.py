"""All YAML handling of gen: positioned loading of specs and deterministic emitting.

Nothing else in gen touches ruamel.yaml. Specs are composed into nodes with the
libyaml-based parser (fast, and every node keeps its line and column), then
turned into plain Python data by hand so that duplicate keys, aliases, explicit
tags and absurd nesting are refused with a position instead of being accepted.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gen.errors import Problem, SpecError

MAX_SPEC_BYTES = 1024 * 1024
MAX_DEPTH = 32

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


def _yaml(pure: bool = False) -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=pure)


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

    try:
        nodes = list(_yaml().compose_all(text))
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
        raise _Fail(1, 1, f"invalid YAML: {e}") from None
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


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_STD) :] if tag.startswith(_STD) else tag


def _convert(node: Any, path: Path, out: Positioned, seen: set[int], depth: int) -> Any:
    from ruamel.yaml.nodes import MappingNode, SequenceNode

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
    try:
        if kind == "int":
            return int(value.replace("_", ""), 0)
        return float(value.replace("_", ""))
    except ValueError:
        raise _Fail(line, col, f"cannot read {value!r} as {kind}") from None


# ---------------------------------------------------------------- emitting


class _Literal(str):
    """A multi-line string emitted as a literal block (`|`)."""


def _dumper() -> Any:
    y = _yaml()
    y.default_flow_style = False
    y.width = 4096
    y.indent(mapping=2, sequence=2, offset=0)
    y.representer.sort_base_mapping_type_on_output = False

    def literal(rep: Any, data: str) -> Any:
        return rep.represent_scalar("tag:yaml.org,2002:str", str(data), style="|")

    y.representer.add_representer(_Literal, literal)
    return y


_DUMPER: Any = None


def dump(data: Any) -> str:
    """Emit one YAML document: keys in insertion order, multi-line strings as blocks."""
    global _DUMPER  # noqa: PLW0603 - one configured dumper per process
    if _DUMPER is None:
        _DUMPER = _dumper()
    buf = io.StringIO()
    _DUMPER.dump(_literals(data), buf)
    return buf.getvalue()


def dump_all(docs: list[Any]) -> str:
    return "---\n".join(dump(d) for d in docs)


def _literals(data: Any) -> Any:
    if isinstance(data, str) and "\n" in data:
        # A literal block cannot carry trailing spaces on a line; those stay quoted.
        if any(line != line.rstrip() for line in data.splitlines()):
            return data
        return _Literal(data)
    if isinstance(data, Mapping):
        return {k: _literals(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_literals(v) for v in data]
    return data


def parse_plain(text: str) -> Any:
    """Load trusted YAML (our own output, kustomize's output) without positions."""
    return _yaml().load(text)


def parse_all_plain(text: str) -> list[Any]:
    return [d for d in _yaml().load_all(text) if d is not None]
