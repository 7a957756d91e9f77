"""gen.model: strict validation that reports every problem with its place, and a schema that agrees with it."""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Annotated, Any, Literal

import jsonschema
import pytest

from gen.loader import load_text
from gen.model import Alias, Before, Check, InvalidError, Length, Model, Pattern, Range, after, dump, json_schema, parse
from gen.spec import Cluster
from tests.conftest import PROJECT


def _no_commas(value: object) -> object:
    if isinstance(value, str) and "," in value:
        raise ValueError("one value, not a list")
    return value


def _even(value: int) -> int:
    if value % 2:
        raise ValueError(f"{value} is odd")
    return value


class Inner(Model):
    size: Annotated[int, Range(ge=1, le=10)] = 5
    tags: dict[str, str] = field(default_factory=dict)


class Outer(Model):
    name: Annotated[str, Length(min=1, max=8), Pattern(r"^[a-z]+$", "lowercase letters only")]
    repo_url: Annotated[str, Alias("repoURL")] = "x"
    mode: Annotated[Literal["a", "b"], Before(_no_commas)] = "a"
    flag: bool = False
    count: Annotated[int, Check(_even)] = 0
    inner: Inner = field(default_factory=Inner)
    items: Annotated[list[Inner], Length(max=2)] = field(default_factory=list)
    note: str | None = None

    @after
    def _flag_needs_count(self) -> None:
        if self.flag and not self.count:
            raise ValueError("flag needs a count")


def _issues(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(InvalidError) as e:
        parse(Outer, data)
    return [(".".join(map(str, i.loc)), i.message) for i in e.value.issues]


def test_types_are_strict() -> None:
    assert _issues({"name": "ok", "count": True, "flag": 1, "note": 5}) == [
        ("flag", "expected true or false, got number 1"),
        ("count", "expected an integer, got boolean true"),
        ("note", "expected a string, got number 5 (quote it)"),
    ]


def test_every_problem_in_field_order_then_unknown_keys() -> None:
    assert _issues({"nmae": "x", "inner": {"size": 0, "tags": {"k": 1}}, "items": [{}, {"size": "3"}]}) == [
        ("name", "required field is missing"),
        ("inner.size", "must be at least 1, got number 0"),
        ("inner.tags.k", "expected a string, got number 1 (quote it)"),
        ("items.1.size", "expected an integer, got string '3'"),
        ("nmae", "unknown field; did you mean 'name'?"),
    ]


def test_constraints_run_in_order_and_stop_at_the_first() -> None:
    assert _issues({"name": "ABCDEFGHIJ"}) == [("name", "must be at most 8 characters long, got string 'ABCDEFGHIJ'")]
    assert _issues({"name": "AB"}) == [("name", "lowercase letters only")]
    assert _issues({"name": "ab\n"}) == [("name", "lowercase letters only")]  # `$` lets no line break through
    assert _issues({"name": "ab", "count": 3}) == [("count", "3 is odd")]
    assert _issues({"name": "ab", "items": [{}, {}, {}]}) == [("items", "must be at most 2 items, got 3")]


def test_literals_and_before_checks() -> None:
    assert _issues({"name": "ab", "mode": "c"}) == [("mode", "must be one of 'a' or 'b', got string 'c'")]
    assert _issues({"name": "ab", "mode": "a,b"}) == [("mode", "one value, not a list")]
    assert _issues({"name": "ab", "mode": ["a"]}) == [("mode", "must be one of 'a' or 'b', got a list")]


def test_model_checks_run_once_the_fields_are_valid() -> None:
    assert _issues({"name": "ab", "flag": True}) == [("", "flag needs a count")]
    assert _issues({"name": "ab", "flag": True, "count": 1}) == [("count", "1 is odd")]


def test_keys_are_camel_case_or_an_alias() -> None:
    got = parse(Outer, {"name": "ab", "repoURL": "https://example.invalid/r.git"})
    assert got.repo_url == "https://example.invalid/r.git"
    assert _issues({"name": "ab", "repo_url": "x"}) == [("repo_url", "unknown field; did you mean 'repoURL'?")]
    assert _issues({"name": "ab", "zzz": 1})[0][1].startswith("unknown field (allowed: name, repoURL, mode")


def test_defaults_are_fresh_and_models_frozen() -> None:
    a, b = parse(Outer, {"name": "ab"}), parse(Outer, {"name": "cd"})
    assert a.inner == Inner() and a.inner.tags is not b.inner.tags
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.name = "zz"  # type: ignore[misc]


def test_dump_is_the_inverse_of_parse() -> None:
    data = {"name": "ab", "repoURL": "r", "mode": "b", "flag": True, "count": 2, "note": None}
    data |= {"inner": {"size": 3, "tags": {"k": "v"}}, "items": [{"size": 1, "tags": {}}]}
    assert dump(parse(Outer, data)) == data
    assert "note" not in dump(parse(Outer, data), exclude_none=True)


def test_a_huge_value_is_cut_short_in_messages() -> None:
    [(_, message)] = _issues({"name": "ab", "count": "9" * 10_000})
    assert len(message) < 200 and "(10000 characters)" in message


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"server": {"port": 80}},
        {"server": {"port": "4040"}},
        {"ebpf": {"enabled": 1}},
        {"namespace": "Has-Caps"},
        {"cassandra": {"profiler": {"event": "alloc"}}},
        {"grafana": {"datasourceUid": "x" * 41}},
        {"bogus": True},
    ],
    ids=lambda c: next(iter(c), "valid"),
)
def test_the_schema_agrees_with_validation(change: dict[str, Any]) -> None:
    """Whatever the schema refuses, validation refuses (validation also runs checks the schema cannot say)."""
    text = (PROJECT / "clusters" / "lab-minimal.yaml").read_text()
    data = load_text(text.encode(), "clusters/lab-minimal.yaml").positions.data
    data = {**data, "spec": {**data["spec"], **change}}
    schema_ok = jsonschema.Draft202012Validator(json_schema(Cluster)).is_valid(data)
    try:
        parse(Cluster, data)
        model_ok = True
    except InvalidError:
        model_ok = False
    assert (schema_ok, model_ok) == ((True, True) if not change else (False, False))
