"""The `alerting:` section of the config (team, runbook links, receivers, side-car health).

Kept apart from `secretsight.config` (which references it with one field) and free of imports
from it, so the config can import it without a cycle.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Prometheus durations as the rule files write them: 30s, 5m, 1h, 1d.
_PROM_DURATION = re.compile(r"^[1-9]\d*[smhd]$")
_LABEL_VALUE = re.compile(r"^[^\n\"]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Receivers(_Strict):
    """Alertmanager receiver NAMES. The generated config declares each with no integration:
    fill in `pagerduty_configs`, `slack_configs`, … under the same name (keys stay out of the
    detection config)."""

    # Always actionable: bulk reads, one credential from two networks, critical/high findings.
    page: str = "secretsight-page"
    # On-call chat with one-click acknowledgement: admin activity outside maintenance windows,
    # medium findings, the side-car's own health.
    chat: str = "secretsight-oncall-chat"
    # Everything else (low, informational): a ticket queue read in working hours.
    ticket: str = "secretsight-tickets"

    @field_validator("page", "chat", "ticket")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("receiver names cannot be empty")
        return v


class AlertingSettings(_Strict):
    # The `team` label on every alert of every target (routing key for a shared Alertmanager).
    team: str = "security"
    # Where runbooks live: `<runbook_base_url>/<anomaly>.md`. The default is the path inside
    # the repository and the release pack; set your wiki or repository URL.
    runbook_base_url: str = "docs/runbooks"
    receivers: Receivers = Receivers()
    # Paged with no mute, no quiet period and no inhibition (the design's "always actionable").
    page_anomalies: list[str] = ["bulk_read", "dual_source_ip"]
    # Severities paged, and sent to chat; anything else goes to the ticket receiver.
    page_severities: list[str] = ["critical", "high"]
    chat_severities: list[str] = ["medium"]
    # Prometheus `job` label of the scrape job for `secretsight watch`'s /metrics.
    prometheus_job: str = "secretsight"
    # Side-car health: end-to-end lag (CloudTrail alone delivers 5-15 minutes late) and how
    # long a health condition must hold before it alerts.
    sidecar_max_lag: str = "20m"
    sidecar_for: str = "10m"
    # How many identities watch's per-identity window gauges export (top N by reads and top N
    # by distinct paths): bounds the series count at 2N per side-car.
    metrics_top_identities: int = Field(default=20, ge=1, le=1000)

    @field_validator("team", "prometheus_job")
    @classmethod
    def _label(cls, v: str) -> str:
        if not _LABEL_VALUE.match(v):
            raise ValueError(f"not usable as a label value: {v!r}")
        return v

    @field_validator("sidecar_max_lag", "sidecar_for")
    @classmethod
    def _duration(cls, v: str) -> str:
        if not _PROM_DURATION.match(v):
            raise ValueError(f"not a Prometheus duration: {v!r} (use e.g. 30s, 10m, 1h)")
        return v
