"""The generated Prometheus rules: promtool accepts them and its rule unit tests
(prometheus_rules.test.yml: input series as `watch` exports them) pass; the thresholds follow
the config; every alert carries team, severity, anomaly or component, and a runbook link."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from support.prometheus_tools import alerting_files, run, tool

from secretsight.alerting.prometheus import RULES_FILE, identity_filter
from secretsight.alerting.settings import AlertingSettings
from secretsight.config import Allowlists, Config, CountWindow, Stateful, Thresholds

HERE = Path(__file__).parent
UNIT_TESTS = HERE / "prometheus_rules.test.yml"


def _rules(config: Config | None = None) -> list[dict]:
    doc = yaml.safe_load(alerting_files(config)[RULES_FILE])
    return [r for g in doc["groups"] for r in g["rules"]]


def _write(tmp_path: Path, config: Config | None = None) -> Path:
    path = tmp_path / "secretsight-rules.yaml"
    path.write_text(alerting_files(config)[RULES_FILE], "utf-8")
    return path


@pytest.mark.prometheus_tools
def test_promtool_checks_the_rules(tmp_path: Path) -> None:
    proc = run([tool("promtool"), "check", "rules", str(_write(tmp_path))])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in proc.stdout


@pytest.mark.prometheus_tools
def test_promtool_rule_unit_tests(tmp_path: Path) -> None:
    _write(tmp_path)
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    proc = run([tool("promtool"), "test", "rules", UNIT_TESTS.name], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.prometheus_tools
def test_promtool_unit_tests_fail_when_a_threshold_moves(tmp_path: Path) -> None:
    """The unit tests can fail: rules built with another bulk_read count break them."""
    config = Config(thresholds=Thresholds(bulk_read=CountWindow(count=60,
                                                                window=timedelta(minutes=5))))
    _write(tmp_path, config)
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    proc = run([tool("promtool"), "test", "rules", UNIT_TESTS.name], cwd=tmp_path)
    assert proc.returncode != 0
    assert "SecretSightBulkRead" in proc.stdout + proc.stderr


@pytest.mark.parametrize("rule", [r for r in _rules() if "alert" in r],
                         ids=lambda r: r["alert"])
def test_alert_carries_team_severity_and_runbook(rule: dict) -> None:
    labels = rule["labels"]
    assert labels["team"] == "security"
    assert labels["severity"] in ("low", "medium", "high", "critical")
    assert ("anomaly" in labels) != (labels.get("component") == "sidecar")
    assert rule["annotations"]["runbook_url"].startswith("docs/runbooks/")


@pytest.mark.prometheus_tools
def test_thresholds_and_names_follow_the_config(tmp_path: Path) -> None:
    config = Config(
        thresholds=Thresholds(bulk_read=CountWindow(count=120, window=timedelta(minutes=10))),
        stateful=Stateful(audit_gap_max_silence=timedelta(seconds=90),
                          audit_gap_baseline=timedelta(minutes=20)),
        allowlists=Allowlists(bulk_read=["eso-accessor-*", "vault.agent"]),
        alerting=AlertingSettings(team="secops", prometheus_job="ss", sidecar_max_lag="30m",
                                  runbook_base_url="https://wiki.example/runbooks/"),
    )
    rules = {r.get("alert") or r["record"]: r for r in _rules(config)}
    bulk = rules["SecretSightBulkRead"]
    assert bulk["expr"].endswith("> 120")
    assert r'identity!~"eso-accessor-.*|vault\\.agent"' in bulk["expr"]
    assert "within 10m" in bulk["annotations"]["description"]
    assert bulk["labels"]["team"] == "secops"
    assert bulk["annotations"]["runbook_url"] == "https://wiki.example/runbooks/bulk_read.md"
    silent = rules["SecretSightAuditSourceSilent"]["expr"]
    assert "> 90 " in silent and ">= 1200" in silent
    assert 'up{job="ss"}' in rules["SecretSightSidecarDown"]["expr"]
    assert rules["SecretSightLagging"]["expr"].endswith("> 1800")
    proc = run([tool("promtool"), "check", "rules", str(_write(tmp_path, config))])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_identity_filter_escapes_for_re2() -> None:
    assert identity_filter([]) == ""
    assert identity_filter(["a.b*", "x?"]) == r'identity!~"a\\.b.*|x."'


def _as_input_series(exposition: str, job: str = "secretsight") -> list[dict]:
    """A /metrics scrape held for 10 minutes, as promtool input series."""
    series = []
    for line in exposition.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, value = line.rsplit(" ", 1)
        name, _, labels = name_labels.partition("{")
        labels = labels.rstrip("}")
        extra = f'job="{job}",instance="sidecar:9108"'
        series.append({"series": f"{name}{{{extra}{',' + labels if labels else ''}}}",
                       "values": f"{value}x10"})
    return series


@pytest.mark.prometheus_tools
def test_watch_metrics_feed_the_rules_end_to_end(tmp_path: Path) -> None:
    """What `watch` exports after a harvest makes the rules fire for the harvester only."""
    from secretsight.watch.metrics import Metrics

    t0 = 1_700_000_000.0
    m = Metrics(clock=lambda: t0 + 120)
    for i in range(60):  # 60 reads of 40 distinct paths in 2 minutes
        m.observe({"event": {"dataset": "vault.audit", "outcome": "success"},
                   "secret": {"operation": "read", "path": f"secret/prod/p{i % 40}"},
                   "user": {"id": "tok_A1b2c3"}}, t0 + i * 2)
    for i in range(12):  # a renewal agent: one path
        m.observe({"event": {"dataset": "vault.audit", "outcome": "success"},
                   "secret": {"operation": "read", "path": "secret/prod/db"},
                   "user": {"id": "k8s-backend"}}, t0 + i * 10)
    tests = {"rule_files": ["secretsight-rules.yaml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": _as_input_series(m.render()),
        "alert_rule_test": [
            {"eval_time": "2m", "alertname": name, "exp_alerts": [{
                "exp_labels": {"anomaly": anomaly, "identity": "tok_A1b2c3",
                               "user_id": "tok_A1b2c3", "severity": "high", "team": "security"},
                "exp_annotations": {k: v.replace("{{ $labels.identity }}", "tok_A1b2c3")
                                    .replace("{{ $value }}", value)
                                    for k, v in rule["annotations"].items()}}]}
            for name, anomaly, value in (("SecretSightBulkRead", "bulk_read", "60"),
                                         ("SecretSightPathDiversity", "path_diversity", "40"))
            for rule in _rules() if rule.get("alert") == name]}]}
    _write(tmp_path)
    (tmp_path / "e2e.test.yml").write_text(yaml.safe_dump(tests), "utf-8")
    proc = run([tool("promtool"), "test", "rules", "e2e.test.yml"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
