"""The runbook link of an alert or finding: one place builds it for every target.

The anomaly catalogue (`secretsight.anomalies`, `AnomalyClass.runbook`) names each class's
runbook under docs/runbooks/ (a test checks that it exists); `sidecar-health.md` covers the
side-car's own alerts. Links are that file under `alerting.runbook_base_url`; the default base is
the repository-relative directory, which is also where the release pack ships the runbooks.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from secretsight import anomalies
from secretsight.alerting.settings import AlertingSettings
from secretsight.errors import SecretSightError

RUNBOOK_DIR = "docs/runbooks"
SIDECAR_RUNBOOK = "sidecar-health"  # the side-car's own health alerts (not an anomaly class)


def runbook_path(name: str) -> str:
    """Repository path of the runbook of anomaly class `name` (from the catalogue; KeyError for
    a name that is no class) or of SIDECAR_RUNBOOK."""
    if name == SIDECAR_RUNBOOK:
        return f"{RUNBOOK_DIR}/{SIDECAR_RUNBOOK}.md"
    return anomalies.anomaly(name).runbook


def runbook_url(name: str, settings: AlertingSettings | None = None) -> str:
    """The runbook of `name` under `alerting.runbook_base_url`."""
    base = (settings or AlertingSettings()).runbook_base_url.rstrip("/")
    return f"{base}/{PurePosixPath(runbook_path(name)).relative_to(RUNBOOK_DIR)}"


# ---- one hook per target: each target's compiler calls one of these on its output


def link_loki_groups(groups: dict[str, list[dict[str, Any]]], settings: AlertingSettings) -> None:
    """Loki ruler rules (Prometheus-style): a `team` label and a `runbook_url` annotation."""
    for rules in groups.values():
        for rule in rules:
            rule["labels"]["team"] = settings.team
            rule["annotations"]["runbook_url"] = runbook_url(rule["labels"]["anomaly"], settings)


def link_kibana_rules(docs: list[dict[str, Any]], settings: AlertingSettings) -> None:
    """Kibana detection rules: the investigation guide (`note`, Markdown) links the runbook of
    `meta.secretsight.anomaly`, and a `team:<team>` tag carries the team."""
    for doc in docs:
        anomaly = doc["meta"]["secretsight"]["anomaly"]
        doc["note"] = f"## Runbook\n\n[{anomaly}]({runbook_url(anomaly, settings)})\n"
        doc["tags"] = sorted({*doc.get("tags", []), f"team:{settings.team}"})


_SPLUNK_ANOMALY = re.compile(r'\banomaly="([a-z_]+)"')


def link_splunk_stanzas(stanzas: dict[str, dict[str, str]], settings: AlertingSettings) -> None:
    """Splunk saved searches: the description ends with the runbook link and the team, and
    the alert event (`action.logevent.param.event`, which names the anomaly) gains
    `team=` and `runbook=`."""
    for name, stanza in stanzas.items():
        event = stanza.get("action.logevent.param.event", "")
        match = _SPLUNK_ANOMALY.search(event)
        if match is None:
            raise SecretSightError(f"splunk: stanza [{name}] names no anomaly in its alert event")
        url = runbook_url(match.group(1), settings)
        stanza["description"] = (f"{stanza.get('description', '').rstrip()} Runbook: {url} "
                                 f"Team: {settings.team}").strip()
        stanza["action.logevent.param.event"] = (
            f'{event} team="{settings.team}" runbook="{url}"')
