"""The generated Alertmanager config: Debian's amtool accepts it, routes every real alert's
label set (each Loki ruler rule the compiler writes, each Prometheus alert) to the receiver the
routing policy names, mutes admin activity inside exactly the configured maintenance windows and
never mutes or inhibits the always-paged anomalies."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from support.compiled_rules import ruler_rules
from support.prometheus_tools import alerting_files, run, tool, write

from secretsight.alerting.alertmanager import CONFIG_FILE, time_intervals
from secretsight.alerting.settings import AlertingSettings, Receivers
from secretsight.config import Config, MaintenanceWindow, TimeInterval, TimeRange
from secretsight.errors import SecretSightError

DEFAULT = Config()
R = DEFAULT.alerting.receivers


def _am_file(tmp_path: Path, config: Config = DEFAULT) -> Path:
    write({CONFIG_FILE: alerting_files(config)[CONFIG_FILE]}, tmp_path)
    return tmp_path / CONFIG_FILE


def _doc(config: Config = DEFAULT) -> dict:
    return yaml.safe_load(alerting_files(config)[CONFIG_FILE])


def expected_receiver(labels: dict[str, str]) -> str:
    """The routing policy, stated independently of the generator (design: bulk reads and one
    credential from two networks always page; off-hours admin to on-call chat; side-car health
    to chat; critical/high page, medium chat, the rest a ticket)."""
    if labels.get("anomaly") in ("bulk_read", "dual_source_ip"):
        return R.page
    if labels.get("anomaly") == "admin_off_hours" or labels.get("component") == "sidecar":
        return R.chat
    return {"critical": R.page, "high": R.page, "medium": R.chat}.get(
        labels.get("severity", ""), R.ticket)


def _static(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if "{{" not in v}


def _real_alerts() -> list[tuple[str, dict[str, str]]]:
    from secretsight.alerting.prometheus import RULES_FILE

    out = [(f"loki/{r['alert']}/{r['labels'].get('dataset', r['labels']['source'])}",
            _static(r["labels"])) for r in ruler_rules()]
    prom = yaml.safe_load(alerting_files()[RULES_FILE])
    out += [(f"prometheus/{r['alert']}", _static(r["labels"]))
            for g in prom["groups"] for r in g["rules"] if "alert" in r]
    return out


ALERTS = _real_alerts()


@pytest.mark.prometheus_tools
def test_amtool_accepts_the_generated_config(tmp_path: Path) -> None:
    proc = run([tool("amtool"), "check-config", str(_am_file(tmp_path))])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


@pytest.mark.prometheus_tools
def test_amtool_rejects_a_broken_config(tmp_path: Path) -> None:
    """amtool really validates: a route naming an undeclared receiver is refused."""
    path = _am_file(tmp_path)
    path.write_text(path.read_text("utf-8").replace("- name: secretsight-page\n", ""), "utf-8")
    proc = run([tool("amtool"), "check-config", str(path)])
    assert proc.returncode != 0
    assert "secretsight-page" in proc.stdout + proc.stderr


@pytest.mark.prometheus_tools
@pytest.mark.parametrize("labels", [a[1] for a in ALERTS], ids=[a[0] for a in ALERTS])
def test_real_alert_routes_to_its_receiver(tmp_path: Path, labels: dict[str, str]) -> None:
    assert labels["team"] == DEFAULT.alerting.team  # every alert carries the team
    path = _am_file(tmp_path)
    want = expected_receiver(labels)
    proc = run([tool("amtool"), "config", "routes", "test", f"--config.file={path}",
                f"--verify.receivers={want}", *[f"{k}={v}" for k, v in sorted(labels.items())]])
    assert proc.returncode == 0, f"{labels} -> {proc.stdout.strip()}, want {want}"


def test_every_routing_branch_has_a_real_alert() -> None:
    """The label sets above exercise the page and chat receivers (no compiled alert is low or
    informational today: the ticket branch is tested with a synthetic one below)."""
    assert {expected_receiver(labels) for _, labels in ALERTS} >= {R.page, R.chat}
    anomalies = {labels.get("anomaly") for _, labels in ALERTS}
    assert {"bulk_read", "dual_source_ip", "admin_off_hours"} <= anomalies
    assert any(labels.get("component") == "sidecar" for _, labels in ALERTS)


@pytest.mark.parametrize("severity", ["low", "informational"])
@pytest.mark.prometheus_tools
def test_low_severity_goes_to_the_ticket_receiver(tmp_path: Path, severity: str) -> None:
    proc = run([tool("amtool"), "config", "routes", "test", f"--config.file={_am_file(tmp_path)}",
                f"--verify.receivers={R.ticket}", "team=security", "anomaly=long_ttl_token",
                f"severity={severity}"])
    assert proc.returncode == 0, proc.stdout


@pytest.mark.prometheus_tools
def test_receivers_are_the_configured_placeholders(tmp_path: Path) -> None:
    config = Config(alerting=AlertingSettings(
        team="secops", receivers=Receivers(page="pd", chat="slack", ticket="jira")))
    doc = _doc(config)
    assert doc["receivers"] == [{"name": "jira"}, {"name": "pd"}, {"name": "slack"}]
    path = _am_file(tmp_path, config)
    proc = run([tool("amtool"), "config", "routes", "test", f"--config.file={path}",
                "--verify.receivers=pd", "team=secops", "anomaly=bulk_read", "severity=low"])
    assert proc.returncode == 0, proc.stdout
    # another team's alert is not SecretSight's business: the root receiver gets it
    proc = run([tool("amtool"), "config", "routes", "test", f"--config.file={path}",
                "--verify.receivers=jira", "team=payments", "anomaly=bulk_read"])
    assert proc.returncode == 0, proc.stdout


def _routes(node: dict) -> list[dict]:
    out = [node]
    for child in node.get("routes", []):
        out += _routes(child)
    return out


def _matches(matcher: str, labels: dict[str, str]) -> bool:
    m = re.fullmatch(r'(\w+)(=~|!~|!=|=)"(.*)"', matcher)
    assert m, matcher
    name, op, value = m.groups()
    have = labels.get(name, "")
    if op == "=":
        return have == value
    if op == "!=":
        return have != value
    hit = re.fullmatch(value, have) is not None
    return hit if op == "=~" else not hit


@pytest.mark.parametrize("anomaly", ["bulk_read", "dual_source_ip"])
def test_paged_anomalies_are_never_muted_or_inhibited(anomaly: str) -> None:
    doc = _doc()
    labels = {"team": "security", "anomaly": anomaly, "severity": "critical",
              "alertname": anomaly, "instance": "x"}
    for rule in doc["inhibit_rules"]:
        assert not all(_matches(m, labels) for m in rule["target_matchers"]), rule
    path = [r for r in _routes(doc["route"])
            if all(_matches(m, labels) for m in r.get("matchers", []))]
    assert path[-1]["receiver"] == R.page
    for route in path:
        assert "mute_time_intervals" not in route and "active_time_intervals" not in route


def test_admin_activity_is_muted_in_every_maintenance_window() -> None:
    windows = [
        MaintenanceWindow(name="business_hours", time_intervals=[TimeInterval(
            weekdays=["monday:friday"], times=[TimeRange(start_time="06:00", end_time="22:00")])]),
        MaintenanceWindow(name="patch_tuesday", location="Europe/Berlin", time_intervals=[
            TimeInterval(weekdays=["tuesday"], days_of_month=["8:14"],
                         times=[TimeRange(start_time="20:00", end_time="24:00")])]),
    ]
    doc = _doc(Config(maintenance_windows=windows))
    admin = [r for r in _routes(doc["route"]) if r.get("matchers") == ['anomaly="admin_off_hours"']]
    assert len(admin) == 1
    assert admin[0]["mute_time_intervals"] == ["business_hours", "patch_tuesday"]
    assert admin[0]["receiver"] == R.chat


def test_time_intervals_are_the_maintenance_windows() -> None:
    """Read back as the config's own models, the generated intervals are the windows."""
    windows = [MaintenanceWindow(name="nights", location="America/New_York", time_intervals=[
        TimeInterval(times=[TimeRange(start_time="00:00", end_time="04:00")], months=["1:6"],
                     years=["2026:2030"]),
        TimeInterval(weekdays=["saturday", "sunday"])])]
    generated = _doc(Config(maintenance_windows=windows))["time_intervals"]
    back = [MaintenanceWindow(
        name=g["name"], location=g["time_intervals"][0]["location"],
        time_intervals=[TimeInterval(**{k: v for k, v in ti.items() if k != "location"})
                        for ti in g["time_intervals"]]) for g in generated]
    assert back == windows
    assert all(ti["location"] == "America/New_York" for ti in generated[0]["time_intervals"])


@pytest.mark.prometheus_tools
def test_amtool_accepts_non_default_windows(tmp_path: Path) -> None:
    windows = [MaintenanceWindow(name="quarter_end", location="Asia/Tokyo", time_intervals=[
        TimeInterval(days_of_month=["-3:-1"], months=["march", "june", "september", "december"],
                     times=[TimeRange(start_time="09:30", end_time="17:45")])])]
    proc = run([tool("amtool"), "check-config",
                str(_am_file(tmp_path, Config(maintenance_windows=windows)))])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_an_invalid_window_fails_as_the_detectors_parser_says() -> None:
    bad = [MaintenanceWindow(name="overnight", time_intervals=[
        TimeInterval(times=[TimeRange(start_time="22:00", end_time="06:00")])])]
    with pytest.raises(SecretSightError, match="crossing midnight"):
        time_intervals(bad)
    dup = [MaintenanceWindow(name="a", time_intervals=[TimeInterval()])] * 2
    with pytest.raises(SecretSightError, match="duplicate"):
        time_intervals(dup)


@pytest.mark.parametrize("settings", [
    AlertingSettings(page_anomalies=["bulk_reads"]),
    AlertingSettings(chat_severities=["urgent"]),
], ids=["anomaly", "severity"])
def test_unknown_vocabulary_in_the_alerting_config_is_refused(settings: AlertingSettings) -> None:
    with pytest.raises(SecretSightError, match="unknown"):
        alerting_files(Config(alerting=settings))
