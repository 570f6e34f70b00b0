"""The stream's predicates answer what the engine's SQL answers, on awkward events: case
(ASCII folding only, as SQLite), list fields, absent fields under `not`, CIDR, numbers,
booleans, a literal `*`. Every bundled rule (building blocks included) is checked against
`Engine.matches` on the same events; and a rule the stream cannot evaluate is named."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sigma.collection import SigmaCollection
from sigma.rule import SigmaRule
from support.event_builders import put_field

from secretsight.config import Config
from secretsight.engine import Engine
from secretsight.rules import load_rules
from secretsight.stream.predicate import Folded, guard_of
from secretsight.stream.rules import StreamRules, flatten


def _e(i: int, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"@timestamp": f"2026-03-01T10:00:{i:02d}Z",
                             "event": {"id": f"e{i}", "dataset": "vault.audit"}}
    for dotted, value in fields.items():
        put_field(event, dotted, value)
    return event


EVENTS = [
    _e(1, secretsight__category="SECRET", secret__operation="LIST", user__id="u",
       user__roles=["default"]),
    _e(2, secretsight__category="secret", secret__operation="list", user__id="u",
       user__roles=["Admin"]),
    _e(3, secretsight__category="secret", secret__operation="list"),  # no user: `not` keeps it
    _e(4, secretsight__category="secret", secret__operation="read", source__ip="172.31.9.9",
       user__id="u"),
    _e(5, secretsight__category="secret", secret__operation="read", source__ip="172.32.0.1",
       user__id="u", user_agent__original="CURL/8.1"),
    _e(6, vault__path="auth/token/create/ops", vault__created_token__ttl=86401),
    _e(7, vault__path="AUTH/TOKEN/CREATE", vault__created_token__ttl="90000"),  # not a long
    _e(8, event__dataset="kubernetes.audit", secretsight__category="secret",
       secret__operation="list", secret__path="*", kubernetes__verb="list",
       user__id="system:serviceaccount:ci:x"),
    _e(9, event__dataset="kubernetes.audit", secretsight__category="secret",
       secret__operation="list", secret__path="other", kubernetes__object_ref__namespace="KUBE-SYSTEM",
       user__id="system:node:n1"),
    _e(10, aws__logging_disabled=True),
    _e(11, aws__resource_policy_public=False),
    _e(12, user__roles=["ROOT"], user__id="ÄDMIN"),
    _e(13, secretsight__category="secret", secret__operation="read", user__id="Ünïcode",
       vault__error="1 error: PERMISSION DENIED", event__outcome="failure"),
    _e(14, event__dataset="kubernetes.audit", secretsight__category="policy",
       kubernetes__rbac_secret_verbs=["*"]),
    _e(15, event__dataset="kubernetes.audit", secretsight__category="policy",
       kubernetes__rbac_secret_verbs="get"),
    _e(16, event__dataset="kubernetes.audit", secretsight__category="secret",
       secret__operation="read", event__outcome="failure", kubernetes__response_code=403,
       user__id="u"),
    # the same values as other types (the classifier memoizes tests per value: 1 == True)
    _e(17, user__roles="root", user__id=1, source__ip=["172.32.0.1"],
       secretsight__category="secret", secret__operation="read"),
    _e(18, user__roles=["root", 1], user__id=True, vault__path="auth/token/create/x",
       vault__created_token__ttl=True),
    _e(19, user__roles=[["root"]], user__id="1", vault__path=1, event__outcome=["failure"]),
    _e(20, vault__path="auth/token/create/ops", vault__created_token__ttl="86401"),
    _e(21, vault__path="auth/token/create/ops", vault__created_token__ttl=86401.0),
    _e(22, vault__path="auth/token/create/ops", vault__created_token__ttl=86401),
    # a dict where a value is: no value (flatten walks into it), also on a memo hit
    _e(23, secretsight__category="secret", secret__operation="read", user__id="u",
       source__ip="172.32.0.1"),
    _e(24, secretsight__category="secret", secret__operation="read", user__id={"id": "u"},
       source__ip={"ip": "172.32.0.1"}, user__roles={"x": ["root"]}),
    _e(25, secretsight__category={"c": "secret"}, secret__operation="list", user__id="u"),
]


@pytest.fixture(scope="module")
def both() -> tuple[dict[str, set[str]], StreamRules]:
    config = Config()
    rules = load_rules(config=config)
    with Engine(config) as engine:
        engine.load(copy.deepcopy(EVENTS))
        sql = engine.matches(rules)
    return sql, StreamRules(config, rules)


def test_every_rule_compiles_for_the_stream(both: tuple[dict[str, set[str]], StreamRules]) -> None:
    _, stream = both
    assert stream.skipped == []
    assert {name for name, _ in stream.bases} <= set(both[0])




def test_predicates_match_the_engine(both: tuple[dict[str, set[str]], StreamRules]) -> None:
    sql, stream = both
    problems = []
    for name, pred in stream.bases:
        got = set()
        for e in EVENTS:
            flat = flatten(e, {})
            if pred(flat, Folded(flat)):
                got.add(e["event"]["id"])
        if got != sql[name]:
            problems.append(f"{name}: stream {sorted(got)} engine {sorted(sql[name])}")
    assert not problems, "\n".join(problems)
    assert any(sql.values()), "the events exercise the rules"


def _dotted(event: dict[str, Any]) -> dict[str, Any]:
    """The same event with its fields given flat (`{"secret.path": ...}`), as an input may."""
    return flatten(event, {})


def test_the_classifier_matches_the_engine(both: tuple[dict[str, set[str]], StreamRules]) -> None:
    """The one generated function (classify.py) gives each rule's answer, the evidence row
    and the group keys the per-rule predicates give, on nested events (its own path) and
    on the same events given flat (its exact fallback)."""
    sql, stream = both
    classify = stream.classifier()
    problems = []
    for e in EVENTS:
        fast = classify.fast(e)
        assert fast is not None, "a nested event takes the generated function"
        assert classify.fast(_dotted(e)) is None, "a dotted key takes the exact fallback"
        for got in (fast, classify(_dotted(e)), classify.slow(e)):
            if got != fast:
                problems.append(f"{e['event']['id']}: {got} != {fast}")
        mask = fast[0]
        for slot, (name, _) in enumerate(stream.bases):
            if bool(mask >> slot & 1) != (e["event"]["id"] in sql[name]):
                problems.append(f"{name} on {e['event']['id']}: classifier {bool(mask >> slot & 1)}")
    assert not problems, "\n".join(problems)


def test_only_dotted_keys_that_make_a_read_field_take_the_fallback(
        both: tuple[dict[str, set[str]], StreamRules]) -> None:
    """A dotted key that flatten would turn into a field the rules read (at the top, or
    under `vault`: `created_token.ttl`) takes the exact fallback, and changes the answer
    here; one that makes no such field (`x.y`, `user.a.b`) does not, and changes nothing."""
    _, stream = both
    classify = stream.classifier()
    token = _e(30, vault__path="auth/token/create/ops", vault__created_token__ttl=60)
    for extra in ({"x.y": 1}, {"user": {"id": "u", "a.b": "c"}}, {"vault.x": {"y": 1}}):
        e = {**token, **extra} if "user" not in extra else {**token, "user": extra["user"]}
        fast = classify.fast(e)
        assert fast is not None and fast == classify.slow(e), extra
    longer = {**token, "vault": {**token["vault"], "created_token.ttl": 86401}}
    flat_ttl = {**token, "vault.created_token.ttl": 86401}
    for e in (longer, flat_ttl):
        assert classify.fast(e) is None
        assert classify(e) == classify.slow(e) != classify.slow(token)


def test_guards_pass_every_event_the_engine_matches(
        both: tuple[dict[str, set[str]], StreamRules]) -> None:
    """A guard is a necessary condition: the stream skips a rule whose guard fails, so it must
    pass on every event the engine's SQL matches."""
    sql, stream = both
    by_id = {e["event"]["id"]: e for e in EVENTS}
    problems = []
    for (name, _), guard in zip(stream.bases, stream.guards, strict=True):
        for eid in sorted(sql[name]):
            flat = flatten(by_id[eid], {})
            if guard is not None and not (flat.get(guard[0]) is not None if guard[1] is None
                                          else Folded(flat)[guard[0]] in guard[1]):
                problems.append(f"{name}: guard {guard} refuses {eid}")
    assert not problems, "\n".join(problems)
    assert sum(g is not None for g in stream.guards) > len(stream.guards) // 2


@pytest.mark.parametrize(("detection", "guard"), [
    ("sel: {event.dataset: Vault.Audit, secret.operation: read}\n    condition: sel",
     ("event.dataset", frozenset({"vault.audit"}))),
    ("a: {event.dataset: vault.audit}\n    b: {event.dataset: aws.cloudtrail}\n"
     "    condition: a or b", ("event.dataset", frozenset({"vault.audit", "aws.cloudtrail"}))),
    ("a: {event.dataset: vault.audit}\n    b: {secret.path: x}\n    condition: a or b", None),
    ("a: {event.dataset: vault.audit}\n    condition: not a", None),
    ("a: {secret.path|startswith: secret/}\n    b: {event.action: read}\n"
     "    condition: a and not b", ("secret.path", None)),
    ("a: {secret.path: null}\n    condition: a", None),
])
def test_guard_is_read_off_the_condition(detection: str,
                                         guard: tuple[str, frozenset[str] | None] | None) -> None:
    rule = SigmaRule.from_yaml(f"""
title: t
logsource: {{product: vault}}
detection:
    {detection}
""")
    assert guard_of(rule) == guard


def test_a_rule_that_cannot_stream_is_named() -> None:
    rules = SigmaCollection.from_yaml("""
title: regex rule
name: regex_rule
anomaly: suspicious_user_agent
logsource: {product: secretsight}
detection:
  sel:
    user_agent.original|re: '^curl'
  condition: sel
level: medium
""")
    stream = StreamRules(Config(), rules)
    assert stream.streamed == []
    assert [name for name, _ in stream.skipped] == ["regex_rule"]


def test_evidence_columns_and_sample_are_the_engines() -> None:
    from secretsight.engine import evaluate
    from secretsight.stream import evidence, rules

    assert rules.EVIDENCE_COLUMNS == evaluate._EVIDENCE_COLUMNS
    assert evidence.SAMPLE == evaluate._SAMPLE


@pytest.mark.parametrize("memo", [1, 3, 4096])
def test_the_classifier_memo_keeps_every_answer(
        both: tuple[dict[str, set[str]], StreamRules], memo: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each field's tests (and the mask from them) are memoized per value: any order, any
    repetition, a memo cleared when full (`memo` values) gives the per-rule predicates'
    answer, with values equal in Python but not to the engine (1, True, "1"; a list and its
    element) and on events given flat."""
    from secretsight.stream import classify as module

    monkeypatch.setattr(module, "MEMO", memo)
    sql, stream = both
    fresh = module.Classifier(stream.detections, [p for _, p in stream.bases], stream.guards,
                              stream.classifier().row_fields, stream.classifier().key_fields)
    order = EVENTS + EVENTS[::-1] + EVENTS[::2] + [_dotted(e) for e in EVENTS] + EVENTS
    problems = []
    for e in order:
        got, want = fresh(e), fresh.slow(e)
        if got != want:
            problems.append(f"{e.get('event', {}).get('id', e.get('event.id'))}: {got} != {want}")
    for e in EVENTS:
        mask = fresh(e)[0]
        for slot, (name, _) in enumerate(stream.bases):
            if bool(mask >> slot & 1) != (e["event"]["id"] in sql[name]):
                problems.append(f"{name} on {e['event']['id']}: {bool(mask >> slot & 1)}")
    assert not problems, "\n".join(problems)
