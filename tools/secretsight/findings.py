"""A finding: what every rule evaluation and stateful detector emits, in one shape."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from secretsight import anomalies
from secretsight.alerting.runbooks import runbook_url
from secretsight.alerting.settings import AlertingSettings
from secretsight.anomalies import SEVERITIES

# The fixed vocabulary of anomaly classes, from the catalogue (anomalies.yml). Every rule (custom
# attribute `anomaly`) and every finding carries exactly one.
ANOMALY_CLASSES: tuple[str, ...] = anomalies.names()


@dataclass(frozen=True)
class Finding:
    anomaly: str  # one of ANOMALY_CLASSES
    rule: str  # Sigma rule id (UUID), or "detector/<name>" for a stateful detector
    title: str
    severity: str  # one of SEVERITIES
    user_id: str | None  # the identity (user.id); None for findings about a source (audit_gap)
    start: str  # RFC 3339 UTC: first event of the window
    end: str  # RFC 3339 UTC: last event of the window
    rule_name: str | None = None  # Sigma rule `name` (snake_case, = file stem) or detector name
    dataset: str | None = None  # event.dataset when the finding is about one source
    user_name: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)  # sample paths, IPs, counts
    incident: str | None = None  # stable incident id (secretsight.incidents); None: a member
    revision: int = 0  # the incident's revision: 1 first report, > 1 an update
    # credential.id that acted (token accessor, access key or session, Kubernetes token): the
    # principal is user_id/user_name; None when the events name no credential
    credential_id: str | None = None

    def __post_init__(self) -> None:
        if self.anomaly not in ANOMALY_CLASSES:
            raise ValueError(f"unknown anomaly class {self.anomaly!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    def to_json(self, alerting: AlertingSettings | None = None) -> dict[str, Any]:
        """The `scan --format json` / `watch` shape; `runbook` links the anomaly's runbook
        (under `alerting.runbook_base_url`, default the repo-relative docs/runbooks)."""
        user: dict[str, Any] = {"id": self.user_id}
        if self.user_name:
            user["name"] = self.user_name
        out: dict[str, Any] = {
            "anomaly": self.anomaly,
            "rule": self.rule,
            "rule_name": self.rule_name,
            "title": self.title,
            "severity": self.severity,
            "user": user,
            "window": {"start": self.start, "end": self.end},
            "evidence": self.evidence,
            "runbook": runbook_url(self.anomaly, alerting),
        }
        if self.dataset:
            out["dataset"] = self.dataset
        if self.incident:
            out["incident"] = {"id": self.incident, "revision": self.revision}
        if self.credential_id:
            out["credential"] = {"id": self.credential_id}
        return out

    def who(self) -> str:
        """The principal and credential, readable name first: `name (id) via credential`."""
        text = self.user_name or self.user_id or "-"
        if self.user_name and self.user_id and self.user_id != self.user_name:
            text += f" ({self.user_id})"
        if self.credential_id:
            text += f" via {self.credential_id}"
        return text

    def key(self) -> tuple[str, str, str | None]:
        """What a scenario expectation compares: (anomaly, rule, identity)."""
        return (self.anomaly, self.rule, self.user_id)


def as_dict(finding: Finding) -> dict[str, Any]:
    return asdict(finding)
