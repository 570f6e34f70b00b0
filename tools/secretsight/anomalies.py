"""The anomaly classes, loaded from `anomalies.yml` beside this module: the one place a class's
name, title, severity, engine, config keys, ATT&CK techniques and runbook are defined.

Findings validate against it, the stateful detectors and the target-native stateful forms take
their title and severity from it, and the meta-tests hold the Sigma rules and docs/rules.md to it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from secretsight import yamlio
from secretsight.errors import SecretSightError

CATALOGUE = Path(__file__).with_name("anomalies.yml")

Severity = Literal["informational", "low", "medium", "high", "critical"]
# Ordered from least to most severe (a sort key, and the vocabulary of Finding.severity).
SEVERITIES: tuple[str, ...] = ("informational", "low", "medium", "high", "critical")


class AnomalyClass(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    title: str = Field(min_length=1)
    severity: Severity
    engine: Literal["sigma", "detector", "both"]
    config: tuple[str, ...] = ()
    mitre: tuple[str, ...] = Field(min_length=1)
    description: str = Field(min_length=1)
    # Alerting Sigma rules of the class whose level is not `severity` (the reason is a comment
    # in anomalies.yml).
    rule_levels: dict[str, Severity] = {}

    @property
    def runbook(self) -> str:
        """Repository path of the class's runbook."""
        return f"docs/runbooks/{self.name}.md"

    @property
    def sigma(self) -> bool:
        return self.engine in ("sigma", "both")

    @property
    def detector(self) -> bool:
        return self.engine in ("detector", "both")

    def rule_level(self, rule_name: str) -> str:
        """The `level` an alerting Sigma rule of this class must carry."""
        return self.rule_levels.get(rule_name, self.severity)


@cache
def catalogue() -> dict[str, AnomalyClass]:
    """Class name -> its facts, in the file's order."""
    try:
        data = yamlio.load(CATALOGUE.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SecretSightError(f"cannot load the anomaly catalogue: {exc}",
                               file=str(CATALOGUE)) from exc
    if not isinstance(data, dict):
        raise SecretSightError("the anomaly catalogue must be a mapping", file=str(CATALOGUE))
    out: dict[str, AnomalyClass] = {}
    for name, facts in data.items():
        try:
            out[name] = AnomalyClass.model_validate({"name": name, **(facts or {})})
        except ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
            raise SecretSightError(f"anomaly {name!r}: {details}", file=str(CATALOGUE)) from exc
    return out


def anomaly(name: str) -> AnomalyClass:
    """The facts of one class; KeyError for a name that is not a class."""
    return catalogue()[name]


def names() -> tuple[str, ...]:
    return tuple(catalogue())


def markdown_table() -> str:
    """The catalogue as the table in docs/rules.md ("Anomaly classes"), so the doc shows the
    catalogue's facts verbatim (a test compares them)."""
    lines = ["| class | title | severity | engine | ATT&CK | tuned by | runbook |",
             "|---|---|---|---|---|---|---|"]
    for c in catalogue().values():
        keys = ", ".join(f"`{k}`" for k in c.config) or "—"
        lines.append(f"| `{c.name}` | {c.title} | {c.severity} | {c.engine} | "
                     f"{', '.join(c.mitre)} | {keys} | [{c.name}.md](runbooks/{c.name}.md) |")
    return "\n".join(lines) + "\n"
