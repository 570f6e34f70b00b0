"""The watermark: release order, late events, duplicates folded as the engine's dedupe, and
held events surviving a commit and a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from secretsight.detect import open_store
from secretsight.detect.state import StateCache
from secretsight.stream.reorder import Reorder


def _e(ts: float, eid: str, entry: str = "response") -> dict[str, Any]:
    return {"@timestamp": str(ts), "event": {"id": eid, "dataset": "vault.audit"},
            "vault": {"entry_type": entry}}


def _ids(batches: list[tuple[float, list[dict[str, Any]]]]) -> list[tuple[float, list[str]]]:
    return [(ts, [e["event"]["id"] for e in events]) for ts, events in batches]


def test_released_in_time_order_once_the_watermark_passes() -> None:
    r = Reorder(lateness=10)
    assert r.add(_e(100, "a"), 100) == []
    assert r.add(_e(95, "b"), 95) == []
    assert r.add(_e(100, "c"), 100) == []
    assert _ids(r.add(_e(111, "d"), 111)) == [(95, ["b"]), (100, ["a", "c"])]
    assert _ids(r.release(None)) == [(111, ["d"])]


def test_an_event_older_than_the_watermark_is_late_and_dropped() -> None:
    r = Reorder(lateness=10)
    r.add(_e(100, "a"), 100)
    r.add(_e(120, "b"), 120)  # bound 110: "a" released
    assert r.add(_e(105, "late"), 105) == []
    assert r.late == 1
    assert _ids(r.release(None)) == [(120, ["b"])]


def test_duplicates_keep_the_most_informative_entry() -> None:
    r = Reorder(lateness=10)
    r.add(_e(100, "x", "request"), 100)
    r.add(_e(100.5, "x", "response"), 100.5)  # replaces the request
    r.add(_e(101, "x", "request"), 101)  # worse than what is held: dropped
    [(ts, [kept])] = r.release(None)
    assert (ts, kept["vault"]["entry_type"]) == (100.5, "response")
    assert r.duplicates == 2
    r.add(_e(200, "x", "response"), 200)  # its original was released: dropped
    assert r.release(None) == []


def test_the_memory_of_released_ids_keeps_exactly_the_last_ones(monkeypatch) -> None:
    # RELEASED_KEYS bounds the memory: a copy of one of the last N ids released is dropped,
    # a copy of an older one is held again (then remembered as the newest)
    monkeypatch.setattr("secretsight.stream.reorder.RELEASED_KEYS", 3)
    r = Reorder(lateness=0)
    for i, eid in enumerate("abcd"):
        r.add(_e(100 + i, eid), 100 + i)
    r.release(None)  # released in order a, b, c, d: "a" forgotten
    assert r.released == {hash(("vault.audit", x)) for x in "bcd"}
    assert r.add(_e(110, "b"), 110) == [] and r.duplicates == 1  # remembered: dropped
    r.add(_e(111, "a"), 111)  # forgotten: held, released again
    assert _ids(r.release(None)) == [(111, ["a"])]
    assert list(r.released_order) == [hash(("vault.audit", x)) for x in "cda"]
    assert set(r.released) == set(r.released_order)


def test_held_events_survive_a_commit_and_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    store = open_store(url)
    cache = StateCache(store, namespace="default", max_paths=10)
    r = Reorder(lateness=10, cache=cache)
    for ts, eid in [(100, "a"), (104, "b"), (103, "c")]:
        r.add(_e(ts, eid), ts)
    r.flush()
    cache.flush()
    assert _ids(r.add(_e(111, "d"), 111)) == [(100, ["a"])]  # after the commit: not kept
    store.close()

    store = open_store(url)
    again = Reorder(lateness=10, cache=StateCache(store, namespace="default", max_paths=10))
    assert again.bound is None or again.bound < 100  # the committed state: nothing released
    assert _ids(again.add(_e(111, "d"), 111)) == [(100, ["a"])]
    assert _ids(again.release(None)) == [(103, ["c"]), (104, ["b"]), (111, ["d"])]
    store.close()


def test_a_forged_time_neither_moves_the_watermark_nor_reaches_the_rules() -> None:
    from secretsight.config import Config
    from secretsight.stream import open_detectors

    det = open_detectors(Config(), open_store(None), log=lambda m: None)
    base = {"event": {"dataset": "vault.audit", "action": "read"},
            "secretsight": {"category": "secret"}, "secret": {"operation": "read"},
            "user": {"id": "u1", "name": "u1"}}
    det.process({**base, "@timestamp": "2026-03-01T10:00:00Z",
                 "event": {**base["event"], "id": "a"}})
    det.process({**base, "@timestamp": "9999-12-31T00:00:00Z",
                 "event": {**base["event"], "id": "forged"}})
    assert det.rejected["out_of_range"] == 1 and det.last_rejected == "out_of_range"
    assert det.buffer.newest is not None and det.buffer.newest < 1e10
    det.process({**base, "@timestamp": "2026-03-01T10:00:05Z",
                 "event": {**base["event"], "id": "b"}})
    assert det.buffer.late == 0


def test_an_idle_live_input_releases_what_the_buffer_holds() -> None:
    """A harvest that stops: its last `lateness` of events would wait for traffic to resume;
    once the input has been idle that long on the wall clock, tick() releases them and the
    crossing is reported. An event older than the newest arriving afterwards is late."""
    from support.event_builders import at, ev

    from secretsight.config import Config
    from secretsight.stream import open_detectors

    det = open_detectors(Config(), open_store(None), rules=False, log=lambda m: None)
    wall = [1000.0]
    det.inner.clock = lambda: wall[0]
    found = []
    for k in range(60):  # 60 reads of 40 paths within 59 s: more than 50 in 5 minutes
        found += det.process(ev(at(k), user="harvester", path=f"secret/p{k % 40}"))
    assert not [f for f in found if f.anomaly == "bulk_read"]  # the crossing is still held
    wall[0] += 29
    assert not [f for f in det.tick(wall[0]) if f.anomaly == "bulk_read"]
    wall[0] += 2  # idle for longer than stream.lateness (30 s)
    assert [f.user_id for f in det.tick(wall[0]) if f.anomaly == "bulk_read"] == ["harvester"]
    assert not det.buffer.holding()
    det.process(ev(at(58), user="harvester", path="secret/late"))
    assert det.buffer.late == 1


def test_mixed_in_order_and_late_arrivals_release_as_sorted_input() -> None:
    """In-order events take the deque, the others the heap: whatever the mix (bursts in order,
    shuffles inside the lateness, equal times, duplicates), the released sequence is the
    sorted, de-duplicated input's, which a plain sort of the same arrivals computes here."""
    import random

    from secretsight.engine.dedupe import rank

    rng = random.Random(13)
    for _ in range(200):
        arrivals: list[tuple[float, dict[str, Any]]] = []
        t = 1000.0
        for i in range(rng.randrange(1, 60)):
            t += rng.choice([0, 0, 0.5, 1, 3])
            ts = t - rng.choice([0, 0, 0, 0.5, 2, 4])  # some arrive behind the newest
            eid = f"e{rng.randrange(i + 1)}"  # repeats: duplicates, some better ranked
            arrivals.append((ts, _e(ts, eid, rng.choice(["request", "response"]))))
        r = Reorder(lateness=5)
        got: list[tuple[float, list[str]]] = []
        for ts, event in arrivals:
            got += _ids(r.add(event, ts))
        got += _ids(r.release(None))

        # the model: the first of each id stays unless a higher-ranked copy arrives while it
        # is held; nothing arrives late (disorder < lateness), and none after its release...
        newest, bound = -1e9, -1e9
        held: dict[str, tuple[float, int, dict[str, Any]]] = {}
        released: set[str] = set()
        out: list[tuple[float, int, str]] = []
        for seq, (ts, event) in enumerate(arrivals):
            eid = event["event"]["id"]
            if eid not in released:
                old = held.get(eid)
                if old is None or rank(event) > rank(old[2]):
                    held[eid] = (ts, seq, event)
            if ts > newest:
                newest = ts
                bound = max(bound, newest - 5)
                for k, (hts, hseq, _) in sorted(held.items(), key=lambda kv: kv[1][:2]):
                    if hts < bound:
                        out.append((hts, hseq, k))
                        released.add(k)
                        del held[k]
        out += sorted((hts, hseq, k) for k, (hts, hseq, _) in held.items())
        want: list[tuple[float, list[str]]] = []
        for ts, _, k in out:
            if want and want[-1][0] == ts:
                want[-1][1].append(k)
            else:
                want.append((ts, [k]))
        assert got == want
        assert r.late == 0


def test_a_flush_writes_the_entries_held_since_the_previous_one() -> None:
    """Each flush writes, as one chunk in arrival order, the entries added since the previous
    flush and still held, whatever mix of in-order, shuffled, duplicate and late arrivals came
    before, and deletes only the chunks nothing is held from: the current chunk, emptied by a
    release and then added to before the flush, is kept. A restart from that commit holds
    exactly the entries the buffer holds: none it released before the commit."""
    import random

    from secretsight.stream.codec import unpack
    from secretsight.stream.reorder import NS

    def held(r: Reorder) -> set[tuple[float, int, str]]:
        return {(e[0], e[1], e[2]["event"]["id"]) for e in [*r.queue, *r.heap]
                if e[2] is not None}

    rng = random.Random(7)
    for _ in range(60):
        store = open_store(None)
        cache = StateCache(store, namespace="default", max_paths=10)
        r = Reorder(lateness=5, cache=cache)
        added: list[list[Any]] = []  # the entries held since the last flush (the model)
        t = 1000.0
        for i in range(rng.randrange(1, 120)):
            t += rng.choice([0, 0.5, 1, 3])
            ts = t - rng.choice([0, 0, 0, 1, 4, 9])  # some behind the newest, a few late
            event = _e(ts, f"e{rng.randrange(i + 1)}", rng.choice(["request", "response"]))
            r.add(event, ts)
            added += [e for e in [*r.queue, *r.heap] if e[1] == r.seq and e[2] is event]
            if rng.random() < 0.15:
                chunk = r.chunk
                r.flush()
                want = [[e[0], e[1], e[2]] for e in added if e[2] is not None]
                written = cache.kv.get((NS, str(chunk)))
                assert (unpack(written) if want else written) == (want or None)
                assert r.chunk == chunk + bool(added)
                added = []
                cache.flush()
                again = Reorder(lateness=5, cache=StateCache(store, namespace="default",
                                                             max_paths=10))
                assert held(again) == held(r)  # (none released before is held again)
                assert (again.bound, again.newest, again.seq) == (r.bound, r.newest, r.seq)
