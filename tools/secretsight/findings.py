"""A finding: what every rule evaluation and stateful detector emits, in one shape."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# The fixed vocabulary of anomaly classes. Every rule (custom attribute `anomaly`) and every
# finding carries exactly one.
ANOMALY_CLASSES: tuple[str, ...] = (
    "bulk_read",
    "path_diversity",
    "dual_source_ip",
    "multiple_external_ips",
    "first_path_access",
    "admin_off_hours",
    "rotation_without_read",
    "rotation_without_deploy",
    "audit_gap",
    "audit_disabled",
    "namespace_enumeration",
    "dormant_identity",
    "suspicious_user_agent",
    "workload_identity_read",
    "privileged_impersonation",
    "denied_burst",
    "cross_store_harvest",
    "decoy_access",
    "secret_destruction",
    "policy_exposure",
    "root_token",
    "long_ttl_token",
)

SEVERITIES: tuple[str, ...] = ("informational", "low", "medium", "high", "critical")


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

    def __post_init__(self) -> None:
        if self.anomaly not in ANOMALY_CLASSES:
            raise ValueError(f"unknown anomaly class {self.anomaly!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    def to_json(self) -> dict[str, Any]:
        """The `scan --format json` / `watch` shape."""
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
        }
        if self.dataset:
            out["dataset"] = self.dataset
        if self.incident:
            out["incident"] = {"id": self.incident, "revision": self.revision}
        return out

    def key(self) -> tuple[str, str, str | None]:
        """What a scenario expectation compares: (anomaly, rule, identity)."""
        return (self.anomaly, self.rule, self.user_id)


def as_dict(finding: Finding) -> dict[str, Any]:
    return asdict(finding)
