"""The watch loop hands the detectors a whole read at once (StreamingDetectors.process_many):
the same findings, counts and refusals as one process() call per event, for every kind of
event a read may mix: taken, repeated in the buffer, late, out of range, without a time,
without a zone, not an object."""

from __future__ import annotations

import copy
from typing import Any

from support.event_builders import at, ev, reads

from secretsight.config import Config
from secretsight.detect import open_store
from secretsight.detect.timeguard import OUT_OF_RANGE
from secretsight.findings import Finding
from secretsight.stream import StreamingDetectors, open_detectors
from secretsight.watch.outputs import finding_json
from secretsight.watch.runner import Watcher, process_each


def _mixed() -> list[Any]:
    """A read of every kind: enough reads of one identity for bulk_read and the rules to fire,
    interleaved with what the buffer and the time guard refuse."""
    bulk = reads(0, 80, user="bulk", every=0.5, paths=[f"secret/app/p{i}" for i in range(40)])
    request = copy.deepcopy(bulk[10])  # the same operation's request entry: a buffer duplicate
    request["vault"] = {"entry_type": "request"}
    response = copy.deepcopy(bulk[11])  # the response again, later: a duplicate once released
    response["vault"] = {"entry_type": "response"}
    late = ev(at(-120), user="late", path="secret/late")  # 2 min behind, lateness 30 s
    forged = ev("9999-12-31T23:59:59.000Z", user="bulk", path="secret/app/p0")
    no_time = ev(at(5), user="bulk", path="secret/app/p1")
    del no_time["@timestamp"]
    naive = ev(at(6)[:-1], user="naive", path="secret/naive")  # no zone: detectors only
    bad_id = ev(at(7), user="bulk", path="secret/app/p2")
    bad_id["event"]["id"] = ["not", "hashable"]
    events: list[Any] = bulk[:20] + [request, forged, no_time, "not an object", naive]
    events += bulk[20:60] + [late, bad_id, response, {"event": None}] + bulk[60:]
    events.append(ev(at(200), user="other", path="secret/x"))  # releases what is held
    return events


def _detectors() -> StreamingDetectors:
    return open_detectors(Config(), open_store(None), log=lambda m: None)


def _run(feed: str, events: list[Any]) -> dict[str, Any]:
    det = _detectors()
    out: list[Finding] = []
    accepted: list[tuple[dict[str, Any], float]] = []
    refused: list[str] = []
    if feed == "per_event":
        process_each(det, copy.deepcopy(events), out, accepted, refused)
    else:  # a generator, as the watch loop passes it
        det.process_many((e for e in copy.deepcopy(events)), out, accepted, refused)
    out.extend(det.finish())
    return {"findings": [finding_json(f) for f in out],
            "accepted": [(e["event"]["id"], ts) for e, ts in accepted],
            "refused": refused, "rejected": dict(det.rejected), "events": det.events,
            "last_ts": det.last_ts, "bound": det.buffer.bound}


def test_process_many_is_process_per_event() -> None:
    events = _mixed()
    many, each = _run("many", events), _run("per_event", events)
    assert many == each
    # the read exercised every path: findings, a buffer duplicate, late, refused times
    assert many["findings"]
    assert {"late", OUT_OF_RANGE, "duplicate"} <= set(many["rejected"])
    assert many["refused"].count("late") == 1 and many["refused"].count(OUT_OF_RANGE) == 1
    assert many["events"] == len(many["accepted"])


def _watch(reads_of: list[list[Any]]) -> tuple[list[dict[str, Any]], Watcher]:
    det = _detectors()
    w = Watcher(det, files=[], outputs=[], log=lambda m: None)
    for read in reads_of:
        w.handle_events("in", copy.deepcopy(read))
    w.pending.extend(det.finish())
    return [finding_json(f) for f in w.pending], w


def test_one_read_counts_what_one_read_per_event_counts() -> None:
    events = _mixed()
    events.insert(30, copy.deepcopy(events[25]))  # the same record again: the loop's repeat
    whole, w1 = _watch([events])
    single, w2 = _watch([[e] for e in events])
    assert whole == single and whole
    m1, m2 = w1.metrics, w2.metrics
    assert m1.duplicates == m2.duplicates == {"in": 1}
    assert m1.parse_errors == m2.parse_errors
    assert m1.parse_errors[("in", OUT_OF_RANGE)] == 1
    assert m1.parse_errors[("in", "invalid_event")] >= 3  # late, no time, not an object
    assert m1.events_by_source == m2.events_by_source
    assert m1.reads_by_identity == m2.reads_by_identity
    assert w1.since_commit == w2.since_commit == sum(m1.events_by_source.values())
    assert list(w1.recent_order) == list(w2.recent_order)
