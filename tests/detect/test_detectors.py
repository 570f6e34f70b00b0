"""Each detector: cases that fire and benign cases that must stay silent, against every store.

A case is (config overrides, events, finish `now`, expected findings as (detector, user, key
evidence)). Every case also runs split in two halves with a commit and a fresh `Detectors` on
the same store in between (a restart): the findings must be the same.
"""

from __future__ import annotations

from typing import Any

import pytest
from support.detector_cases import CASES, Case

from secretsight.config import Config
from secretsight.detect import Detectors, open_store
from secretsight.findings import ANOMALY_CLASSES


def _probe(f, probe: str) -> Any:
    if probe == "user":
        return f.user_id
    if probe == "who":  # principal and credential, readable name first
        return f.who()
    return f.evidence.get(probe)


def _run(url: str | None, case: Case, split: bool) -> list[tuple[str, str | None, Any]]:
    config = Config.model_validate(case.config)
    store = open_store(url)
    try:
        det = Detectors(config, store, only=case.only)
        out = []
        half = len(case.events) // 2 if split else len(case.events)
        for e in case.events[:half]:
            out.extend(det.process(e))
        if split:
            assert det.commit({"input": half}) == []
            det = Detectors(config, store, only=case.only)  # a restart on the same store
            assert det.state_offsets()["input"] == half
            for e in case.events[half:]:
                out.extend(det.process(e))
        out.extend(det.finish(case.now))
        assert det.commit() == []
        for f in out:
            assert f.anomaly in ANOMALY_CLASSES and f.rule == f"detector/{f.rule_name}"
        return [(f.rule_name, f.user_id, _probe(f, case.probe)) for f in out]
    finally:
        store.close()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_detector_case(store_url: str | None, case: Case) -> None:
    assert _run(store_url, case, split=False) == case.expected


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_detector_case_survives_restart(durable_store_url: str, case: Case) -> None:
    """Commit half-way, restart on the same store: same findings, none repeated or lost."""
    assert _run(durable_store_url, case, split=True) == case.expected
