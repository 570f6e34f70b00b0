"""Forged and skewed timestamps (issue 12): an event further than the configured skew from the
stream's watermark, or ahead of the wall clock, or before `not_before`, is refused as
`out_of_range` before any detector sees it (the same driver serves scan and watch); a late
event inside the skew cannot invert a window."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from support.event_builders import at, ev, reads

from secretsight.config import Config
from secretsight.detect import Detectors, open_store
from secretsight.detect.timeguard import OUT_OF_RANGE
from secretsight.limits import Limits, TimeSanity
from secretsight.watch.outputs import StdoutOutput
from secretsight.watch.runner import Watcher

REPO = Path(__file__).resolve().parents[2]
FORGED = {"year_9999": "9999-12-31T23:59:59.000Z", "year_0001": "0001-01-01T00:00:00.000Z"}


def _run(events: list[dict], config: Config | None = None) -> tuple[list[dict], Watcher]:
    sink = io.StringIO()
    det = Detectors(config or Config(), open_store(None))
    w = Watcher(det, files=[], outputs=[StdoutOutput(sink)])
    w.handle_events("test", events)
    w.pending.extend(det.finish())
    w.commit()
    return [json.loads(x) for x in sink.getvalue().splitlines()], w


def _history(user: str) -> list[dict]:
    """An identity seen every day for 20 days: known, busy, never dormant."""
    return [e for d in range(20) for e in reads(0, 3, user=user, day=d)]


@pytest.mark.parametrize("forged", FORGED.values(), ids=FORGED.keys())
def test_a_forged_time_for_a_busy_identity_makes_no_finding(forged: str) -> None:
    busy = _history("busy") + reads(0, 45, user="busy", every=2, day=20)  # 45: under 50
    events = busy[:-20] + [ev(forged, user="busy", path="secret/app/db")] + busy[-20:]
    found, w = _run(events)
    assert found == []
    assert w.det.rejected == {OUT_OF_RANGE: 1}
    assert w.metrics.parse_errors == {("test", OUT_OF_RANGE): 1}


@pytest.mark.parametrize("forged", FORGED.values(), ids=FORGED.keys())
def test_a_forged_first_event_does_not_set_the_watermark(forged: str) -> None:
    events = [ev(forged, user="busy", path="secret/x"), *_history("busy")]
    found, w = _run(events)
    assert found == [] and w.det.rejected == {OUT_OF_RANGE: 1}


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_future_beyond_the_skew_of_the_wall_clock_is_refused() -> None:
    now = datetime.now(UTC)
    events = [ev(_iso(now - timedelta(minutes=5)), user="a", path="secret/a"),
              ev(_iso(now + timedelta(hours=1)), user="a", path="secret/a"),  # clock drift
              ev(_iso(now + timedelta(days=2)), user="a", path="secret/a")]
    _, w = _run(events)
    assert w.det.events == 2 and w.det.rejected == {OUT_OF_RANGE: 1}


def test_late_beyond_the_skew_is_refused_and_the_skew_is_configurable() -> None:
    events = [*reads(0, 3, day=3), ev(at(0, days=1), path="secret/app/db")]  # 2 days late
    _, w = _run(events)
    assert w.det.rejected == {OUT_OF_RANGE: 1}
    tight = Config(limits=Limits(time=TimeSanity(max_skew_seconds=60)))
    _, w = _run([*reads(300, 3), ev(at(100), path="secret/app/db")], tight)  # 202 s late
    assert w.det.rejected == {OUT_OF_RANGE: 1}
    _, w = _run([*reads(300, 3), ev(at(100), path="secret/app/db")])  # default skew: in range
    assert w.det.rejected == {}


def test_late_events_inside_the_skew_cannot_invert_a_window() -> None:
    """30 reads at t=100..129, then 25 that arrive late, dated t=50..74: bulk_read fires on
    the 51st; its window must not end before it starts."""
    found, w = _run([*reads(100, 30, user="h"), *reads(50, 25, user="h")])
    bulk = [f for f in found if f["anomaly"] == "bulk_read"]
    assert len(bulk) == 1
    assert bulk[0]["window"]["start"] <= bulk[0]["window"]["end"]
    assert w.det.rejected == {}


def test_every_finding_window_is_ordered_under_shuffled_input() -> None:
    import random

    rng = random.Random(7)
    events = [e for u in ("a", "b", "c") for e in reads(0, 80, user=u, every=3)]
    rng.shuffle(events)
    found, _ = _run(events)
    assert found, "the shuffled stream must still produce findings"
    for f in found:
        assert f["window"]["start"] <= f["window"]["end"], f


def test_out_of_range_is_a_documented_reason_code() -> None:
    doc = yaml.safe_load((REPO / "tools/secretsight/schema/dispositions.yml").read_text())
    assert OUT_OF_RANGE in doc["rejected"]


def test_defaults_leave_ordinary_history_alone() -> None:
    """The wall-clock check only refuses the future: replaying last year's logs works."""
    old = datetime.now(UTC) - timedelta(days=400)
    _, w = _run([ev(_iso(old + timedelta(minutes=i)), user="a", path="secret/a")
                 for i in range(5)])
    assert w.det.rejected == {} and w.det.events == 5
