"""The normalized schema itself: well-formed, documented, and `validate` says what is wrong."""

from __future__ import annotations

import pytest

from secretsight import schema

S = schema.load()

GOOD = {
    "@timestamp": "2026-05-09T10:00:01.234567Z",
    "event": {"dataset": "vault.audit", "action": "read", "outcome": "success", "id": "r-1"},
    "secretsight": {"category": "secret"},
    "secret": {"operation": "read", "path": "secret/production/database/password"},
    "user": {"id": "tok_A1b2c3", "roles": ["default", "production-read"]},
    "source": {"ip": "10.0.1.47"},
}


@pytest.mark.parametrize("name", sorted(S.fields))
def test_every_field_is_documented(name: str) -> None:
    assert S.fields[name].description, f"{name} needs a description"


def test_required_fields_are_the_core() -> None:
    assert S.required == [
        "@timestamp",
        "event.dataset",
        "event.action",
        "event.outcome",
        "event.id",
        "secretsight.category",
    ]


def test_vocabularies_match_field_values() -> None:
    assert list(S.fields["secret.operation"].values or ()) == list(S.operations)
    assert list(S.fields["secretsight.category"].values or ()) == list(S.categories)
    assert list(S.fields["event.dataset"].values or ()) == list(S.datasets)
    assert set(S.operation_map) == set(S.datasets)


def test_a_conforming_event_has_no_problems() -> None:
    assert schema.validate(GOOD) == []


def _with(path: str, value: object) -> dict:
    import copy

    event = copy.deepcopy(GOOD)
    *parents, leaf = path.split(".") if path != "@timestamp" else ["@timestamp"]
    node = event
    for p in parents:
        node = node.setdefault(p, {})
    if value is None:
        del node[leaf]
    else:
        node[leaf] = value
    return event


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        ("event.id", None, "missing required field event.id"),
        ("source.ip", "10.0.1.47:8200", "field source.ip must be a valid IP"),
        ("source.ip", "secretsmanager.amazonaws.com", "field source.ip must be a valid IP"),
        ("@timestamp", "2026-05-09 10:00:01", "field @timestamp must be an RFC 3339 UTC"),
        ("event.outcome", "ok", "field event.outcome must be one of"),
        ("user.roles", "default", "field user.roles must be a list"),
        ("user.name", "", "field user.name is empty"),
        ("event.original", "{}", "field event.original is not in the schema"),
        ("secret.operation", None, "category secret needs secret.operation"),
        ("source.port", "8200", "field source.port must be an integer"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_validate_names_each_problem(path: str, value: object, problem: str) -> None:
    problems = schema.validate(_with(path, value))
    assert any(p.startswith(problem) for p in problems), problems


def test_flatten_keeps_lists_as_leaves() -> None:
    assert schema.flatten({"a": {"b": [1, 2]}, "c": 1}) == {"a.b": [1, 2], "c": 1}
