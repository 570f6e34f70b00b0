"""Scenario expectations (`tests/scenarios/<name>.expect.yml`) and the exact comparison."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from secretsight.findings import ANOMALY_CLASSES, Finding

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "scenarios"

Key = tuple[str, str, str | None]  # (anomaly, rule name, user)


@dataclass(frozen=True)
class Expectation:
    scenario: str
    findings: Counter[Key]


def load_expectation(name: str) -> Expectation:
    path = SCENARIO_DIR / f"{name}.expect.yml"
    data = yaml.safe_load(path.read_text("utf-8"))
    if not isinstance(data, dict) or data.get("scenario") != name:
        raise ValueError(f"{path}: `scenario: {name}` expected")
    wanted: Counter[Key] = Counter()
    for row in data.get("findings") or []:
        if set(row) != {"anomaly", "rule", "user", "count"}:
            raise ValueError(f"{path}: each finding has exactly anomaly, rule, user, count: {row}")
        if row["anomaly"] not in ANOMALY_CLASSES:
            raise ValueError(f"{path}: unknown anomaly {row['anomaly']!r}")
        wanted[(row["anomaly"], row["rule"], row["user"])] += int(row["count"])
    return Expectation(name, wanted)


def observed(findings: list[Finding]) -> Counter[Key]:
    return Counter((f.anomaly, f.rule_name or f.rule, f.user_id) for f in findings)


def diff(expected: Counter[Key], got: Counter[Key]) -> list[str]:
    """Human-readable differences; empty when equal."""
    lines = []
    for key in sorted(set(expected) | set(got), key=lambda k: tuple(str(x) for x in k)):
        if expected[key] != got[key]:
            anomaly, rule, user = key
            lines.append(
                f"{anomaly} / {rule} / {user}: expected {expected[key]}, got {got[key]}"
            )
    return lines


def describe(findings: list[Finding], key: Key, limit: int = 3) -> list[dict[str, Any]]:
    """A few findings of one key, for a failure message."""
    out = []
    for f in findings:
        if (f.anomaly, f.rule_name or f.rule, f.user_id) == key:
            out.append({"start": f.start, "end": f.end, "evidence": f.evidence})
            if len(out) >= limit:
                break
    return out
