"""`secretsight watch` killed with SIGKILL mid-stream and restarted: the findings file equals
the one of an uninterrupted run (nothing repeated, nothing missed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from support.event_streams import detector_stream, write_ndjson

# The installed console script next to this interpreter (the venv's `secretsight`).
WATCH = [str(Path(sys.executable).with_name("secretsight"))]


def _watch(src: Path, out: Path, state: str) -> list[str]:
    return [*WATCH, "watch", "-i", str(src), "-o", str(out), "--state", state,
            "--commit-every", "300", "--commit-interval", "0.05", "--exit-at-eof"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_sigkill_mid_stream_then_restart(tmp_path: Path, state_url: str) -> None:
    src = write_ndjson(tmp_path / "events.ndjson", detector_stream())
    # The reference: one uninterrupted run on its own state.
    ref_out = tmp_path / "reference.ndjson"
    ref_state = f"sqlite:///{tmp_path}/reference.db"
    subprocess.run(_watch(src, ref_out, ref_state), check=True, timeout=300, env=_env())
    reference = ref_out.read_text().splitlines()
    assert len(reference) > 50, "the stream must produce findings all along"

    out = tmp_path / "findings.ndjson"
    proc = subprocess.Popen(_watch(src, out, state_url), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    # Kill once a few commits have landed but well before the end.
    while time.monotonic() < deadline:
        if out.exists() and len(out.read_bytes().splitlines()) >= len(reference) // 4:
            break
        assert proc.poll() is None, f"watch ended before the kill: {proc.stderr.read()!r}"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    at_kill = len(out.read_bytes().splitlines())
    assert 0 < at_kill < len(reference), "the kill must land mid-stream"

    subprocess.run(_watch(src, out, state_url), check=True, timeout=300, env=_env())
    assert out.read_text().splitlines() == reference
