"""What a compile produces: per-rule outcomes for one target, the files to write, the errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from secretsight.errors import SecretSightError

Status = Literal["compiled", "workaround", "unsupported"]
STATUS_LABELS: dict[str, str] = {
    "compiled": "compiled",
    "workaround": "compiled with workaround",
    "unsupported": "unsupported",
}


@dataclass(frozen=True)
class Support:
    """One cell of the support matrix: how `rule` fared on `target`."""

    rule: str  # the rule's `name`
    target: str  # loki | elastic | splunk
    status: Status
    # compiled: empty; workaround: the workaround ids applied; unsupported: the reason.
    details: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"rule": self.rule, "target": self.target, "status": self.status,
                "details": list(self.details)}


@dataclass
class TargetOutput:
    """Everything one target wrote, keyed by path relative to the output directory."""

    target: str
    files: dict[str, str] = field(default_factory=dict)
    support: list[Support] = field(default_factory=list)
    errors: list[SecretSightError] = field(default_factory=list)
    # rule name -> the target-language query (or queries), for tests and the matrix.
    queries: dict[str, list[str]] = field(default_factory=dict)


class Unsupported(Exception):
    """Raised inside a target compiler: this rule cannot be expressed correctly on this target."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
