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
