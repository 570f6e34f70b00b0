"""Stored state across versions and the per-identity shortcuts of `state.IdentityState`.

path_diversity windows were stored as JSON lists with base64 times: [times, [path per read],
fired], then [times, "path\\npath..." (per read), fired]. They are now bytes (windows.py: the
distinct paths and their latest read, no path per read), or [times, [distinct paths], their
latest read times, fired] when a path holds a newline. A state written in an older form must
still load, in the library and through a `watch` restart."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from array import array
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from support.event_builders import at, ev, reads

from secretsight.config import Config
from secretsight.detect import Detectors, open_store
from secretsight.detect.stores import Batch, Store
from secretsight.detect.windows import DistinctWindow

# 29 reads of 9 distinct paths: one more read of a 10th path within the window completes a
# path_diversity burst (>= 10 distinct paths and >= 30 reads in 5 minutes, the defaults).
PATHS = [f"secret/app/k{i}" for i in range(9)]
WINDOW_NS = "default/path_diversity"


def _before() -> list[dict[str, Any]]:
    return reads(0, 29, paths=PATHS)


def _after() -> dict[str, Any]:
    return ev(at(30), path="secret/app/k9")


def _downgrade(store: Store, form: str = "list-per-read") -> None:
    """Rewrite the stored path_diversity window of u1 in another format."""
    current = store.load_kv(WINDOW_NS, "u1")
    assert isinstance(current, bytes), "the current format is bytes"
    w = DistinctWindow.from_state(current)
    assert sorted(w.last) == PATHS and not w.fired
    times = base64.b64encode(w.window().tobytes()).decode()
    per_read = [e["secret"]["path"] for e in _before()]
    older = {
        "list-per-read": [times, per_read, False],
        "joined-per-read": [times, "\n".join(per_read), False],
        "distinct-list": [times, list(w.last),
                          base64.b64encode(array("d", w.last.values()).tobytes()).decode(),
                          False],
    }[form]
    store.commit(Batch(kv={(WINDOW_NS, "u1"): older}))


def _diversity(findings: list[Any]) -> list[dict[str, Any]]:
    return [asdict(f) for f in findings if f.anomaly == "path_diversity"]


@pytest.mark.parametrize("form", ["list-per-read", "joined-per-read", "distinct-list"])
def test_older_window_format_loads_after_a_restart(durable_store_url: str, form: str) -> None:
    only = ["path_diversity"]
    first = Detectors(Config(), open_store(durable_store_url), only=only)
    for e in _before():
        assert first.process(e) == []
    first.commit()
    _downgrade(first.store, form)
    first.store.close()

    store = open_store(durable_store_url)
    restarted = Detectors(Config(), store, only=only)
    found = _diversity(restarted.process(_after()))
    restarted.commit()

    reference = Detectors(Config(), open_store(None), only=only)
    expected = _diversity([f for e in [*_before(), _after()] for f in reference.process(e)])
    assert len(expected) == 1
    assert found == expected
    assert isinstance(store.load_kv(WINDOW_NS, "u1"), bytes), "rewritten in the current format"


def test_watch_restarts_on_a_state_file_of_the_older_format(tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path}/state.db"
    det = Detectors(Config(), open_store(state))
    for e in _before():
        det.process(e)
    det.commit()
    _downgrade(det.store)
    det.store.close()

    src = tmp_path / "events.ndjson"
    src.write_text(json.dumps(_after()) + "\n")
    out = tmp_path / "findings.ndjson"
    watch = str(Path(sys.executable).with_name("secretsight"))
    run = subprocess.run([watch, "watch", "-i", str(src), "-o", str(out), "--state", state,
                          "--detectors", "path_diversity", "--exit-at-eof"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    anomalies = [json.loads(line)["anomaly"] for line in out.read_text().splitlines()]
    assert "path_diversity" in anomalies, "the older window was loaded and completed"


def test_a_pruned_window_is_recreated_for_a_returning_identity(tmp_path: Path) -> None:
    """Pruning drops a window from the store AND the identity's shortcut to it: the identity
    reading again gets a fresh window that is committed (a stale shortcut would be lost)."""
    from secretsight.detect import detectors as mod

    store = open_store(f"sqlite:///{tmp_path}/s.db")
    det = Detectors(Config(), store)  # every detector: the driver fills ev.ident
    for e in reads(0, 5, user="gone") + reads(0, 5, user="back"):
        det.process(e)
    det.commit()
    det.process(reads(3600, 1, user="other")[0])  # an hour later: both windows expired
    for _ in range(mod.PRUNE_EVERY - 1):
        det.commit()
    assert [k for k, _ in store.scan_kv("default/bulk_read")] == ["other"]
    det.process(reads(3700, 1, user="back")[0])
    det.commit()
    assert [k for k, _ in store.scan_kv("default/bulk_read")] == ["back", "other"]
    assert [k for k, _ in store.scan_kv(WINDOW_NS)] == ["back", "other"]


def test_a_uid_colliding_with_a_window_key_keeps_its_reads_after_pruning(tmp_path: Path) -> None:
    """Bad input is normal input: a uid ending with the Secrets Manager key suffix shares its
    window key with another identity's Secrets Manager window; pruning must not crash."""
    from secretsight.detect import detectors as mod
    from secretsight.detect.path_diversity import AWS_SUFFIX

    store = open_store(f"sqlite:///{tmp_path}/s.db")
    det = Detectors(Config(), store)
    odd = f"x{AWS_SUFFIX}"
    for e in reads(0, 3, user="x", dataset="aws.cloudtrail") + reads(0, 3, user=odd):
        det.process(e)
    det.commit()
    det.process(reads(3600, 1, user="other")[0])
    for _ in range(mod.PRUNE_EVERY - 1):
        det.commit()
    for e in reads(3700, 1, user=odd) + reads(3700, 1, user="x", dataset="aws.cloudtrail"):
        det.process(e)
    det.commit()
    assert sorted(k for k, _ in store.scan_kv(WINDOW_NS)) == sorted(["other", odd])
    # Both reads landed in the (shared) window that was committed, none in a stale one.
    w = DistinctWindow.from_state(store.load_kv(WINDOW_NS, odd))
    assert (w.count(), list(w.last)) == (2, ["secret/app/db"])
