"""The watch loop's memory of recent audit records (repeats dropped and counted under
`duplicates`): bounded by RECENT_RECORDS, it keeps exactly the last ones."""

from __future__ import annotations

import pytest
from support.event_builders import reads

from secretsight.config import Config
from secretsight.detect import open_store
from secretsight.normalize import dedupe_key
from secretsight.stream import open_detectors
from secretsight.watch.runner import Watcher


def test_the_memory_of_recent_records_keeps_exactly_the_last_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("secretsight.watch.runner.RECENT_RECORDS", 2)
    det = open_detectors(Config(), open_store(None), rules=False, log=lambda m: None)
    w = Watcher(det, files=[], outputs=[], log=lambda m: None)
    a, b, c = reads(0, 3)
    w.handle_events("x", [a, b, c])  # "a" forgotten: only the last two are remembered
    assert w.metrics.duplicates["x"] == 0
    w.handle_events("x", [c])  # remembered: dropped and counted
    assert w.metrics.duplicates["x"] == 1
    w.handle_events("x", [a])  # forgotten: not a repeat for the loop (the buffer decides)
    assert w.metrics.duplicates["x"] == 1
    assert list(w.recent_order) == [dedupe_key(e) for e in (c, a)]
    assert w.recent == set(w.recent_order)
    # the loop's inline Vault key is dedupe_key's
    assert dedupe_key(a) in w.recent and dedupe_key(b) not in w.recent
