"""The spec models: strict validation that reports every problem with its place, and a schema that agrees with it."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from gen.spec.cluster import Cassandra, Cluster, Server, Toleration
from gen.spec.loader import issues, load_text
from tests.conftest import FIXTURES


def _issues(model: Any, data: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as e:
        model.model_validate(data)
    return sorted((".".join(map(str, i.loc)), i.message) for i in issues(model, e.value))


def test_types_are_strict() -> None:
    assert _issues(Toleration, {"key": 5, "tolerationSeconds": True, "operator": ["Equal"]}) == [
        ("key", "expected a string, got number 5 (quote it)"),
        ("operator", "must be one of 'Exists' or 'Equal', got a list"),
        ("tolerationSeconds", "expected an integer, got boolean true"),
    ]


def test_every_problem_is_reported_with_unknown_keys() -> None:
    data = {"tolerations": [{}, {"key": 1}], "labels": {"k": 1}, "agent": {"sha256": 5}, "enabeld": True}
    assert _issues(Cassandra, data) == [
        ("agent.sha256", "expected a string, got number 5 (quote it)"),
        ("enabeld", "unknown field; did you mean 'enabled'?"),
        ("labels.k", "expected a string, got number 1 (quote it)"),
        ("tolerations.0", "a toleration with operator Equal needs a key"),
        ("tolerations.1.key", "expected a string, got number 1 (quote it)"),
    ]


def test_keys_are_camel_case_or_an_alias_never_the_attribute() -> None:
    assert _issues(Server, {"grpc_port": 9000}) == [("grpc_port", "unknown field; did you mean 'grpcPort'?")]
    [(_, message)] = _issues(Cassandra, {"zzz": 1})
    assert message.startswith("unknown field (allowed: enabled, state, nodeSelector, tolerations, agent, installDir")


def test_constraints_stop_at_the_first_and_a_huge_value_is_cut_short() -> None:
    assert _issues(Server, {"port": 80}) == [("port", "must be at least 1024, got number 80")]
    assert _issues(Server, {"retention": "1d\n"})[0][1].startswith("must be a duration")  # no line break through `$`
    [(_, message)] = _issues(Server, {"storagePath": "/" + "x" * 10_000})
    assert len(message) < 300 and "(10001 characters)" in message


@pytest.mark.parametrize("tag", ["1.0.0", "1.1.5", "1.1"])
def test_a_server_without_a_compactor_is_refused(tag: str) -> None:
    [(where, message)] = _issues(Server, {"image": f"grafana/pyroscope:{tag}"})
    assert where == "image" and "has no compactor" in message


@pytest.mark.parametrize("tag", ["1.2.0", "1.10.0", "1.18.0", "2.2.0", "2.2.1"])
def test_a_server_with_a_compactor_is_taken(tag: str) -> None:
    assert Server.model_validate({"image": f"grafana/pyroscope:{tag}"}).major == int(tag[0])


@pytest.mark.parametrize("tag", ["2.0.0", "2.1.2", "2.1"])
@pytest.mark.parametrize("retention", ["168h", "1s"])
def test_a_server_that_deletes_no_profiles_is_refused_a_retention(tag: str, retention: str) -> None:
    [(where, message)] = _issues(Server, {"image": f"grafana/pyroscope:{tag}", "retention": retention})
    assert where == "image" and f"deletes no profiles, so retention {retention} would not hold" in message


@pytest.mark.parametrize(
    ("tag", "retention"), [("2.1.2", "0"), ("2.0.0", "0h"), ("2.2.0", "168h"), ("2.10.0", "1h"), ("1.21.1", "1h")]
)
def test_a_retention_the_server_applies_or_none_is_taken(tag: str, retention: str) -> None:
    assert Server.model_validate({"image": f"grafana/pyroscope:{tag}", "retention": retention}).retention == retention


def test_defaults_are_fresh_models_frozen_and_dump_inverts_validation() -> None:
    a, b = Cassandra.model_validate({}), Cassandra.model_validate({})
    assert a.labels is not b.labels
    with pytest.raises(ValidationError):
        a.enabled = False  # type: ignore[misc]
    data = {"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule", "tolerationSeconds": None}
    assert Toleration.model_validate(data).model_dump(by_alias=True) == data


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
    text = (FIXTURES / "clusters" / "lab-minimal.yaml").read_text()
    data = load_text(text.encode(), "clusters/lab-minimal.yaml").positions.data
    data = {**data, "spec": {**data["spec"], **change}}
    schema_ok = jsonschema.Draft202012Validator(Cluster.model_json_schema(by_alias=True)).is_valid(data)
    try:
        Cluster.model_validate(data)
        model_ok = True
    except ValidationError:
        model_ok = False
    assert (schema_ok, model_ok) == ((True, True) if not change else (False, False))
