"""`replay(jobs=2)` runs the detectors in a second process (`engine.tap.TapProcess`): the same
findings, incidents, refusals and counts as in one process, on every scenario and on the inputs
that make the streaming pass unusable (a late event, a duplicate) or take pickle's path."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from support.harness import Harness

from secretsight.engine.replay import ReplayResult, replay
from secretsight.engine.tap import Tap, TapProcess, load_detectors
from secretsight.scenarios import SCENARIOS


def _outcome(result: ReplayResult) -> dict[str, Any]:
    return {
        "findings": [json.dumps(f.to_json(), sort_keys=True) for f in result.findings],
        "incidents": [json.dumps(f.to_json(), sort_keys=True) for f in result.incidents],
        "events": result.events, "duplicates": result.duplicates,
        "detectors": result.detectors, "rejected": result.rejected,
        "errors": [str(e) for e in result.errors],
    }


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_second_process_gives_the_same_outcome(harness: Harness, scenario: str) -> None:
    events, _ = harness.events(scenario, "python")
    config = harness.config(scenario)
    rules = harness.ruleset(config)
    one = replay(events, config, rules, jobs=1)
    two = replay(events, config, rules, jobs=2)
    assert _outcome(two) == _outcome(one)


def test_a_late_event_and_a_duplicate_fall_back_to_the_sorted_pass(harness: Harness) -> None:
    """The worker abandons its pass; the detectors then run here over the sorted events."""
    events, _ = harness.events("vault_harvest", "python")
    config = harness.config("vault_harvest")
    rules = harness.ruleset(config)
    for delivered in (events[1:] + events[:1], events + events[:3]):
        one = replay(delivered, config, rules, jobs=1)
        two = replay(delivered, config, rules, jobs=2)
        assert _outcome(two) == _outcome(one)
        assert one.findings


def _streamed(tap: Tap | TapProcess, events: list[dict[str, Any]]) -> Any:
    from secretsight.engine.table import parse_zoned_ts

    timed = sorted(((parse_zoned_ts(e["@timestamp"]), e) for e in events),
                   key=lambda pair: pair[0] or 0.0)  # in time order: a usable pass
    for n, (ts, event) in enumerate(timed):
        tap.feed(event, ts, n)
    tap.close()
    return tap.result()


def test_events_orjson_refuses_travel_pickled(harness: Harness) -> None:
    """An integer beyond 64 bits (the stdlib parser reads one) cannot be orjson'd: that event
    goes alone, pickled, in its place in the stream; the detectors see the same events."""
    events, _ = harness.events("vault_first_path_access", "python")
    config = harness.config("vault_first_path_access")
    odd = copy.deepcopy(events)
    for event in odd[::7]:
        event.setdefault("vault", {})["token_ttl"] = 2**70
    here = _streamed(Tap(load_detectors(config)), odd)
    there = _streamed(TapProcess(config), odd)
    assert here is not None and there is not None
    assert [f.to_json() for f in there.findings] == [f.to_json() for f in here.findings]
    assert (there.names, there.rejected) == (here.names, here.rejected)
    assert here.findings


def test_refused_events_are_counted_the_same(harness: Harness) -> None:
    """Events the detectors refuse (a bad user field) are counted by reason in both."""
    events, _ = harness.events("demo", "python")
    config = harness.config("demo")
    odd = copy.deepcopy(events)
    for event in odd[::5]:
        event["user"] = "bob"
    here = _streamed(Tap(load_detectors(config)), odd)
    there = _streamed(TapProcess(config), odd)
    assert here is not None and there is not None
    assert here.rejected
    assert (there.rejected, [f.to_json() for f in there.findings]) == (
        here.rejected, [f.to_json() for f in here.findings])


def test_a_worker_that_dies_leaves_the_pass_to_the_caller() -> None:
    from secretsight.config import Config

    tap = TapProcess(Config())
    assert tap._worker.pid is not None
    tap._worker.kill()
    tap._worker.join()
    tap.feed({"@timestamp": "2026-01-01T00:00:00Z"}, 1.0, 1)
    tap.close()
    assert tap.result() is None
    assert not tap.usable
