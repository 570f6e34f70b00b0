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


def _jittered(events: list[dict], seconds: float) -> list[dict]:
    """The events in time order, then each adjacent pair less than `seconds` apart swapped
    (a Vault response written after a later request's): out of order, within the reorder lag."""
    from secretsight.engine.table import parse_zoned_ts

    out = sorted(events, key=lambda e: parse_zoned_ts(e["@timestamp"]) or 0.0)
    swapped = 0
    for i in range(0, len(out) - 1, 2):
        a, b = (parse_zoned_ts(e["@timestamp"]) for e in out[i:i + 2])
        if a is not None and b is not None and 0 < b - a < seconds:
            out[i], out[i + 1] = out[i + 1], out[i]
            swapped += 1
    assert swapped, "the scenario should have events close enough to swap"
    return out


@pytest.mark.parametrize("scenario", ["vault_first_path_access", "demo"])
def test_late_events_within_the_lag_keep_the_streaming_pass(
    harness: Harness, scenario: str
) -> None:
    """Events a little out of order are put back in (time, arrival) order by the reorder buffer:
    the pass that runs while loading stays usable and finds what the sorted replay finds."""
    from secretsight.engine import Engine
    from secretsight.engine.tap import Tap, load_detectors

    events, _ = harness.events(scenario, "python")
    config = harness.config(scenario)
    late = _jittered(events, Tap.REORDER_LAG)
    tap = Tap(load_detectors(config))
    engine = Engine(config)
    engine.load(late, observe=tap.feed)
    tap.close()
    assert tap.usable
    streamed = tap.findings + tap.detectors.finish()
    sorted_pass = load_detectors(config)
    expected = [f for e in engine.iter_events() for f in sorted_pass.process(e)]
    expected += sorted_pass.finish()
    assert [f.to_json() for f in streamed] == [f.to_json() for f in expected]
    assert expected, "the scenario should produce detector findings"


def test_an_event_later_than_the_lag_abandons_the_streaming_pass(harness: Harness) -> None:
    from secretsight.engine import Engine
    from secretsight.engine.tap import Tap, load_detectors

    events, _ = harness.events("vault_harvest", "python")
    config = harness.config("vault_harvest")
    tap = Tap(load_detectors(config))
    Engine(config).load(events[1:] + events[:1], observe=tap.feed)  # the first event last
    assert not tap.usable and not tap.findings


class _Order:
    """Stands in for the detectors to record the order the reorder buffer releases events in."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def process(self, event: dict) -> list:
        self.ids.append(event["event"]["id"])
        return []


def test_the_reorder_buffer_releases_in_time_then_arrival_order(harness: Harness) -> None:
    from secretsight.engine import Engine
    from secretsight.engine.tap import Tap

    events, _ = harness.events("demo", "python")
    late = _jittered(events, Tap.REORDER_LAG)
    order = _Order()
    tap = Tap(order)
    engine = Engine(harness.config("demo"))
    engine.load(late, observe=tap.feed)
    tap.close()
    assert tap.usable
    assert order.ids == [e["event"]["id"] for e in engine.iter_events()]
