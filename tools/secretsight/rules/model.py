"""What the loader returns: one `RuleMeta` per rule, a `RuleSet` holding them with the pySigma
collection and the collected errors; where the rules live (`RULES_DIR`) and their source
directories."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaRule

from secretsight.errors import SecretSightError

SOURCES: tuple[str, ...] = ("vault", "cloudtrail", "kubernetes", "cross")
SERVICES: dict[str, str | None] = {
    "vault": "vault",
    "cloudtrail": "cloudtrail",
    "kubernetes": "kubernetes",
    "cross": None,
}


def _rules_dir() -> Path:
    env = os.environ.get("SECRETSIGHT_RULES")
    if env:
        return Path(env)
    # Repo layout: tools/secretsight/rules/model.py -> <repo>/sigma/rules
    return Path(__file__).resolve().parents[3] / "sigma" / "rules"


RULES_DIR: Path = _rules_dir()


@dataclass(frozen=True)
class RuleMeta:
    name: str
    id: str
    title: str
    anomaly: str
    level: str | None
    path: Path
    source: str  # the directory: vault | cloudtrail | kubernetes | cross
    kind: str  # "detection" (plain rule) | "correlation"
    correlation_type: str | None = None
    group_by: tuple[str, ...] = ()
    # False for a building block only used by correlations (Sigma `generate: false`): engines
    # and targets must not alert on it by itself.
    emits: bool = True
    # False for target-only rules that `scan` skips (a stateful detector reports the anomaly).
    embedded: bool = True
    references: tuple[str, ...] = ()  # names of the rules a correlation references
    thresholds: dict[str, Any] = field(default_factory=dict)  # target -> value applied


@dataclass
class RuleSet:
    collection: SigmaCollection
    rules: list[RuleMeta]
    errors: list[SecretSightError]

    def by_name(self, name: str) -> RuleMeta:
        for meta in self.rules:
            if meta.name == name:
                return meta
        raise KeyError(name)

    def meta_for(self, rule: SigmaRule | SigmaCorrelationRule) -> RuleMeta | None:
        """The metadata of a pySigma rule of this set (by name, else by id)."""
        for meta in self.rules:
            if meta.name == rule.name or meta.id == str(rule.id):
                return meta
        return None

    def emitting(self) -> list[RuleMeta]:
        return [m for m in self.rules if m.emits]

    def raise_errors(self) -> None:
        """One SecretSightError listing every problem (the first one's file/line)."""
        if not self.errors:
            return
        first = self.errors[0]
        lines = "\n".join(str(e) for e in self.errors)
        raise SecretSightError(
            f"{len(self.errors)} rule error(s):\n{lines}", file=first.file, line=first.line
        )
