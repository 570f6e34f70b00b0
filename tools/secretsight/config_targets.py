"""The `targets:` section of the config: where each SIEM keeps the events and the alerts, the
label and index names the compiled rules select on, schedules and severity mappings.

`secretsight compile` writes every such name from here (nothing in a generated file is a
literal of its own); the defaults are the names the shipped Vector and Fluent Bit configs
write to. Kept apart from config.py (which holds one field line for it) because only the
compiler reads it. Durations are kept as text (`1m`, `5m`) and parsed where they are used, so
this module imports nothing of SecretSight's.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

# `90s`, `5m`, `24h`, `14d`; an interval is never zero, a lag may be.
DurationText = Annotated[str, StringConstraints(pattern=r"^\s*\d+\s*[smhd]\s*$")]
IntervalText = Annotated[str, StringConstraints(pattern=r"^\s*0*[1-9]\d*\s*[smhd]\s*$")]
Name = Annotated[str, StringConstraints(min_length=1, pattern=r"^[^\s\"'`]+$")]
LEVELS = ("informational", "low", "medium", "high", "critical")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _every_level(mapping: dict[str, object]) -> dict[str, object]:
    missing = [level for level in LEVELS if level not in mapping]
    unknown = sorted(set(mapping) - set(LEVELS))
    if missing or unknown:
        raise ValueError(f"needs exactly the levels {', '.join(LEVELS)}"
                         f" (missing: {missing}, unknown: {unknown})")
    return mapping


class LokiTarget(_Strict):
    # The stream label the shippers' Loki outputs set to event.dataset (the one label every
    # shipper sets: Fluent Bit's loki output would remove a per-event label's field from the
    # line, so it sets this one statically per source).
    dataset_label: Name = "dataset"
    # Ruler evaluation interval; a plain rule counts its matches over this range.
    ruler_interval: IntervalText = "1m"


class ElasticTarget(_Strict):
    # Data streams the rules read (Vector writes logs-<event.dataset>-secretsight) and plain
    # indices (Fluent Bit's es output writes secretsight-events); the index template covers both.
    data_streams: list[Name] = Field(default=["logs-*-secretsight"], min_length=1)
    indices: list[Name] = ["secretsight-events"]
    # Name prefix of the component and index templates the compiler writes.
    template_name: Name = "secretsight"
    # Kibana rule schedule: every rule runs every `interval`.
    interval: IntervalText = "5m"
    # Rule level -> Kibana severity (Kibana has no "informational") and risk score (the scores
    # Elastic's own rules use).
    severity: dict[str, str] = {"informational": "low", "low": "low", "medium": "medium",
                                "high": "high", "critical": "critical"}
    risk_score: dict[str, int] = {"informational": 1, "low": 21, "medium": 47, "high": 73,
                                  "critical": 99}

    @field_validator("severity", "risk_score")
    @classmethod
    def _levels(cls, v: dict[str, object]) -> dict[str, object]:
        return _every_level(v)

    @field_validator("severity")
    @classmethod
    def _kibana_severity(cls, v: dict[str, str]) -> dict[str, str]:
        bad = sorted(s for s in v.values() if s not in ("low", "medium", "high", "critical"))
        if bad:
            raise ValueError(f"Kibana severities are low, medium, high, critical (got {bad})")
        return v

    @property
    def read_from(self) -> list[str]:
        """Every index pattern a rule searches."""
        return [*self.data_streams, *self.indices]


class SplunkTarget(_Strict):
    # The Splunk app the compiler builds (its directory and app.conf id).
    app: Name = "secretsight"
    # Where the shippers send the events (HEC index) and their sourcetypes:
    # `<sourcetype_prefix><event.dataset>`, e.g. secretsight:vault.audit.
    index: Name = "secretsight"
    sourcetype_prefix: Name = "secretsight:"
    # The one sourcetype of a shipper that sends every dataset under it (Fluent Bit's splunk
    # output: secretsight:event); its events are told apart by event.dataset. None: no such.
    shared_sourcetype: Name | None = "secretsight:event"
    # Where the alerts' `logevent` action writes, with this sourcetype.
    alert_index: Name = "secretsight_alerts"
    alert_sourcetype: Name = "secretsight:alert"
    # Searches run every `schedule_minutes`, staggered over it, on a window that ends `lag`
    # ago so events indexed late (CloudTrail: up to ~5 minutes) are still searched.
    schedule_minutes: int = Field(default=5, ge=1, le=60)
    lag: DurationText = "5m"
    # Rule level -> alert.severity (1 debug, 2 info, 3 warn, 4 error, 5 severe, 6 fatal).
    alert_severity: dict[str, int] = {"informational": 2, "low": 3, "medium": 4, "high": 5,
                                      "critical": 6}

    @field_validator("alert_severity")
    @classmethod
    def _levels(cls, v: dict[str, int]) -> dict[str, int]:
        _every_level(v)  # type: ignore[arg-type]
        if any(not 1 <= s <= 6 for s in v.values()):
            raise ValueError("Splunk alert.severity is 1..6")
        return v

    def sourcetype(self, dataset: str) -> str:
        return f"{self.sourcetype_prefix}{dataset}"


class Targets(_Strict):
    loki: LokiTarget = LokiTarget()
    elastic: ElasticTarget = ElasticTarget()
    splunk: SplunkTarget = SplunkTarget()
