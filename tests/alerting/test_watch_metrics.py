"""The metrics `watch` adds for the alerting rules (secretsight.watch.metrics): per-identity
window gauges (bounded to the top N), source continuity, commit failures and findings by
severity; the exposition passes `promtool check metrics`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from support.prometheus_tools import run, tool

from secretsight.alerting.settings import AlertingSettings
from secretsight.config import Config, CountWindow, PathDiversity, Thresholds
from secretsight.watch.metrics import BUCKET_SECONDS, Metrics

T0 = 1_700_000_000.0


def _series(text: str, family: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.startswith(family + "{"):
            labels, value = line[len(family):].rsplit(" ", 1)
            out[labels] = value
    return out


def test_window_gauges_count_reads_and_distinct_paths_in_the_window() -> None:
    m = Metrics(clock=lambda: T0 + 600)
    for i in range(40):  # 40 reads over 8 distinct paths within 100 s
        m.record_event("vault.audit", T0 + i * 2.5, True, "tok_A", f"secret/p{i % 8}")
    m.record_event("vault.audit", T0 + 50, True, "tok_B", "secret/one")
    text = m.render()
    assert _series(text, "secretsight_identity_window_reads") == {
        '{identity="tok_A"}': "40", '{identity="tok_B"}': "1"}
    assert _series(text, "secretsight_identity_window_distinct_paths") == {
        '{identity="tok_A"}': "8", '{identity="tok_B"}': "1"}
    # six minutes later (event time) tok_A's reads left the 5-minute window; tok_B read again
    m.record_event("vault.audit", T0 + 460, True, "tok_B", "secret/two")
    text = m.render()
    assert _series(text, "secretsight_identity_window_reads") == {'{identity="tok_B"}': "1"}
    assert "tok_A" not in m.window_activity  # pruned: memory follows the window


def test_windows_follow_the_config() -> None:
    config = Config(thresholds=Thresholds(
        bulk_read=CountWindow(count=50, window=timedelta(minutes=1)),
        path_diversity=PathDiversity(distinct_paths=10, reads=30, window=timedelta(minutes=10))))
    m = Metrics(config=config)
    m.record_event("vault.audit", T0, True, "tok_A", "secret/a")
    m.record_event("vault.audit", T0 + 200, True, "tok_A", "secret/b")
    text = m.render()
    # reads: only the last minute (+ one bucket); paths: both, within 10 minutes
    assert _series(text, "secretsight_identity_window_reads") == {'{identity="tok_A"}': "1"}
    assert _series(text, "secretsight_identity_window_distinct_paths") == {
        '{identity="tok_A"}': "2"}
    assert BUCKET_SECONDS <= 60


def test_only_the_top_identities_are_exported() -> None:
    m = Metrics(config=Config(alerting=AlertingSettings(metrics_top_identities=2)))
    for n, identity in enumerate(["a", "b", "c", "d"]):
        for i in range(n + 1):  # d reads most
            m.record_event("vault.audit", T0 + i, True, identity, "secret/x")
    for i in range(5):  # e reads few times but many paths
        m.record_event("vault.audit", T0 + 10, True, "e", f"secret/{i}")
    reads = _series(m.render(), "secretsight_identity_window_reads")
    # top 2 by reads (e: 5, d: 4) and top 2 by distinct paths (e: 5, then a..d: 1 -> a)
    assert set(reads) == {'{identity="a"}', '{identity="d"}', '{identity="e"}'}


def test_non_reads_and_anonymous_events_do_not_count() -> None:
    m = Metrics()
    m.record_event("vault.audit", T0, False, "tok_A", "secret/a")
    m.record_event("vault.audit", T0, True, None, "secret/a")
    assert _series(m.render(), "secretsight_identity_window_reads") == {}


def test_continuity_restarts_after_a_gap_longer_than_the_allowed_silence() -> None:
    m = Metrics()  # audit_gap_max_silence 60 s
    for i in range(11):
        m.record_event("vault.audit", T0 + i * 30, False, None)
    since = _series(m.render(), "secretsight_source_continuous_since_timestamp_seconds")
    assert since == {'{source="vault.audit"}': f"{T0:.3f}"}
    m.record_event("vault.audit", T0 + 300 + 61, False, None)  # 61 s after the last
    since = _series(m.render(), "secretsight_source_continuous_since_timestamp_seconds")
    assert since == {'{source="vault.audit"}': f"{T0 + 361:.3f}"}
    m.record_event("vault.audit", T0 + 100, False, None)  # a late event changes nothing
    assert _series(m.render(), "secretsight_last_event_timestamp_seconds") == {
        '{source="vault.audit"}': f"{T0 + 361:.3f}"}


def test_commit_failures_and_findings_by_severity() -> None:
    m = Metrics()
    m.count_commit_failure()
    m.count("findings_by_severity", ("bulk_read", "high"))
    text = m.render()
    assert "secretsight_state_commit_failures_total 1" in text.splitlines()
    assert _series(text, "secretsight_findings_by_severity_total") == {
        '{anomaly="bulk_read",severity="high"}': "1"}


@pytest.mark.prometheus_tools
def test_promtool_accepts_the_exposition() -> None:
    m = Metrics()
    m.record_event("vault.audit", T0, True, 'odd"id\\x', "secret/a")
    m.count("findings_by_severity", ("bulk_read", "high"))
    proc = run([tool("promtool"), "check", "metrics"], input=m.render())
    # promtool exits 0 and prints only lint hints it finds; counters must end in _total
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "error" not in (proc.stdout + proc.stderr).lower()


def _event(op: str, path: str, outcome: str = "success", uid: str = "tok_A") -> dict:
    return {"event": {"dataset": "kubernetes.audit", "outcome": outcome},
            "secret": {"operation": op, "path": path}, "user": {"id": uid}}


def test_observe_counts_what_the_detectors_count() -> None:
    """bulk_read's kinds (successful reads and lists) in the reads gauge; path_diversity's
    (successful reads of one concrete path) in the distinct-paths gauge."""
    m = Metrics()
    m.observe(_event("read", "prod/db"), T0)
    m.observe(_event("list", "prod/*"), T0 + 1)
    m.observe(_event("read", "prod/api", outcome="failure"), T0 + 2)
    m.observe(_event("write", "prod/db"), T0 + 3)
    m.observe(_event("read", "*"), T0 + 4)
    text = m.render()
    assert _series(text, "secretsight_identity_window_reads") == {'{identity="tok_A"}': "3"}
    assert _series(text, "secretsight_identity_window_distinct_paths") == {
        '{identity="tok_A"}': "1"}
    # the per-identity read counter keeps its meaning: read operations, whatever the outcome
    assert _series(text, "secretsight_identity_reads_total")['{identity="tok_A"}'] == "3"
