"""`secretsight watch` as a real process, killed with SIGKILL mid-stream and restarted: what
tests/watch and tests/stream check against an uninterrupted run (restart safety)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# The installed console script next to this interpreter (the venv's `secretsight`).
WATCH = [str(Path(sys.executable).with_name("secretsight"))]


def watch_command(src: Path, out: Path, state: str, *, commit_every: int) -> list[str]:
    return [*WATCH, "watch", "-i", str(src), "-o", str(out), "--state", state,
            "--commit-every", str(commit_every), "--commit-interval", "0.05", "--exit-at-eof"]


def unbuffered_env() -> dict[str, str]:
    return dict(os.environ, PYTHONUNBUFFERED="1")


def reference_run(src: Path, out: Path, state: str, *, commit_every: int) -> list[str]:
    """One uninterrupted run on its own state: the lines of its findings file."""
    subprocess.run(watch_command(src, out, state, commit_every=commit_every), check=True,
                   timeout=300, env=unbuffered_env())
    return out.read_text().splitlines()


def killed_then_restarted(src: Path, out: Path, state: str, *, commit_every: int,
                          kill_after: int, total: int) -> list[str]:
    """Run watch, SIGKILL it once `kill_after` findings are written (a few commits in, well
    before the end: `total` is the uninterrupted run's count), restart it on the same state
    and output; the lines of the findings file at the end."""
    cmd = watch_command(src, out, state, commit_every=commit_every)
    proc = subprocess.Popen(cmd, env=unbuffered_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if out.exists() and len(out.read_bytes().splitlines()) >= kill_after:
            break
        assert proc.poll() is None, f"watch ended before the kill: {proc.stderr.read()!r}"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    at_kill = len(out.read_bytes().splitlines())
    assert 0 < at_kill < total, "the kill must land mid-stream"
    subprocess.run(cmd, check=True, timeout=300, env=unbuffered_env())
    return out.read_text().splitlines()
