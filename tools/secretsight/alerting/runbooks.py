"""The runbook link of an alert or finding: one place builds it for every target.

`docs/runbooks/<anomaly>.md` exists for every anomaly class (a test checks it), plus
`sidecar-health.md` for the side-car's own alerts. The base comes from
`alerting.runbook_base_url`; the default is the repository-relative directory, which is also
where the release pack ships the runbooks.
"""

from __future__ import annotations

from typing import Any

from secretsight.alerting.settings import AlertingSettings

RUNBOOK_DIR = "docs/runbooks"
SIDECAR_RUNBOOK = "sidecar-health"  # the side-car's own health alerts (not an anomaly class)


def runbook_url(name: str, settings: AlertingSettings | None = None) -> str:
    """`<base>/<name>.md` for an anomaly class (or SIDECAR_RUNBOOK)."""
    base = (settings or AlertingSettings()).runbook_base_url.rstrip("/")
    return f"{base}/{name}.md"


# ---- one hook per target: each target's compiler calls one of these on its output


def link_loki_groups(groups: dict[str, list[dict[str, Any]]], settings: AlertingSettings) -> None:
    """Loki ruler rules (Prometheus-style): a `team` label and a `runbook_url` annotation."""
    for rules in groups.values():
        for rule in rules:
            rule["labels"]["team"] = settings.team
            rule["annotations"]["runbook_url"] = runbook_url(rule["labels"]["anomaly"], settings)


def link_kibana_rule(doc: dict[str, Any], anomaly: str, settings: AlertingSettings) -> None:
    """A Kibana detection rule: the investigation guide (`note`, Markdown) links the runbook,
    and a `team:<team>` tag carries the team."""
    url = runbook_url(anomaly, settings)
    doc["note"] = f"## Runbook\n\n[{anomaly}]({url})\n"
    doc["tags"] = sorted({*doc.get("tags", []), f"team:{settings.team}"})


def link_splunk_stanza(stanza: dict[str, str], anomaly: str, settings: AlertingSettings) -> None:
    """A Splunk saved search: the description ends with the runbook link and the team."""
    stanza["description"] = (f"{stanza.get('description', '').rstrip()} "
                             f"Runbook: {runbook_url(anomaly, settings)} Team: {settings.team}"
                             ).strip()
