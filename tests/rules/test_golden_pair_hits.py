"""Rules against the normalizer's golden pairs (tests/golden): real-format audit lines, normalized.

`golden_pair_hits.yml` lists, per golden pair, exactly which alerting rules fire when that
pair's events alone are replayed on the embedded engine. The golden files belong to the
normalizer; a pair that disappears from them is skipped (with its name), not failed.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.golden_pairs import CASES

from secretsight.engine import Engine
from secretsight.rules import load_rules

HERE = Path(__file__).resolve().parent
EXPECTED: dict[str, list[str]] = yaml.safe_load(
    (HERE / "golden_pair_hits.yml").read_text("utf-8"))


@cache
def _golden_events(source: str) -> dict[str, list[dict[str, Any]]]:
    """The normalized events each golden pair of `tests/golden/<source>.yml` expects, by id."""
    return {c.id: [i["event"] for i in c.expect if "event" in i]
            for c in CASES if c.file == source}


@cache
def _ruleset():
    return load_rules()


@pytest.mark.parametrize("key", sorted(EXPECTED), ids=sorted(EXPECTED))
def test_golden_pair_fires_exactly(key: str) -> None:
    source, _, case_id = key.partition("/")
    events = _golden_events(source).get(case_id)
    if not events:
        pytest.skip(f"golden pair {key} not found in tests/golden/{source}.yml")
    engine = Engine()
    engine.load(events)
    findings = engine.run(_ruleset())
    assert [str(e) for e in engine.errors] == []
    assert sorted({f.rule_name for f in findings}) == EXPECTED[key]
