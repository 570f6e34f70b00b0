"""Window state written by an earlier release resumes: a stream stopped halfway, its group
records rewritten as 0.2.0 wrote them (no counted range end `hi`: every entry from `lo` on was
counted), then resumed by a new process, gives the findings of an uninterrupted run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from support.event_streams import rule_stream

from secretsight.config import Config
from secretsight.detect import open_store
from secretsight.stream import open_detectors
from secretsight.stream.codec import pack, unpack
from secretsight.stream.predicate import fold
from secretsight.stream.rules import NS
from secretsight.watch.outputs import finding_json


def _lines(found: list[Any]) -> list[str]:
    return sorted(json.dumps(finding_json(f), sort_keys=True) for f in found)


def test_state_from_0_2_0_resumes_as_an_uninterrupted_run(tmp_path: Path) -> None:
    events = rule_stream(days=4)
    config = Config()
    straight = open_detectors(config, open_store(None), incidents=False, log=lambda m: None)
    expected = _lines(straight.run(events))

    url = f"sqlite:///{tmp_path}/state.db"
    half = len(events) // 2
    store = open_store(url)
    first = open_detectors(config, store, incidents=False, log=lambda m: None)
    found = [f for e in events[:half] for f in first.process(e)]
    first.commit({})
    cache = first.inner.cache
    rewritten = 0
    for key, value in cache.scan(NS):
        record = unpack(value) if value is not None else None
        if isinstance(record, dict) and record.get("t") == "c":
            record["s"].pop("hi", None)
            rewritten += 1
            cache.put(NS, key, pack(record))
    cache.flush({})
    store.close()
    assert rewritten, "the first half leaves open correlation groups"

    store = open_store(url)
    second = open_detectors(config, store, incidents=False, log=lambda m: None)
    found += second.run(events[half:])
    store.close()
    assert _lines(found) == expected
    assert expected, "the stream fires rules"


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
        corr = corrs[record["r"]]
        counts_values = any(ch.value_field for ch in corr.children)
        for _ts, row, mask, values in record["s"]["e"]:
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
