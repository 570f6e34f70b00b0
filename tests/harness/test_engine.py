"""The embedded engine on inline rules: SQLite semantics that the rule pack relies on."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from sigma.collection import SigmaCollection
from support.event_builders import put_field

from secretsight.config import Config
from secretsight.engine import PLAIN_BURST_GAP, Engine, dedupe

T0 = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)

HEADER = """
title: {title}
id: {id}
name: {name}
anomaly: {anomaly}
level: high
"""

PLAIN = HEADER + """
logsource: {{product: secretsight, service: vault}}
detection:
{detection}
"""


def rule(name: str, detection: str, anomaly: str = "root_token", extra: str = "") -> str:
    ident = f"00000000-0000-4000-8000-{zlib.crc32(name.encode()):012d}"
    body = PLAIN.format(title=name, id=ident, name=name, anomaly=anomaly, detection=detection)
    return body + extra


def ev(seconds: float, user: str = "tok_a", path: str = "secret/app/db", **extra) -> dict:
    stamp = (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    event = {
        "@timestamp": stamp,
        "event": {"dataset": "vault.audit", "action": "read", "outcome": "success",
                  "id": f"{user}-{seconds}-{path}"},
        "secretsight": {"category": "secret"},
        "secret": {"operation": "read", "path": path},
        "user": {"id": user, "name": user},
        "source": {"ip": "10.0.1.5"},
    }
    for dotted, value in extra.items():
        put_field(event, dotted, value)
    return event


def run(rules: str, events: list[dict]) -> tuple[list, Engine]:
    engine = Engine()
    engine.load(events)
    return engine.run(SigmaCollection.from_yaml(rules)), engine


ROOT = rule("root_policy", "  sel:\n    user.roles: root\n  condition: sel")


@pytest.mark.parametrize(
    ("roles", "fires"),
    [(["default", "root"], True), (["ROOT"], True), (["rooted"], False), (["default"], False)],
    ids=["element_of_list", "case_insensitive", "no_substring", "absent"],
)
def test_list_field_matches_any_element(roles: list[str], fires: bool) -> None:
    findings, engine = run(ROOT, [ev(0, user__roles=roles)])
    assert not engine.errors
    assert [f.rule_name for f in findings] == (["root_policy"] if fires else [])


# JSON cells a list column may hold: json.dumps output (table.py) and other valid JSON
CELLS = [None, "[]", '["root"]', '["ROOT"]', '["rooted"]', '["default", "root"]', '[1, "root"]',
         '["ro\\"ot"]', '["\\u0072oot"]', '["r\\u00f6ot"]', '"root"', '{"root": 1}',
         '[["root"]]', '["x root"]', '["root", "\\n"]', '["admin"]']


@pytest.mark.parametrize("value", ["root", "ro%t", "Root_1"])
def test_list_field_guard_has_the_value_of_the_element_test(value: str) -> None:
    """A list field's element test skips json_each where the cell cannot hold the value
    (backend.py): on every cell the guarded test has the value of the bare `EXISTS`,
    JSON escapes included (a backslash anywhere: json_each decides)."""
    import sqlite3

    from secretsight.engine.evaluate import compile_ruleset

    compiled = compile_ruleset(SigmaCollection.from_yaml(
        rule("roles", f"  sel:\n    user.roles: '{value}'\n  condition: sel")), Config())
    where = compiled.predicates["roles"]
    assert "THEN EXISTS" in where and "json_each" in where
    bare = "EXISTS" + where.split("THEN EXISTS", 1)[1].rsplit(" ELSE 0 END", 1)[0]
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE events (`user.roles` TEXT COLLATE NOCASE)")
    cells = CELLS + [json.dumps([value]), json.dumps([value.upper()]), json.dumps(["x" + value])]
    conn.executemany("INSERT INTO events VALUES (?)", [(c,) for c in cells])
    got = conn.execute(f"SELECT ({where}), ({bare}) FROM events").fetchall()
    assert [g for g, _ in got] == [b for _, b in got]
    assert sum(b for _, b in got) >= 2  # the test can fire: the value itself, upper-cased


@pytest.mark.parametrize(
    ("user", "fires"),
    [("svc_a%b", True), ("SVC_A%B", True), ("svcXa%b", False), ("svc_aXb", False),
     ("svc_a%bc", False)],
    ids=["same", "case_insensitive", "underscore_is_no_wildcard", "percent_is_no_wildcard",
         "longer"],
)
def test_value_with_like_metacharacters_is_compared_as_is(user: str, fires: bool) -> None:
    """A value without wildcards that holds `_` or `%` is an equality (NOCASE), as its LIKE
    form was: neither character matches another."""
    findings, engine = run(rule("svc", "  sel:\n    user.id: 'svc_a%b'\n  condition: sel"),
                           [ev(0, user=user)])
    assert not engine.errors
    assert bool(findings) is fires


EXTERNAL = rule(
    "external_read",
    "  sel:\n    secret.operation: read\n  internal:\n    source.ip|cidr:\n"
    "      - 10.0.0.0/8\n      - 172.16.0.0/12\n  condition: sel and not internal",
)


@pytest.mark.parametrize(
    ("ip", "fires"),
    [("10.0.1.47", False), ("172.31.9.9", False), ("172.32.0.1", True), ("185.234.219.12", True)],
    ids=["ten_slash_8", "in_172_16_slash_12", "outside_172_16_slash_12", "public"],
)
def test_cidr_filter(ip: str, fires: bool) -> None:
    findings, _ = run(EXTERNAL, [ev(0, source__ip=ip)])
    assert bool(findings) is fires


AGENTS = "      - '*curl*'\n      - '*wget*'\n      - '*nmap*'\n      - '*kali*'\n"


@pytest.mark.parametrize(
    ("detection", "agent", "fires"),
    [
        ("  sel:\n    user_agent.original|contains:\n" + AGENTS.replace("*", "")
         + "  condition: sel", "x-nmap-y", True),
        ("  sel:\n    user_agent.original:\n" + AGENTS + "  condition: sel", None, False),
        ("  sel:\n    secret.operation: read\n  tools:\n    user_agent.original:\n" + AGENTS
         + "  condition: sel and not tools", None, True),
        ("  sel:\n    secret.operation: read\n  tools:\n    user_agent.original:\n" + AGENTS
         + "  condition: sel and not tools", "Kali Linux", False),
        ("  sel:\n    user_agent.original:\n      - null\n" + AGENTS + "  condition: sel",
         None, True),
    ],
    ids=["contains", "absent", "absent_under_not", "present_under_not", "null_among_likes"],
)
def test_or_of_likes_on_one_field(detection: str, agent: str | None, fires: bool) -> None:
    """An OR of LIKEs on one field is skipped when the field is NULL (backend.py): same truth,
    absent or not, under `not` too, and not applied when a member is true on NULL."""
    extra = {"user_agent__original": agent} if agent else {}
    findings, engine = run(rule("agents", detection), [ev(0, **extra)])
    assert not engine.errors
    assert bool(findings) is fires


def test_absent_field_under_not_is_false_not_null() -> None:
    # Sigma: a filter on a field the event lacks does not match, so `sel and not filter` fires.
    findings, _ = run(EXTERNAL, [{k: v for k, v in ev(0).items() if k != "source"}])
    assert len(findings) == 1


def test_plain_matches_grouped_per_identity_and_burst() -> None:
    events = [ev(0), ev(60), ev(120), ev(120 + PLAIN_BURST_GAP + 1), ev(5, user="tok_b")]
    findings, _ = run(rule("reads", "  sel:\n    secret.operation: read\n  condition: sel"), events)
    got = sorted((f.user_id, f.evidence["events"]) for f in findings)
    assert got == [("tok_a", 1), ("tok_a", 3), ("tok_b", 1)]


BULK = rule("reads_base", "  sel:\n    secret.operation: read\n  condition: sel", "bulk_read") + """---
title: bulk
id: 11111111-2222-4333-8444-555555555555
name: bulk
anomaly: bulk_read
level: high
correlation:
  type: event_count
  rules: [reads_base]
  group-by: [user.id]
  timespan: 5m
  condition: {gt: 50}
"""


@pytest.mark.parametrize(
    ("count", "spacing", "offset", "expected"),
    [(51, 5.0, 0, 1), (50, 5.0, 0, 0), (51, 5.0, 200, 1), (51, 6.1, 0, 0), (51, 6.0, 0, 1)],
    ids=["51_in_255s", "50_in_250s", "51_straddling_a_clock_bucket", "51_in_305s",
         "51_in_exactly_300s"],
)
def test_correlation_uses_a_true_sliding_window(count, spacing, offset, expected) -> None:
    # Offset 200 s puts the burst across a 5-minute clock boundary: tumbling buckets would
    # split it 20/31 and miss it; the backend's RANGE window must not.
    events = [ev(offset + i * spacing, path=f"secret/p{i}") for i in range(count)]
    findings, engine = run(BULK, events)
    assert not engine.errors
    assert len(findings) == expected


PATHS = rule("path_reads", "  sel:\n    secret.operation: read\n  condition: sel",
             "path_diversity") + """---
title: paths
id: 11111111-2222-4333-8444-555555555557
name: paths
anomaly: path_diversity
level: high
correlation:
  type: value_count
  rules: [path_reads]
  group-by: [user.id]
  timespan: 5m
  condition: {field: secret.path, gte: 3}
"""


@pytest.mark.parametrize(
    ("reads", "expected"),
    [
        # 3 distinct paths in 5 minutes: fires
        ([("tok_a", 0, "secret/a"), ("tok_a", 10, "secret/B"), ("tok_a", 20, "secret/c")], 1),
        # the same path in two cases is one value; 4 paths in all, but 2 per identity
        ([("tok_a", 0, "secret/a"), ("tok_a", 10, "secret/A"), ("tok_a", 20, "secret/b"),
          ("tok_b", 0, "secret/c"), ("tok_b", 10, "secret/d")], 0),
        # 3 distinct paths by one identity, but not within 5 minutes
        ([("tok_a", 0, "secret/a"), ("tok_a", 200, "secret/b"), ("tok_a", 400, "secret/c")], 0),
    ],
    ids=["three_paths", "two_per_identity", "spread_out"],
)
def test_value_count_counts_distinct_values_per_group(reads, expected) -> None:
    findings, engine = run(PATHS, [ev(t, user=u, path=p) for u, t, p in reads])
    assert not engine.errors
    assert len(findings) == expected


def test_one_finding_per_burst_with_original_case_identity() -> None:
    burst = [ev(i, user="tok_A1b2c3", path=f"secret/p{i % 47}") for i in range(0, 300, 1)]
    later = [ev(7200 + i, user="tok_A1b2c3") for i in range(60)]
    findings, _ = run(BULK, burst + later)
    assert [(f.user_id, f.evidence["events"]) for f in findings] == [
        ("tok_A1b2c3", 300), ("tok_A1b2c3", 60)]
    assert findings[0].evidence["distinct_paths"] == 47
    assert findings[0].start == burst[0]["@timestamp"]
    assert findings[0].end == burst[-1]["@timestamp"]


def test_embedded_false_rule_is_skipped() -> None:
    text = rule("target_only", "  sel:\n    secret.operation: read\n  condition: sel",
                extra="embedded: false\n")
    findings, _ = run(text, [ev(0)])
    assert findings == []


def test_bad_anomaly_is_an_error_not_a_crash() -> None:
    text = rule("bad", "  sel:\n    secret.operation: read\n  condition: sel", anomaly="nonsense")
    findings, engine = run(text + "---\n" + ROOT, [ev(0, user__roles=["root"])])
    assert [f.rule_name for f in findings] == ["root_policy"]
    assert len(engine.errors) == 1 and "nonsense" in str(engine.errors[0])


def test_a_rule_sqlite_rejects_fails_alone() -> None:
    """Plain rules share one scan and correlations one table of base-rule matches: a predicate
    SQLite rejects (no REGEXP function here) must fail only the rules that use it."""
    bad_plain = rule("bad_re", "  sel:\n    secret.path|re: '^secret/p'\n  condition: sel")
    bad_base = rule("bad_base", "  sel:\n    secret.path|re: '^secret/'\n  condition: sel",
                    "bulk_read")
    bad_corr = BULK.split("---\n", 1)[1].replace("name: bulk", "name: bad_bulk").replace(
        "[reads_base]", "[bad_base]").replace("555555555555", "555555555556")
    burst = [ev(i, user="tok_A1b2c3", user__roles=["root"]) for i in range(60)]
    findings, engine = run("---\n".join([BULK, ROOT, bad_plain, bad_base, bad_corr]), burst)
    assert sorted({f.rule_name for f in findings}) == ["bulk", "root_policy"]
    assert sorted(str(e) for e in engine.errors) == [
        "rule 'bad_bulk': SQLite: no such function: REGEXP",
        "rule 'bad_re': SQLite: no such function: REGEXP",
    ]


BY_SOURCE = rule("ip_reads", "  sel:\n    secret.operation: read\n    source.ip|cidr: 10.0.0.0/8"
                 "\n  condition: sel", "bulk_read") + """---
title: by_source
id: 11111111-2222-4333-8444-555555555558
name: by_source
anomaly: bulk_read
level: high
correlation:
  type: event_count
  rules: [ip_reads]
  group-by: [source.ip]
  timespan: 5m
  condition: {gt: 50}
"""


def _lane_events() -> list[dict]:
    burst = [ev(i, user="tok_A1b2c3", path=f"secret/p{i % 7}", user__roles=["root"])
             for i in range(120)]
    quiet = [ev(5000 + i * 60, user=f"tok_{i % 3}", source__ip=f"10.0.2.{i % 3}")
             for i in range(90)]
    return burst + quiet


def _findings_and_errors(tmp_path, name: str | None) -> tuple[list[str], list[str], Engine]:
    bad_plain = rule("bad_re", "  sel:\n    secret.path|re: '^secret/p'\n  condition: sel")
    engine = Engine(database=str(tmp_path / name) if name else ":memory:")
    engine.load(_lane_events())
    found = engine.run(SigmaCollection.from_yaml("---\n".join(
        [BULK, ROOT, bad_plain, PATHS, BY_SOURCE])))
    return ([json.dumps(f.to_json(), sort_keys=True) for f in found],
            [str(e) for e in engine.errors], engine)


def test_rules_of_a_database_file_run_in_two_lanes_with_the_same_findings(tmp_path) -> None:
    """On a database file the rules are split in two lanes, one in a forked process (see
    `evaluate._lanes`): findings and errors are those of one lane, in the same order."""
    one, one_errors, _ = _findings_and_errors(tmp_path, None)
    two, two_errors, engine = _findings_and_errors(tmp_path, "events.db")
    assert any(key.endswith("(lane 2)") for key in engine.timings)  # really two lanes
    assert {json.loads(f)["rule_name"] for f in one} == {"bulk", "root_policy", "paths",
                                                          "by_source"}
    assert two == one
    assert two_errors == one_errors == ["rule 'bad_re': SQLite: no such function: REGEXP"]


def test_a_lane_whose_process_fails_runs_in_the_caller(tmp_path, monkeypatch) -> None:
    import os

    from secretsight.engine import evaluate

    one, _, _ = _findings_and_errors(tmp_path, None)
    monkeypatch.setattr(evaluate, "_lane_process", lambda *args: os._exit(3))
    two, errors, engine = _findings_and_errors(tmp_path, "events.db")
    assert not any(key.endswith("(lane 2)") for key in engine.timings)
    assert two == one
    assert errors == ["rule 'bad_re': SQLite: no such function: REGEXP"]


def test_dedupe_keeps_the_response_entry() -> None:
    request = ev(0, vault__entry_type="request")
    response = ev(0, vault__entry_type="response")
    response["event"]["id"] = request["event"]["id"]
    kept, folded = dedupe([request, response, ev(1)])
    assert folded == 1
    assert [e.get("vault", {}).get("entry_type") for e in kept] == ["response", None]


def test_row_cells_from_nested_and_flat_keys() -> None:
    """One walk of the event gives each schema column its cell: nested and dotted-flat keys
    alike, lists as JSON (cached per distinct value, never shared between different ones),
    longs only when integers, unknown fields and None left out."""
    from secretsight.engine.table import RowBuilder

    build = RowBuilder().cells
    nested = build({"@timestamp": "2026-03-03T00:00:00Z",
                    "user": {"id": "tok_a", "roles": ["default", "ops"], "unknown": "x"},
                    "source": {"port": "8200", "ip": None},
                    "vault": {"token_ttl": 3600, "token_policies": ["ops", "default"]},
                    "aws": {"logging_disabled": 0}})
    assert nested == {"@timestamp": "2026-03-03T00:00:00Z", "user.id": "tok_a",
                      "user.roles": '["default", "ops"]', "vault.token_ttl": 3600,
                      "vault.token_policies": '["ops", "default"]',
                      "aws.logging_disabled": "false"}
    flat = build({"@timestamp": "2026-03-03T00:00:00Z", "user.id": "tok_a",
                  "user.roles": ["default", "ops"], "user": {"name": 7}})
    assert flat == {"@timestamp": "2026-03-03T00:00:00Z", "user.id": "tok_a",
                    "user.roles": '["default", "ops"]', "user.name": "7"}
    assert build({"user": {"roles": "solo"}}) == {"user.roles": '["solo"]'}


def test_a_long_beyond_64_bits_given_as_a_dict_is_stored_as_null() -> None:
    """The normalizers dead-letter such a value; an event another producer gives as a dict is
    loaded with the field NULL instead of stopping the load (sqlite3's OverflowError)."""
    engine = Engine()
    events = [ev(i, vault__token_ttl=ttl, source__port=port) for i, (ttl, port) in
              enumerate([(2**63, -(2**63) - 1), (2**63 - 1, -(2**63)), (2**64 + 5, 443)])]
    assert engine.load(events) == 3
    stored = engine.conn.execute(
        "SELECT `vault.token_ttl`, `source.port` FROM events ORDER BY _id").fetchall()
    assert stored == [(None, None), (2**63 - 1, -(2**63)), (None, 443)]


def _walked(builder: object, event: dict) -> dict:
    """The generic, uncompiled walk's cells (what every compiled walk must give)."""
    out: dict = {}
    if builder._walk(event, builder._root, "", out):  # type: ignore[attr-defined]
        return {k: v for k, v in out.items() if v is not None}
    return out


_ODD_EVENTS = [
    {},
    {"@timestamp": None, "event": {"id": None, "dataset": 5}, "user": "not an object"},
    {"user": {"id": {"nested": 1}, "roles": None}, "source": {"port": True, "ip": 10}},
    {"vault": {"auth": {"metadata": {"role": "r", "email": None}}, "token_ttl": "x"}},
    {"secret.path": "kv/a", "user.roles": ["a", ["b"]], "user": {"name.first": "x"}},
    {"aws": {"logging_disabled": 0, "secret_ids": "one"}, "event": {}, "unknown": {"a": 1}},
    {"user": {"id": "a", "id2": "b"}, "user.id": "flat wins later"},
]


def test_compiled_row_walks_give_the_generic_walks_cells() -> None:
    """Each key order gets its own compiled walk (engine.table.RowBuilder): the same cells as
    the generic walk on odd events (None, wrong types, objects where leaves belong, dotted
    keys, fields outside the schema), on the same keys in another order, and past the number
    of key orders compiled per node (the generic walk then)."""
    from secretsight.engine import table

    builder = table.RowBuilder()
    for event in _ODD_EVENTS + [dict(reversed(list(e.items()))) for e in _ODD_EVENTS]:
        assert builder.cells(event) == _walked(builder, event)
        assert list(builder.cells(event)) == list(_walked(builder, event))  # same key order
    many = [{"user": {f"x{n}": n, "id": f"u{n}"}} for n in range(table._SHAPES_MAX + 5)]
    for event in many:
        assert builder.cells(event) == {"user.id": event["user"]["id"]}
    odd_key = {1: "a non-string key: never from JSON", "user": {"id": "u"}}
    with pytest.raises(TypeError):  # as the generic walk does
        builder.cells(odd_key)
    with pytest.raises(TypeError):
        _walked(builder, odd_key)


def test_compiled_row_walks_on_every_scenario() -> None:
    """Every normalized event of every generated scenario: compiled cells == generic cells."""
    import tempfile
    from pathlib import Path

    from secretsight.engine import table
    from secretsight.normalize import iter_files
    from secretsight.scenarios import SCENARIOS, generate

    builder = table.RowBuilder()
    root = Path(tempfile.mkdtemp(prefix="rows-"))
    checked = 0
    for name in sorted(SCENARIOS):
        for event in iter_files(generate(name, root / name).files):
            assert builder.cells(event) == _walked(builder, event), name
            checked += 1
    assert checked > 10_000


def test_one_job_evaluates_every_rule_in_this_process(tmp_path) -> None:
    """`scan --jobs 1` forks nothing: a database file's rules stay in one lane."""
    engine = Engine(database=str(tmp_path / "one.db"))
    engine.load(_lane_events())
    rules = SigmaCollection.from_yaml("---\n".join([BULK, ROOT, PATHS, BY_SOURCE]))
    one = [json.dumps(f.to_json(), sort_keys=True) for f in engine.run(rules, jobs=1)]
    assert not any(key.endswith("(lane 2)") for key in engine.timings)
    two = [json.dumps(f.to_json(), sort_keys=True) for f in engine.run(rules)]
    assert any(key.endswith("(lane 2)") for key in engine.timings)
    assert one == two and one


def test_lanes_are_sized_by_the_rows(tmp_path) -> None:
    """On a file, the two lanes are sized on a sample of the rows (`evaluate._sized_sets`):
    a correlation whose base rule matches every event outweighs one whose base rule matches
    none, which rule counts alone cannot tell; the findings stay those of one lane."""
    from secretsight.engine.evaluate import _Sample, _sized_sets, compile_ruleset

    none = BY_SOURCE.replace("source.ip|cidr: 10.0.0.0/8", "source.ip|cidr: 192.0.2.0/24")
    rules = "---\n".join([BULK, ROOT, none])
    engine = Engine(database=str(tmp_path / "sized.db"))
    engine.load(_lane_events())
    compiled = compile_ruleset(SigmaCollection.from_yaml(rules), Config())
    by_name = {r.meta.name: r for r in compiled.rules}
    sample = _Sample(engine.conn)
    try:
        assert sample.rows == len(_lane_events())  # fewer rows than a sample holds: all
        sizes = {members[0].meta.name: size for size, members in
                 _sized_sets([by_name["bulk"], by_name["by_source"]], sample)}
        counted = {members[0].meta.name: size for size, members in
                   _sized_sets([by_name["bulk"], by_name["by_source"]])}
    finally:
        sample.close()
    assert counted["bulk"] == counted["by_source"]
    assert sizes["bulk"] > 5 * sizes["by_source"]
    two = [json.dumps(f.to_json(), sort_keys=True) for f in engine.run(
        SigmaCollection.from_yaml(rules))]
    one = [json.dumps(f.to_json(), sort_keys=True) for f in engine.run(
        SigmaCollection.from_yaml(rules), jobs=1)]
    assert two == one and {json.loads(f)["rule_name"] for f in one} == {"bulk", "root_policy"}


def test_many_bursts_read_in_one_pass_give_the_per_burst_rows(monkeypatch) -> None:
    """From `evaluate._BATCH` bursts of one rule on, their events are read in one pass over
    the shared inputs: the same findings (events, evidence, order) as a read per burst."""
    from secretsight.engine import evaluate

    events = [ev(i + hour * 7200, user=user, path=f"secret/p{i % 9}")
              for hour, user in enumerate(["tok_a", "TOK_b", "tok_c", "tok_a"])
              for i in range(60)]
    events += [ev(50_000 + i * 400, user="tok_a") for i in range(20)]  # quiet reads, no burst
    rules = "---\n".join([BULK, PATHS])

    def findings() -> list[str]:
        found, engine = run(rules, events)
        assert not engine.errors
        return [json.dumps(f.to_json(), sort_keys=True) for f in found]

    batched = findings()
    monkeypatch.setattr(evaluate, "_BATCH", 10**9)
    assert findings() == batched
    assert sum(json.loads(f)["rule_name"] == "bulk" for f in batched) == 4
