"""Every detection is proven by the scenarios: each alerting rule that `scan` evaluates and each
batch detector is expected to fire in at least one scenario, and the benign baseline expects
nothing. (test_scenarios.py checks the expectations hold; this checks they cover everything.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from secretsight.detect import BATCH_DETECTORS
from secretsight.rules import load_rules

EXPECT_DIR = Path(__file__).resolve().parents[1] / "scenarios"


def _expected() -> dict[str, list[dict]]:
    return {
        p.name[: -len(".expect.yml")]: yaml.safe_load(p.read_text())["findings"] or []
        for p in sorted(EXPECT_DIR.glob("*.expect.yml"))
    }


EXPECTED = _expected()
FIRED = {f["rule"] for findings in EXPECTED.values() for f in findings}
RULES = load_rules()
ALERTING = sorted(m.name for m in RULES.rules if m.emits and m.embedded)


@pytest.mark.parametrize("name", ALERTING)
def test_alerting_rule_fires_in_a_scenario(name: str) -> None:
    assert name in FIRED, f"no scenario expects rule {name} to fire: add one"


@pytest.mark.parametrize("name", BATCH_DETECTORS)
def test_detector_fires_in_a_scenario(name: str) -> None:
    assert name in FIRED, f"no scenario expects detector {name} to fire: add one"


def test_benign_baseline_expects_no_finding() -> None:
    assert EXPECTED["baseline"] == []


def test_expectations_name_only_known_rules_and_detectors() -> None:
    known = {m.name for m in RULES.rules} | set(BATCH_DETECTORS)
    assert FIRED <= known, sorted(FIRED - known)
