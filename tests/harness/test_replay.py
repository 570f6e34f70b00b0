"""The replay pipeline shared by `scan` and the harness: detectors run while loading (ordered
input) or over the sorted events (anything else) with the same findings."""

from __future__ import annotations

import random

import pytest
from support.harness import Harness

from secretsight.engine.replay import replay


@pytest.mark.parametrize("scenario", ["vault_harvest", "vault_first_path_access", "demo"])
def test_shuffled_input_gives_the_same_findings(harness: Harness, scenario: str) -> None:
    events, _ = harness.events(scenario, "python")
    config = harness.config(scenario)
    rules = harness.ruleset(config)
    ordered = replay(events, config, rules)
    shuffled = list(events)
    random.Random(5).shuffle(shuffled)
    again = replay(shuffled, config, rules)
    assert [f.to_json() for f in again.findings] == [f.to_json() for f in ordered.findings]
    assert ordered.findings, "the scenario should produce findings"


def test_duplicates_are_folded_once(harness: Harness) -> None:
    events, _ = harness.events("vault_harvest", "python")
    config = harness.config("vault_harvest")
    result = replay(events + events[:10], config, harness.ruleset(config))
    assert result.duplicates == 10
    assert result.events == len(events)


@pytest.mark.parametrize("scenario", ["demo", "vault_dual_source_ip", "aws_secret_sweep",
                                      "cross_store_harvest", "k8s_secret_sweep"])
def test_group_pruning_does_not_change_findings(
    harness: Harness, scenario: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pruning only drops groups that cannot alert: with and without it, same findings."""
    from secretsight.engine import evaluate

    events, _ = harness.events(scenario, "python")
    config = harness.config(scenario)
    rules = harness.ruleset(config)
    pruned = replay(events, config, rules, detectors=False)
    evaluate._CACHE.clear()
    monkeypatch.setattr(evaluate, "_group_prune", lambda rule: None)
    full = replay(events, config, rules, detectors=False)
    evaluate._CACHE.clear()
    assert [f.to_json() for f in pruned.findings] == [f.to_json() for f in full.findings]
