"""The generated Prometheus rules: promtool accepts them and its rule unit tests
(prometheus_rules.test.yml: input series as `watch` exports them) pass; the thresholds follow
the config; every alert carries team, severity, anomaly or component, and a runbook link."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from alerting_tools import alerting_files, run, tool

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


def test_promtool_checks_the_rules(tmp_path: Path) -> None:
    proc = run([tool("promtool"), "check", "rules", str(_write(tmp_path))])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in proc.stdout


def test_promtool_rule_unit_tests(tmp_path: Path) -> None:
    _write(tmp_path)
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    proc = run([tool("promtool"), "test", "rules", UNIT_TESTS.name], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


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
