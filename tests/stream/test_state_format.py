"""The rules' window state on disk: format 2 (stream/records.py: a group as runs written
once) resumes as an uninterrupted run, stays bounded, and state written by earlier releases
still loads: a stream stopped halfway, its groups rewritten as 0.3.2 wrote them (format 1:
one record per group with every entry of its window) or as 0.2.0 did (no counted range end
`hi`: every entry from `lo` on was counted), then resumed by a new process, gives the
findings of an uninterrupted run."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from support.event_streams import rule_stream

from secretsight.config import Config
from secretsight.detect import open_store
from secretsight.stream import StreamingDetectors, open_detectors
from secretsight.stream.codec import pack, unpack
from secretsight.stream.predicate import fold
from secretsight.stream.records import FORMAT, SEP, assemble, plan
from secretsight.stream.rules import NS
from secretsight.watch.outputs import finding_json


def _lines(found: list[Any]) -> list[str]:
    return sorted(json.dumps(finding_json(f), sort_keys=True) for f in found)


def _as_format_1(det: StreamingDetectors, *, without_hi: bool) -> int:
    """Replace the committed runs with the records 0.3.2 wrote (0.2.0's: without `hi`):
    `StreamEvaluator.flush` and `Group.to_state` of 0.3.2, one record per group under its
    state key holding every entry it holds in memory."""
    ev = det.evaluator
    assert ev is not None
    cache = det.inner.cache
    for key, value in cache.scan(NS):
        if value is not None and unpack(value).get("v") == FORMAT:
            cache.put(NS, key, None)
    written = 0
    for i, corr in enumerate(ev.rules.correlations):
        for g in ev._by[i].values():
            state: dict[str, Any] = {
                "k": list(g.keys), "e": corr.stored(g.entries), "b": g.base, "lo": g.lo,
                "hi": g.hi, "i": g.items, "burst": g.burst.to_state() if g.burst else None}
            if without_hi:
                del state["hi"]
            cache.put(NS, g.skey, pack({"t": "c", "r": corr.meta.name, "s": state}))
            written += 1
    cache.flush({})
    return written


@pytest.mark.parametrize("release", ["0.3.2", "0.2.0"])
def test_state_of_an_earlier_release_resumes_as_an_uninterrupted_run(
        state_url: str, release: str) -> None:
    events = rule_stream(days=4)
    config = Config()
    straight = open_detectors(config, open_store(None), incidents=False, log=lambda m: None)
    expected = _lines(straight.run(events))

    url = state_url
    half = len(events) // 2
    store = open_store(url)
    first = open_detectors(config, store, incidents=False, log=lambda m: None)
    found = [f for e in events[:half] for f in first.process(e)]
    first.commit({})
    assert _as_format_1(first, without_hi=release == "0.2.0"), "open correlation groups"
    store.close()

    store = open_store(url)
    second = open_detectors(config, store, incidents=False, log=lambda m: None)
    # resumed in several commits: the format-1 records become runs as their groups change
    for k, e in enumerate(events[half:]):
        found += second.process(e)
        if k % 500 == 499:
            second.commit({})
    found += second.finish()
    second.commit({})
    left = [k for k, v in store.scan_kv(f"default/{NS}") if v is not None and k[0] == "c"
            and unpack(v).get("v") != FORMAT]
    store.close()
    assert _lines(found) == expected
    assert expected, "the stream fires rules"
    assert left == [], "every group written since is in format 2"


def test_runs_resume_as_an_uninterrupted_run_and_stay_bounded(state_url: str) -> None:
    """Committed every few events (runs pile up, merge and die), stopped and resumed at
    several points: the findings of an uninterrupted run. Each group's runs hold no entry
    older than its window (as of its last write) and number at most log2(its entries) + 2."""
    events = rule_stream(days=3)
    config = Config()
    straight = open_detectors(config, open_store(None), incidents=False, log=lambda m: None)
    expected = _lines(straight.run(events))
    url = state_url
    found: list[Any] = []
    cuts = [0, len(events) // 3, len(events) // 2 + 17, len(events)]
    checked = 0
    for a, b in zip(cuts, cuts[1:], strict=False):
        store = open_store(url)
        det = open_detectors(config, store, incidents=False, log=lambda m: None)
        for k, e in enumerate(events[a:b]):
            found += det.process(e)
            if k % 40 == 39:
                det.commit({})
        if b == len(events):
            found += det.finish()
        det.commit({})
        ev = det.evaluator
        assert ev is not None
        stream_time = max((g.entries[-1][0] for by in ev._by for g in by.values()
                           if g.entries), default=-math.inf)
        runs: dict[str, list[dict[str, Any]]] = {}
        for key, value in store.scan_kv(f"default/{NS}"):
            record = unpack(value) if value is not None else None
            if isinstance(record, dict) and record.get("v") == FORMAT:
                runs.setdefault(key.rpartition(SEP)[0], []).append(record)
        corrs = {c.meta.name: c for c in ev.rules.correlations}
        for group in runs.values():
            group.sort(key=lambda r: r["f"])
            newest = group[-1]
            live = sum(len(r["e"]) for r in group)
            assert len(group) <= math.log2(max(live, 1)) + 2, [len(r["e"]) for r in group]
            # A run is deleted once all its entries are out of every window: when its group
            # was written last (`b` of its newest run). A group the last commit wrote holds
            # no entry older than that commit's stream time minus `keep`.
            base = newest["s"]["b"]
            assert all(r["f"] + len(r["e"]) > base for r in group[:-1])
            if any(r["e"] and r["e"][-1][0] == stream_time for r in group):
                oldest = min(r["e"][max(base - r["f"], 0)][0]
                             for r in group if len(r["e"]) > base - r["f"])
                assert oldest >= stream_time - corrs[newest["r"]].keep
            checked += 1
        store.close()
    assert _lines(found) == expected
    assert checked, "groups were committed"


def test_plan_writes_each_entry_once_while_it_is_live() -> None:
    """One entry per commit into a window of 8 entries: the runs cover [live, end) exactly,
    at most log2 + 2 of them, and entries are rewritten O(log n) times, not once per commit."""
    runs: list[list[Any]] = []
    rewritten = 0
    for end in range(1, 200):
        live = max(0, end - 8)
        first, key, gone = plan(runs, live, end, "c0:[\"x\"]")
        rewritten += end - first
        assert key == runs[-1][2] and key not in gone
        assert runs[-1][0] == first and runs[-1][0] + runs[-1][1] == end
        keys = [r[2] for r in runs]
        assert len(set(keys)) == len(keys)
        for older, newer in zip(runs, runs[1:], strict=False):
            assert older[0] + older[1] == newer[0]  # contiguous
        assert runs[0][0] <= live < runs[0][0] + runs[0][1] or runs[0][1] == 0
        assert len(runs) <= math.log2(8) + 2
    assert rewritten < 199 * 4


def test_assemble_reads_runs_and_a_format_1_record_together() -> None:
    head = {"k": ["u"], "b": 3, "lo": [], "hi": [], "i": [], "burst": None}
    old = {"k": ["u"], "b": 0, "lo": [], "hi": [], "i": [], "burst": None}
    state = assemble([(0, 1, ["e0", "e1", "e2", "e3"], old, "c0:[\"u\"]"),
                      (4, 2, ["e4", "e5"], head, "c0:[\"u\"]#0")])
    assert state["b"] == 3 and state["e"] == ["e3", "e4", "e5"]


def test_entries_are_stored_in_their_correlations_terms() -> None:
    """In memory an entry holds the classifier's answer (a bit per base rule of the whole
    rule set, every group-by and counted value); stored, it holds its correlation's own mask
    (a bit per referenced rule) and counted values (one per child), as 0.2.0 wrote them: a
    rule added or removed elsewhere renumbers the base rules, not what a stored entry says."""
    events = rule_stream(days=2)
    det = open_detectors(Config(), open_store(None), incidents=False, log=lambda m: None)
    for e in events[: len(events) // 2]:
        det.process(e)
    det.commit({})
    assert det.evaluator is not None
    corrs = {c.meta.name: c for c in det.evaluator.rules.correlations}
    checked = 0
    for _, value in det.inner.cache.scan(NS):
        record = unpack(value) if value is not None else None
        if not (isinstance(record, dict) and record.get("t") == "c"):
            continue
        assert record["v"] == FORMAT
        corr = corrs[record["r"]]
        counts_values = any(ch.value_field for ch in corr.children)
        for _ts, row, mask, values in record["e"]:
            assert 0 < mask < 1 << len(corr.slots), (corr.meta.name, mask)
            if not counts_values:
                assert values is None
                continue
            assert len(values) == len(corr.children)
            for ch, v in zip(corr.children, values, strict=True):
                column = {"secret.path": 7, "source.ip": 8}.get(ch.value_field or "")
                if ch.value_field is None:
                    assert v is None
                elif column is not None and v is not None:
                    assert v == fold(row[column]), (corr.meta.name, v, row)
            checked += 1
    assert checked, "the stream stores groups with counted values"


def test_a_state_file_of_0_3_2_keeps_its_table_and_resumes(tmp_path: Path) -> None:
    """0.3.2 created `kv` WITHOUT ROWID; a new file gets a rowid table (large rows). The
    same queries serve both: a stream on an old file, stopped and resumed, gives the findings
    of an uninterrupted run."""
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE kv (ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, "
               "PRIMARY KEY (ns, key)) WITHOUT ROWID")
    db.close()
    events = rule_stream(days=2)
    config = Config()
    straight = open_detectors(config, open_store(None), incidents=False, log=lambda m: None)
    expected = _lines(straight.run(events))
    found: list[Any] = []
    for part in (events[: len(events) // 2], events[len(events) // 2:]):
        store = open_store(f"sqlite:///{path}")
        det = open_detectors(config, store, incidents=False, log=lambda m: None)
        found += [f for e in part for f in det.process(e)]
        if part[-1] is events[-1]:
            found += det.finish()
        det.commit({})
        store.close()
    db = sqlite3.connect(path)
    (ddl,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'kv'").fetchone()
    db.close()
    assert "WITHOUT ROWID" in ddl
    assert _lines(found) == expected
