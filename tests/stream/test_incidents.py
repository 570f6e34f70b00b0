"""Incidents: findings grouped per (anomaly, user.id, episode), stable ids, updates as
revisions, and a store that remembers what `scan` reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from secretsight.cli import cli
from secretsight.config import Config
from secretsight.detect import open_store
from secretsight.detect.state import StateCache
from secretsight.findings import Finding
from secretsight.incidents import IncidentTracker, group, report
from secretsight.scenarios import generate


def _f(start: str, end: str | None = None, *, rule: str = "first_path_access",
       user: str = "u1", path: str | None = None, anomaly: str = "first_path_access",
       severity: str = "medium") -> Finding:
    return Finding(anomaly=anomaly, rule=f"detector/{rule}", rule_name=rule, title=rule,
                   severity=severity, user_id=user, start=start, end=end or start,
                   evidence={"path": path} if path else {})


def _slow_harvest(n: int) -> list[Finding]:
    """One new path every 10 minutes: n first_path_access findings, one incident."""
    return [_f(f"2026-03-01T{10 + m // 60:02d}:{m % 60:02d}:00Z", path=f"secret/p{m}")
            for m in range(0, 10 * n, 10)]


def test_a_slow_harvest_is_one_incident_with_its_paths() -> None:
    [inc] = group(_slow_harvest(6), window=3600)
    assert inc.members == 6
    f = inc.finding()
    assert f.evidence["findings"] == 6
    assert f.evidence["paths"] == sorted(f"secret/p{m}" for m in range(0, 60, 10))
    assert (f.start, f.end) == ("2026-03-01T10:00:00Z", "2026-03-01T10:50:00Z")
    assert f.to_json()["incident"] == {"id": inc.id, "revision": 1}


def test_episodes_split_after_the_grouping_window() -> None:
    findings = [_f("2026-03-01T10:00:00Z"), _f("2026-03-01T10:20:00Z"),
                _f("2026-03-01T12:00:00Z"), _f("2026-03-01T10:10:00Z", user="u2")]
    eps = group(findings, window=1800)
    assert sorted((e.user_id, e.members) for e in eps) == [("u1", 1), ("u1", 2), ("u2", 1)]
    assert len({e.id for e in eps}) == 3
    assert len(group(findings, window=7200)) == 2  # a wider window joins u1's episodes


def test_other_rules_of_one_anomaly_join_the_incident_and_raise_its_severity() -> None:
    findings = [_f("2026-03-01T10:00:00Z", rule="a", anomaly="audit_disabled"),
                _f("2026-03-01T10:05:00Z", rule="b", anomaly="audit_disabled",
                   severity="critical")]
    [inc] = group(findings, window=3600)
    f = inc.finding()
    assert f.evidence["rules"] == {"a": 1, "b": 1}
    assert (f.rule_name, f.severity) == ("a", "critical")


def test_the_id_is_stable_and_independent_of_order() -> None:
    findings = _slow_harvest(5)
    ids = {group(order, window=3600)[0].id for order in (findings, findings[::-1])}
    assert len(ids) == 1


def test_watch_emits_the_incident_then_updates_with_the_same_id() -> None:
    tracker = IncidentTracker(window=3600, delay=0)
    out: list[Finding] = []
    for f in _slow_harvest(9):
        out.extend(tracker.add(f))
    assert [r.revision for r in out] == [1, 2, 3, 4]  # at 1, 2, 4 and 8 members
    end = tracker.advance(bound=1e12, open_since=float("inf"))
    assert [r.revision for r in end] == [5]  # closed with its 9th member
    assert {r.incident for r in out + end} == {group(_slow_harvest(9), 3600)[0].id}
    final = end[0].to_json()
    batch = group(_slow_harvest(9), 3600)[0].finding().to_json()
    assert {**final, "incident": None} == {**batch, "incident": None}


def test_an_open_rule_burst_keeps_the_incident_open() -> None:
    tracker = IncidentTracker(window=60, delay=0)
    tracker.add(_f("2026-03-01T10:00:00Z"))
    late_start = 1772359230.0  # 2026-03-01T10:00:30Z: an open burst that began inside it
    assert tracker.advance(bound=1e12, open_since=late_start) == []
    assert tracker.open


def _scan(files: list[str], store: str | None) -> list[dict[str, Any]]:
    args = ["scan", *files, "--format", "json"] + (["--store", store] if store else [])
    result = CliRunner().invoke(cli, args)
    assert result.exit_code in (0, 1), result.output
    return [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]


@pytest.fixture(scope="module")
def insider(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    generated = generate("vault_insider", tmp_path_factory.mktemp("insider"))
    return [str(f) for f in generated.files]


def test_scan_reports_k_incidents_for_k_incidents(insider: list[str]) -> None:
    reports = _scan(insider, None)
    # vault_insider: one insider reading three paths it never read (3 findings, 1 incident)
    assert [(r["anomaly"], r["evidence"]["findings"]) for r in reports] == [
        ("first_path_access", 3)]
    assert _scan(insider, None) == reports, "same input, same ids"


def test_reusing_a_store_never_re_reports(insider: list[str], tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/state.db"
    first = _scan(insider, store)
    assert first and all(r["incident"]["revision"] == 1 for r in first)
    assert _scan(insider, store) == [], "nothing new: nothing reported"


def test_an_incident_that_grew_is_reported_again_as_its_next_revision(tmp_path: Path) -> None:
    findings = _slow_harvest(3)
    store = open_store(f"sqlite:///{tmp_path}/state.db")
    cache = StateCache(store, namespace="default", max_paths=10)
    [first] = report(findings, 3600, cache)
    cache.flush()
    assert report(findings, 3600, cache) == []
    [update] = report([*findings, _f("2026-03-01T10:35:00Z", path="secret/new")], 3600, cache)
    assert (update.incident, update.revision) == (first.incident, 2)
    assert update.evidence["findings"] == 4
    store.close()


def test_config_example_documents_the_stream_keys() -> None:
    text = (Path(__file__).resolve().parents[2] / "config" / "secretsight.example.yml").read_text()
    assert "incident_window: 1h" in text and "lateness: 30s" in text
    assert Config().stream.incident_window.total_seconds() == 3600
