"""The Grafana dashboard (grafana-foundation-sdk): data sources are variables, the required
panels exist, every LogQL parses with Grafana's LogQL grammar, every PromQL passes promtool
(as recording rules of a generated rule file) and names only metrics `watch` exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from support.logql import parse_logql
from support.prometheus_tools import alerting_files, run, tool

from secretsight.alerting import prometheus as rules
from secretsight.alerting.grafana import DASHBOARD_FILE
from secretsight.config import Config
from secretsight.watch.metrics import Metrics


def _dashboard(config: Config | None = None) -> dict:
    return json.loads(alerting_files(config)[DASHBOARD_FILE])


DASH = _dashboard()
PANELS = [p for p in DASH["panels"] if p["type"] != "row"]
TARGETS = [(p["title"], t) for p in PANELS for t in p["targets"]]
LOGQL = [(f"{title}/{t['refId']}", t["expr"]) for title, t in TARGETS
         if t["datasource"]["type"] == "loki"]
PROMQL = [(f"{title}/{t['refId']}", t["expr"]) for title, t in TARGETS
          if t["datasource"]["type"] == "prometheus"]


def test_data_sources_are_variables() -> None:
    variables = {v["name"]: v for v in DASH["templating"]["list"]}
    assert variables["loki"]["type"] == "datasource" and variables["loki"]["query"] == "loki"
    assert variables["prometheus"]["query"] == "prometheus"
    for panel in PANELS:
        assert panel["datasource"]["uid"] in ("${loki}", "${prometheus}"), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${" + target["datasource"]["type"] + "}"


@pytest.mark.parametrize("needle", [
    "reads per identity", "distinct secret paths", "findings by anomaly and severity",
    "since the last audit event", "first-path accesses", "side-car"])
def test_required_panel_exists(needle: str) -> None:
    assert any(needle in p["title"].lower() for p in PANELS)


def test_panel_ids_are_unique() -> None:
    ids = [p["id"] for p in DASH["panels"]]
    assert len(ids) == len(set(ids))


@pytest.fixture(scope="module")
def logql_results() -> dict[str, dict]:
    return dict(zip([n for n, _ in LOGQL], parse_logql([q for _, q in LOGQL]), strict=True))


@pytest.mark.parametrize("name", [n for n, _ in LOGQL])
def test_logql_parses_with_grafanas_grammar(name: str, logql_results: dict[str, dict]) -> None:
    assert logql_results[name]["ok"], logql_results[name]["errors"]


def test_the_logql_grammar_catches_errors() -> None:
    assert [r["ok"] for r in parse_logql(['sum by (x) (count_over_time({a="b"} | json [5m)'])] \
        == [False]


def _panel_rule_file(queries: list[tuple[str, str]]) -> str:
    return yaml.safe_dump({"groups": [{"name": "secretsight-dashboard-panels", "rules": [
        {"record": f"secretsight_dashboard:panel_{i}", "expr": expr}
        for i, (_, expr) in enumerate(queries)]}]})


@pytest.mark.prometheus_tools
def test_every_promql_passes_promtool(tmp_path: Path) -> None:
    path = tmp_path / "panels.yaml"
    path.write_text(_panel_rule_file(PROMQL), "utf-8")
    proc = run([tool("promtool"), "check", "rules", str(path)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(PROMQL)} rules found" in proc.stdout


@pytest.mark.prometheus_tools
def test_promtool_catches_a_broken_panel_query(tmp_path: Path) -> None:
    path = tmp_path / "panels.yaml"
    path.write_text(_panel_rule_file([("bad", "sum by (x) (rate(foo[5m])")]), "utf-8")
    assert run([tool("promtool"), "check", "rules", str(path)]).returncode != 0


def test_promql_names_only_exported_metrics() -> None:
    metrics = Metrics()
    metrics.record_event("vault.audit", 1.0, True, "x", "p")  # lag is exported after an event
    exported = set(re.findall(r"^# TYPE (\S+)", metrics.render(), re.MULTILINE))
    recorded = {rules.READS_WINDOW, rules.PATHS_WINDOW, rules.READS_RATE}
    for name, expr in PROMQL:
        for metric in re.findall(r"\b(secretsight[:_][a-z0-9_:]+)", expr):
            assert metric in exported | recorded, f"{name}: {metric}"


def test_thresholds_follow_the_config() -> None:
    from datetime import timedelta

    from secretsight.config import CountWindow, Thresholds

    dash = _dashboard(Config(thresholds=Thresholds(
        bulk_read=CountWindow(count=75, window=timedelta(minutes=10)))))
    reads = next(p for p in dash["panels"] if p["title"] == "Secret reads per identity (Loki)")
    assert "[10m]" in reads["targets"][0]["expr"]
    steps = reads["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1]["value"] == 75
