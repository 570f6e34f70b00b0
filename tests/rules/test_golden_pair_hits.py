"""Rules against the normalizer's golden events: real-format audit lines, normalized.

`golden_hits.yml` lists, per golden case, exactly which alerting rules fire when that case's
events alone are replayed on the embedded engine. The golden files belong to the normalizer;
a case that disappears from them is skipped (with its name), not failed.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from secretsight.rules import load_rules

HERE = Path(__file__).resolve().parent
GOLDEN = HERE.parent / "golden"
EXPECTED: dict[str, list[str]] = yaml.safe_load((HERE / "golden_hits.yml").read_text("utf-8"))


@cache
def _golden(source: str) -> dict[str, list[dict[str, Any]]]:
    path = GOLDEN / f"{source}.yml"
    if not path.is_file():
        return {}
    cases = yaml.safe_load(path.read_text("utf-8")) or []
    return {c["id"]: [i["event"] for i in c.get("expect", []) if "event" in i] for c in cases}


@cache
def _ruleset():
    return load_rules()


@pytest.mark.parametrize("key", sorted(EXPECTED), ids=sorted(EXPECTED))
def test_golden_case_fires_exactly(key: str) -> None:
    engine_mod = pytest.importorskip("secretsight.engine", reason="secretsight.engine missing")
    source, _, case_id = key.partition("/")
    events = _golden(source).get(case_id)
    if not events:
        pytest.skip(f"golden case {key} not found in tests/golden/{source}.yml")
    engine = engine_mod.Engine()
    engine.load(events)
    findings = engine.run(_ruleset())
    assert [str(e) for e in engine.errors] == []
    assert sorted({f.rule_name for f in findings}) == EXPECTED[key]
