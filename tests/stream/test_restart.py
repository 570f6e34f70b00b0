"""The rules' window state and the reorder buffer survive SIGKILL: `watch` killed mid-stream
and restarted writes exactly the findings file of an uninterrupted run, on SQLite and Redis."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from support.event_streams import rule_stream, write_ndjson
from support.watch_process import WATCH, killed_then_restarted, reference_run, unbuffered_env

from secretsight.detect import open_store
from secretsight.stream.reorder import NS as BUFFER_NS
from secretsight.stream.rules import NS as RULES_NS

SIGMA_KINDS = {"bulk_read", "path_diversity", "denied_burst", "suspicious_user_agent",
               "dual_source_ip", "root_token"}


def test_rule_state_is_committed_with_the_offsets(tmp_path: Path) -> None:
    """Mid-stream (no --exit-at-eof end yet), the store holds open windows and held events."""
    src = write_ndjson(tmp_path / "events.ndjson", rule_stream(days=1))
    state = f"sqlite:///{tmp_path}/state.db"
    proc = subprocess.Popen([*WATCH, "watch", "-i", str(src), "-o", str(tmp_path / "o.ndjson"),
                             "--state", state, "--commit-interval", "0.05"], env=unbuffered_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            store = open_store(state) if Path(tmp_path / "state.db").exists() else None
            try:
                offsets = store.load_offsets("default") if store else {}
                inputs = [k for k in offsets if not k.startswith("__")]
                if inputs and store is not None:
                    rules = store.scan_kv(f"default/{RULES_NS}")
                    held = store.scan_kv(f"default/{BUFFER_NS}")
                    if any(k != "_meta" for k, _ in rules) and any(k != "_meta" for k, _ in held):
                        return
            except Exception:  # noqa: BLE001 - the database may be mid-creation
                pass
            finally:
                if store is not None:
                    store.close()
            time.sleep(0.2)
        raise AssertionError("no window state or held events committed")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def test_sigkill_mid_stream_then_restart(tmp_path: Path, state_url: str) -> None:
    src = write_ndjson(tmp_path / "events.ndjson", rule_stream())
    reference = reference_run(src, tmp_path / "reference.ndjson",
                              f"sqlite:///{tmp_path}/reference.db", commit_every=200)
    kinds = {json.loads(line)["anomaly"] for line in reference}
    assert SIGMA_KINDS <= kinds, f"every kind of rule fires along the stream: {kinds}"
    assert killed_then_restarted(src, tmp_path / "findings.ndjson", state_url, commit_every=200,
                                 kill_after=len(reference) // 3,
                                 total=len(reference)) == reference
