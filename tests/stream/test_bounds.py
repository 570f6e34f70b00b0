"""The rules' window state stays bounded by time: a correlation group whose principal stopped
reading is gone from memory and from the store once stream time has moved `IDLE_SLACK` of
its correlation's `keep` past its last event (the idle sweep), while a group still read is
kept."""

from __future__ import annotations

from pathlib import Path

from support.event_builders import at, ev

from secretsight.config import Config
from secretsight.detect import open_store
from secretsight.stream import open_detectors
from secretsight.stream.evaluator import IDLE_SLACK
from secretsight.stream.rules import NS


def _read(seconds: float, user: str) -> dict[str, object]:
    return ev(at(seconds), user=user, path="secret/app/db", source__ip="10.0.0.7",
              credential__id=f"tok-{user}")


def test_idle_groups_leave_memory_and_store(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/state.db")
    det = open_detectors(Config(), store, incidents=False, log=lambda m: None)
    ev_ = det.evaluator
    assert ev_ is not None
    for s in range(5):
        det.process(_read(s, "gone"))
        det.process(_read(s, "active"))
    det.process(_read(60, "active"))  # (past the buffer's lateness: the reads are released)
    det.commit({})

    def keys_naming(user: str) -> set[str]:
        held = {g.skey for by in ev_._by for g in by.values() if user in str(g.keys)}
        stored = {k for k, v in store.scan_kv(f"default/{NS}") if user in k and v is not None}
        return held | stored

    assert keys_naming("gone"), "the reads open groups (and the commit writes them)"
    longest = max(c.keep for c in ev_.rules.correlations if "user.id" in c.group_by)
    end = int(longest * IDLE_SLACK) + 600
    for s in range(300, end, 300):  # one principal keeps reading, every five minutes
        det.process(_read(s, "active"))
    det.commit({})
    assert keys_naming("gone") == set(), "idle groups are dropped, also from the store"
    assert keys_naming("active"), "a group still read is kept"
    store.close()
