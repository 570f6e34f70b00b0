"""`replay(jobs=2)` runs the detectors in a second process (`engine.tap.LoadProcess`), which
also inserts the rows into a database file: the same rows, findings, incidents, refusals and
counts as in one process, on every scenario (events given as dicts, or with their cells as
`scan` reads them) and on the inputs that make the streaming pass unusable (a late event, a
duplicate) or that orjson refuses."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from support.harness import Harness

from secretsight.engine import Engine, table
from secretsight.engine.replay import ReplayResult, replay
from secretsight.engine.tap import LoadProcess, Tap, load_detectors
from secretsight.normalize import Stats, iter_files
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
    # on a file, the worker inserts the rows itself
    assert _outcome(replay(events, config, rules, jobs=2, on_disk=True)) == _outcome(one)
    # as `scan` reads them: Vault events with their cells (deduplicated, as scan does)
    files = harness.generated(scenario).files
    unique = list(iter_files(files, stats=Stats()))
    plain = replay(unique, config, rules, jobs=1)
    for jobs, on_disk in ((1, False), (2, False), (2, True)):
        celled = iter_files(files, stats=Stats(), cells=True)
        assert _outcome(replay(celled, config, rules, jobs=jobs, on_disk=on_disk)) == _outcome(
            plain), (jobs, on_disk)


def test_a_late_event_and_a_duplicate_fall_back_to_the_sorted_pass(harness: Harness) -> None:
    """The worker abandons its pass; the detectors then run here over the sorted events."""
    events, _ = harness.events("vault_harvest", "python")
    config = harness.config("vault_harvest")
    rules = harness.ruleset(config)
    for delivered in (events[1:] + events[:1], events + events[:3]):
        one = replay(delivered, config, rules, jobs=1)
        for on_disk in (False, True):
            two = replay(delivered, config, rules, jobs=2, on_disk=on_disk)
            assert _outcome(two) == _outcome(one)
        assert one.findings


def _timed(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """In time order: a usable streaming pass."""
    return sorted(events, key=lambda e: table.parse_zoned_ts(e["@timestamp"]) or 0.0)


def _here(config: Any, events: list[dict[str, Any]]) -> tuple[list[Any], Any]:
    tap = Tap(load_detectors(config))
    rows = list(table.rows(events, 1, tap.feed))
    tap.close()
    return rows, tap.result()


def test_a_worker_loads_the_database_file_as_the_engine_does(
        harness: Harness, tmp_path: Any) -> None:
    """The same table, byte for byte, and the same counts, handed over to `Engine.adopt`;
    rows loaded after that are checked for duplicates of the adopted ones."""
    events, _ = harness.events("vault_harvest", "python")
    config = harness.config("vault_harvest")
    here = Engine(config, database=str(tmp_path / "here.db"))
    here.load(events)
    worker = LoadProcess(config, detectors=False, database=str(tmp_path / "w.db"))
    state = worker.load(events)
    assert worker.result() is None
    assert state == here.state()
    there = Engine(config, database=str(tmp_path / "w.db"), create=False)
    there.adopt(state)
    dump = "SELECT * FROM events ORDER BY _id"
    assert there.conn.execute(dump).fetchall() == here.conn.execute(dump).fetchall()
    assert there.dedupe() == 0
    there.load(events[:5])  # their keys were seen by the worker, not by this engine
    assert there.dedupe() == 5
    assert there.count == here.count
    worker = LoadProcess(config)
    with pytest.raises(ValueError, match="no database"):
        worker.load(events)
    worker.stop()


def _there(config: Any, events: list[dict[str, Any]]) -> tuple[list[Any], Any]:
    worker = LoadProcess(config)
    rows = list(table.rows(events, 1, worker.feed))
    worker.close()
    return rows, worker.result()


def _same_in_a_file(config: Any, events: list[Any], here: Any, path: Any) -> None:
    """A worker loading `path` (rows built here, sent with their events): the table
    `Engine.load` makes, and the detectors' outcome `here` (a `Tap`'s)."""
    worker = LoadProcess(config, database=str(path / "w.db"))
    state = worker.load(events)
    there = worker.result()
    engine = Engine(config, database=str(path / "e.db"))
    engine.load(events)
    assert state == engine.state()
    dump = "SELECT * FROM events ORDER BY _id"
    loaded = Engine(config, database=str(path / "w.db"), create=False)
    assert loaded.conn.execute(dump).fetchall() == engine.conn.execute(dump).fetchall()
    assert there is not None
    assert (there.names, there.rejected, [f.to_json() for f in there.findings]) == (
        here.names, here.rejected, [f.to_json() for f in here.findings])


def test_events_orjson_refuses_travel_pickled(harness: Harness, tmp_path: Any) -> None:
    """An integer beyond 64 bits (the stdlib parser reads one) cannot be orjson'd: that event
    goes alone, pickled, in its place in the stream; the detectors see the same events."""
    events, _ = harness.events("vault_first_path_access", "python")
    config = harness.config("vault_first_path_access")
    odd = copy.deepcopy(events)
    for event in odd[::7]:
        event.setdefault("vault", {})["token_ttl"] = 2**70
    rows_here, here = _here(config, _timed(odd))
    rows_there, there = _there(config, _timed(odd))
    assert rows_there == rows_here
    assert here is not None and there is not None
    assert [f.to_json() for f in there.findings] == [f.to_json() for f in here.findings]
    assert (there.names, there.rejected) == (here.names, here.rejected)
    assert here.findings
    # into a file: SQLite refuses 2**70 (in one process too); a key orjson refuses instead
    odd = copy.deepcopy(events)
    for event in odd[::7]:
        event["x_outside_the_schema"] = {1: "one"}
    _, here = _here(config, _timed(odd))
    assert here is not None
    _same_in_a_file(config, _timed(odd), here, tmp_path)


def test_refused_events_are_counted_the_same(harness: Harness, tmp_path: Any) -> None:
    """Events the detectors refuse (a bad user field) are counted by reason in both."""
    events, _ = harness.events("demo", "python")
    config = harness.config("demo")
    odd = copy.deepcopy(events)
    for event in odd[::5]:
        event["user"] = "bob"
    rows_here, here = _here(config, _timed(odd))
    rows_there, there = _there(config, _timed(odd))
    assert rows_there == rows_here
    assert here is not None and there is not None
    assert here.rejected
    assert (there.rejected, [f.to_json() for f in there.findings]) == (
        here.rejected, [f.to_json() for f in here.findings])
    _same_in_a_file(config, _timed(odd), here, tmp_path)


def test_a_worker_that_dies_is_an_error(harness: Harness) -> None:
    """Its findings are lost: the scan cannot go on without them."""
    from secretsight.errors import SecretSightError

    events, _ = harness.events("vault_harvest", "python")
    worker = LoadProcess(harness.config("vault_harvest"))
    worker._worker.kill()
    with pytest.raises(SecretSightError, match="ended unexpectedly"):
        for _ in table.rows(events * 3, 1, worker.feed):
            pass
        worker.result()
    worker.stop()


def test_a_worker_that_dies_while_loading_the_file_is_an_error(
        harness: Harness, tmp_path: Any) -> None:
    from secretsight.errors import SecretSightError

    events, _ = harness.events("vault_harvest", "python")
    worker = LoadProcess(harness.config("vault_harvest"), database=str(tmp_path / "events.db"))
    worker._worker.kill()
    with pytest.raises(SecretSightError, match="ended unexpectedly"):
        worker.load(events * 3)
    worker.stop()


def test_big_events_do_not_block_either_side(harness: Harness, tmp_path: Any) -> None:
    """Batches far larger than the pipes: the writer threads keep both sides reading, so
    neither waits forever on the other."""
    events, _ = harness.events("vault_first_path_access", "python")
    config = harness.config("vault_first_path_access")
    big = copy.deepcopy(_timed(events)[:600])
    for n, event in enumerate(big):
        event["user"]["roles"] = [f"role-\u00e9-{n}-{k}" * 40 for k in range(60)]  # ~6x as JSON
    rows_here, here = _here(config, big)
    rows_there, there = _there(config, big)
    assert rows_there == rows_here
    assert here is not None and there is not None
    assert [f.to_json() for f in there.findings] == [f.to_json() for f in here.findings]
    _same_in_a_file(config, big, here, tmp_path)


def test_the_worker_stops_taking_events_once_its_pass_is_unusable(harness: Harness) -> None:
    """A duplicate early on: the worker says so (before its outcome), and once that is
    read here, events are no longer sent."""
    events, _ = harness.events("vault_harvest", "python")
    worker = LoadProcess(harness.config("vault_harvest"))
    for _ in table.rows(_timed(events)[:3] * 2, 1, worker.feed):
        pass
    assert worker.result() is None
    assert not worker.usable
    worker.feed(events[0], 0.0, None)  # dropped here: the worker is gone


class _Order:
    """Stands in for the detectors: records the events in the order they are released."""

    def __init__(self) -> None:
        self.ids: list[Any] = []

    def process(self, event: dict[str, Any]) -> list[Any]:
        self.ids.append(event["event"]["id"])
        return []


def _fed(feed_many: bool, items: list[tuple[Any, ...]]) -> tuple[Tap, list[Any]]:
    """The tap after `close()`, and what it released before it."""
    tap = Tap(_Order())
    if feed_many:  # in two batches, as the worker feeds them
        half = len(items) // 2
        for part in (items[:half], items[half:]):
            tap.feed_many([e for e, _, _ in part], [t for _, t, _ in part],
                          [k for _, _, k in part])
    else:
        for event, ts, key in items:
            tap.feed(event, ts, key)
    before = list(tap.detectors.ids)
    tap.close()
    return tap, before


@pytest.mark.parametrize("case", ["in order", "late within the lag", "untimed", "late",
                                  "duplicate"])
def test_feeding_a_batch_releases_as_feeding_each_event(harness: Harness, case: str) -> None:
    """`Tap.feed_many` (the load worker's) is `feed` of each event in turn: the same release
    order, the same abandoned passes."""
    events, _ = harness.events("vault_harvest", "python")
    timed = _timed(events)
    items = [(e, table.parse_zoned_ts(e["@timestamp"]), n) for n, e in enumerate(timed)]
    if case == "late within the lag":  # neighbours a second apart swapped
        swapped = 0
        for i in range(0, len(items) - 1, 2):
            a, b = items[i], items[i + 1]
            if 0 < b[1] - a[1] < 1:
                items[i], items[i + 1] = b, a
                swapped += 1
        assert swapped
    elif case == "untimed":
        items[3] = (items[3][0], None, items[3][2])
    elif case == "late":  # later than the lag: abandoned
        items = items[1:] + items[:1]
    elif case == "duplicate":
        items = items + items[:1]
    (one, one_before), (many, many_before) = _fed(False, items), _fed(True, items)
    assert many.usable == one.usable == (case not in ("late", "duplicate"))
    assert many_before == one_before  # released while feeding, not only by close()
    assert many.detectors.ids == one.detectors.ids
    assert many._released == one._released and many._newest == one._newest
    if one.usable:
        assert one_before and len(one_before) < len(items)


def _solo_child(send: Any, path: str) -> None:
    import sqlite3

    from secretsight.engine.solo import single_threaded

    done = single_threaded()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (a TEXT, b REAL)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(f"x{i}", float("nan")) for i in range(1000)])
    conn.commit()
    send.send((done, conn.execute("SELECT COUNT(*), COUNT(b), MAX(a) FROM t").fetchone()))
    conn.close()


def test_a_forked_process_runs_sqlite_single_threaded(tmp_path: Any) -> None:
    """What the load worker does first (engine/solo.py): SQLite reconfigured in a forked
    process, which then uses it as before; this process's SQLite is untouched."""
    import multiprocessing
    import sqlite3

    here = sqlite3.connect(":memory:")  # open across the fork, as in a test run
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_solo_child, args=(send, str(tmp_path / "t.db")))
    child.start()
    done, counts = receive.recv()
    child.join()
    assert child.exitcode == 0
    assert done  # Linux, Python's own libsqlite3
    assert counts == (1000, 0, "x999")  # NaN bound as NULL
    assert here.execute("SELECT 1").fetchone() == (1,)
