"""Emitted YAML reads back as the same data under YAML 1.1 and 1.2 readers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from gen import yamlio


def _read(text: str, version: str) -> Any:
    # A %YAML directive picks the reader's version: kustomize's Go reader is 1.1-like on
    # booleans and sexagesimals, 1.2-like on leading zeros.
    yaml = YAML(typ="safe", pure=True)
    return yaml.load(f"%YAML {version}\n---\n{text}")


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ("0800", "newTag: '0800'"),  # an image tag: 1.2 reads 800
        ("08", "newTag: '08'"),  # a nodeSelector value: 1.2 reads 8
        ("190:20:30.15", "newTag: '190:20:30.15'"),  # 1.1 reads a sexagesimal float
        ("y", "newTag: 'y'"),  # 1.1 reads a boolean
        ("v1.18.1", "newTag: v1.18.1"),
        ("true", "newTag: 'true'"),
    ],
)
def test_a_string_that_reads_as_something_else_is_quoted(value: str, line: str) -> None:
    text = yamlio.dump({"newTag": value})
    assert text == line + "\n"
    for version in ("1.1", "1.2"):
        assert _read(text, version) == {"newTag": value}


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from("\n\t:#-. 0_"))
_SCALAR = _TEXT | st.from_regex(r"[-+]?[0-9_:.eExob]{1,12}", fullmatch=True) | st.integers(-(2**63), 2**63 - 1)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_TEXT, _SCALAR | st.lists(_SCALAR, max_size=3), max_size=4))
def test_every_emitted_string_reads_back_as_the_same_string(data: dict[str, Any]) -> None:
    text = yamlio.dump(data)
    for version in ("1.1", "1.2"):
        assert _read(text, version) == data, (version, text)
    assert yamlio.parse_plain(text) == data


def test_keys_keep_their_order_and_multi_line_text_is_a_literal_block() -> None:
    assert yamlio.dump({"b": 1, "a": {"x": "one\ntwo\n"}, "c": [None, True, 1.5]}) == (
        "b: 1\na:\n  x: |\n    one\n    two\nc:\n- null\n- true\n- 1.5\n"
    )


def _loaded_both_ways(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    """What a spec file loads to (data and every position, or the error lines), with libyaml's composer and without."""

    def outcome() -> object:
        try:
            doc = yamlio.load(raw, "spec.yaml")
        except yamlio.SpecError as e:
            return [str(p) for p in e.problems]
        return doc.data, doc.values, doc.keys

    fast = outcome()
    with monkeypatch.context() as m:
        m.setattr(yamlio, "_fast_root", lambda text: None)
        return fast, outcome()


def test_libyamls_composer_reads_every_spec_as_ruamels_does(monkeypatch: pytest.MonkeyPatch) -> None:
    tests = Path(__file__).parent
    corpus = [*(tests / "negative").glob("*.yaml"), *(tests / "fixtures").rglob("*.yaml")]
    taken = 0
    for path in corpus:
        raw = path.read_bytes()
        fast, slow = _loaded_both_ways(raw, monkeypatch)
        assert fast == slow, path.name
        taken += yamlio._fast_root(raw.decode("utf-8", "replace")) is not None
    assert taken > len(corpus) / 2, "most specs take the fast path"


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8), _containers, max_leaves=30))
@settings(max_examples=200, deadline=None)
def test_any_emitted_document_loads_alike_both_ways(data: Any) -> None:
    text = yamlio.dump({"spec": data})
    with pytest.MonkeyPatch.context() as m:
        fast, slow = _loaded_both_ways(text.encode(), m)
    assert fast == slow
