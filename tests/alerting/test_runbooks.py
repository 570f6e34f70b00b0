"""Runbooks: one per anomaly class with the three parts an on-call needs, and every alert on
every target (Loki ruler, Kibana, Splunk, Prometheus) and every finding links one that exists,
and carries the team."""

from __future__ import annotations

import configparser
import json
import re

import pytest
import yaml
from support.compiled_rules import compiled, ruler_rules
from support.prometheus_tools import REPO, alerting_files

from secretsight.alerting.prometheus import RULES_FILE
from secretsight.alerting.runbooks import SIDECAR_RUNBOOK, runbook_url
from secretsight.alerting.settings import AlertingSettings
from secretsight.findings import ANOMALY_CLASSES, Finding

RUNBOOKS = REPO / "docs" / "runbooks"
TEAM = AlertingSettings().team


def _exists(url: str) -> bool:
    # default base: the repo-relative docs/runbooks (also the path inside the release pack)
    return url.startswith("docs/runbooks/") and (REPO / url).is_file()


@pytest.mark.parametrize("anomaly", [*ANOMALY_CLASSES, SIDECAR_RUNBOOK])
def test_runbook_exists_with_meaning_triage_and_response(anomaly: str) -> None:
    path = RUNBOOKS / f"{anomaly}.md"
    text = path.read_text("utf-8")
    assert text.startswith(f"# {anomaly}: ")
    if anomaly != SIDECAR_RUNBOOK:
        for section in ("## What it means", "## Triage", "## Respond"):
            assert section in text, f"{path}: no {section!r}"
    assert f"({anomaly}.md)" in (RUNBOOKS / "README.md").read_text("utf-8") \
        or anomaly == SIDECAR_RUNBOOK


def test_runbook_links_resolve() -> None:
    for path in sorted(RUNBOOKS.glob("*.md")):
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", path.read_text("utf-8")):
            assert (RUNBOOKS / target).is_file(), f"{path.name} links {target}"


def test_no_stray_runbooks() -> None:
    """Every file is an anomaly's runbook, the side-car's, the index or the shared steps."""
    allowed = {*ANOMALY_CLASSES, SIDECAR_RUNBOOK, "README", "contain-credential"}
    assert {p.stem for p in RUNBOOKS.glob("*.md")} <= allowed


LOKI = ruler_rules()


@pytest.mark.parametrize("rule", LOKI, ids=lambda r: f"{r['alert']}/{r['labels'].get('dataset', '')}")
def test_loki_alert_links_a_runbook(rule: dict) -> None:
    assert rule["labels"]["team"] == TEAM
    url = rule["annotations"]["runbook_url"]
    assert url == runbook_url(rule["labels"]["anomaly"]) and _exists(url)


def _kibana() -> list[dict]:
    text = compiled("elastic").files["elastic/secretsight-rules.ndjson"]
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("doc", _kibana(), ids=lambda d: d["rule_id"])
def test_kibana_rule_links_a_runbook(doc: dict) -> None:
    anomaly = doc["meta"]["secretsight"]["anomaly"]
    url = re.search(r"\]\(([^)]+)\)", doc["note"]).group(1)  # type: ignore[union-attr]
    assert url == runbook_url(anomaly) and _exists(url)
    assert f"team:{TEAM}" in doc["tags"]


def _splunk() -> list[tuple[str, dict[str, str]]]:
    conf = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    conf.optionxform = str  # type: ignore[assignment,method-assign]
    conf.read_string(compiled("splunk").files["splunk/secretsight/default/savedsearches.conf"])
    # the alerts (the app's baseline searches alert nobody)
    return [(name, dict(conf[name])) for name in conf.sections()
            if "action.logevent.param.event" in conf[name]]


@pytest.mark.parametrize("stanza", [s for _, s in _splunk()], ids=[n for n, _ in _splunk()])
def test_splunk_search_links_a_runbook(stanza: dict[str, str]) -> None:
    anomaly = re.search(r'anomaly="(\w+)"', stanza["action.logevent.param.event"]).group(1)  # type: ignore[union-attr]
    url = re.search(r"Runbook: (\S+)", stanza["description"]).group(1)  # type: ignore[union-attr]
    assert url == runbook_url(anomaly) and _exists(url)
    assert f"Team: {TEAM}" in stanza["description"]
    assert f'runbook="{url}"' in stanza["action.logevent.param.event"]


def _prometheus_alerts() -> list[dict]:
    doc = yaml.safe_load(alerting_files()[RULES_FILE])
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


@pytest.mark.parametrize("rule", _prometheus_alerts(), ids=lambda r: r["alert"])
def test_prometheus_alert_links_a_runbook(rule: dict) -> None:
    assert _exists(rule["annotations"]["runbook_url"])
    assert rule["labels"]["team"] == TEAM


@pytest.mark.parametrize("anomaly", ANOMALY_CLASSES)
def test_finding_json_links_its_runbook(anomaly: str) -> None:
    f = Finding(anomaly=anomaly, rule="r", title="t", severity="high", user_id="u",
                start="2026-01-01T00:00:00Z", end="2026-01-01T00:00:00Z")
    assert _exists(f.to_json()["runbook"])
    custom = AlertingSettings(runbook_base_url="https://wiki.example/sec/runbooks/")
    assert f.to_json(custom)["runbook"] == f"https://wiki.example/sec/runbooks/{anomaly}.md"


def test_the_base_url_reaches_every_target() -> None:
    from secretsight.compile import compile_target
    from secretsight.config import Config

    config = Config(alerting=AlertingSettings(runbook_base_url="https://rb.example", team="ops"))
    loki = compile_target("loki", config=config, paths=[REPO / "sigma/rules/cross/bulk_read.yml"])
    doc = yaml.safe_load(loki.files["loki/secretsight-rules.yaml"])
    rule = next(r for g in doc["groups"] for r in g["rules"] if r["alert"] == "bulk_read")
    assert rule["annotations"]["runbook_url"] == "https://rb.example/bulk_read.md"
    assert rule["labels"]["team"] == "ops"


def test_the_finding_id_does_not_depend_on_the_runbook_base() -> None:
    from secretsight.watch.outputs import finding_json

    f = Finding(anomaly="bulk_read", rule="r", title="t", severity="high", user_id="u",
                start="2026-01-01T00:00:00Z", end="2026-01-01T00:00:00Z")
    a = finding_json(f)
    b = finding_json(f, AlertingSettings(runbook_base_url="https://wiki.example/rb"))
    assert a["runbook"] != b["runbook"] and a["id"] == b["id"]
