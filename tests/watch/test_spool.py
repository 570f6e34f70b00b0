"""At-least-once HTTP output (issue 12): a real local receiver that is down, then hangs, then
comes back; findings wait in a durable spool, survive a restart, are counted, and a one-shot run
that cannot deliver says how many and exits 3."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from support.event_streams import detector_stream, write_ndjson
from support.finding_receiver import Receiver
from support.redis_server import free_port

from secretsight.limits import SpoolLimits
from secretsight.watch.outputs import HttpOutput
from secretsight.watch.spool import Spool

FAST = SpoolLimits(retry_initial_seconds=0.05, retry_max_seconds=0.2,
                   request_timeout_seconds=0.5)
WATCH = [str(Path(sys.executable).with_name("secretsight")), "watch"]


def findings(n: int, start: int = 0) -> list[dict]:
    return [{"id": f"f{i}", "anomaly": "bulk_read"} for i in range(start, start + n)]


class Hanging:
    """Accepts connections, reads, never answers."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close alone does not
        self.thread.join(5)
        self.sock.close()
        for c in self.conns:
            c.close()


def _serve(port: int) -> Receiver:
    r = Receiver(200, port)
    threading.Thread(target=r.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return r


def _received(r: Receiver) -> list[str]:
    return [json.loads(x)["id"] for _, body in r.bodies for x in body.splitlines()]


def test_down_then_hanging_then_back(tmp_path: Path) -> None:
    port = free_port()
    counts: Counter[str] = Counter()
    out = HttpOutput(f"http://127.0.0.1:{port}/f", spool=Spool(str(tmp_path / "s.spool")),
                     limits=FAST, on_count=lambda o, e, n: counts.update({e: n}))
    # down: write returns at once, the findings wait
    t0 = time.monotonic()
    out.write(findings(3))
    assert time.monotonic() - t0 < 0.2
    time.sleep(0.5)
    assert out.pending() == 3 and counts["retried"] > 0 and counts["delivered"] == 0
    # hanging: still no blocking of the writer (the watch loop), nothing lost
    hang = Hanging(port)
    t0 = time.monotonic()
    out.write(findings(2, start=3))
    assert time.monotonic() - t0 < 0.2
    time.sleep(1.2)
    assert out.pending() == 5
    hang.close()
    # back
    rec = _serve(port)
    try:
        assert out.drain(10) == 0
        out.close()
        got = _received(rec)
        assert set(got) == {f"f{i}" for i in range(5)}
        assert counts["spooled"] == 5 and counts["delivered"] == len(got)
        assert counts["dropped"] == 0
    finally:
        rec.shutdown()
        rec.server_close()


def test_spool_survives_a_restart_and_is_private(tmp_path: Path) -> None:
    port = free_port()
    path = str(tmp_path / "state.db.spool")
    out = HttpOutput(f"http://127.0.0.1:{port}/f", spool=Spool(path), limits=FAST)
    out.write(findings(4))
    assert out.drain(0.3) == 4
    out.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    rec = _serve(port)
    try:
        again = HttpOutput(f"http://127.0.0.1:{port}/f", spool=Spool(path), limits=FAST)
        assert again.drain(10) == 0
        again.close()
        assert sorted(_received(rec)) == [f"f{i}" for i in range(4)]
    finally:
        rec.shutdown()
        rec.server_close()


def test_full_spool_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    port = free_port()
    counts: Counter[str] = Counter()
    limits = FAST.model_copy(update={"max_findings": 3})
    out = HttpOutput(f"http://127.0.0.1:{port}/f", limits=limits,
                     on_count=lambda o, e, n: counts.update({e: n}))
    out.write(findings(5))
    assert counts["dropped"] == 2 and out.pending() == 3
    rec = _serve(port)
    try:
        assert out.drain(10) == 0
        out.close()
        assert sorted(_received(rec)) == ["f2", "f3", "f4"]
    finally:
        rec.shutdown()
        rec.server_close()


def _config(tmp_path: Path) -> Path:
    p = tmp_path / "limits.yml"
    p.write_text("limits:\n  spool:\n    retry_initial_seconds: 0.05\n"
                 "    retry_max_seconds: 0.2\n    request_timeout_seconds: 0.5\n"
                 "    drain_seconds: 1\n")
    return p


def test_one_shot_run_with_undelivered_findings_exits_3_then_next_run_delivers(
        tmp_path: Path) -> None:
    src = write_ndjson(tmp_path / "events.ndjson", detector_stream(identities=10, days=20,
                                                          reads_per_day=10))
    port = free_port()
    cmd = [*WATCH, "-i", str(src), "-o", f"http://127.0.0.1:{port}/f", "--exit-at-eof",
           "--state", f"sqlite:///{tmp_path}/state.db", "--config", str(_config(tmp_path))]
    run = subprocess.run(cmd, capture_output=True, timeout=300)
    assert run.returncode == 3, run.stderr.decode()
    err = run.stderr.decode()
    assert "finding(s) undelivered" in err
    left = int(err.split(" finding(s) undelivered")[0].rsplit(" ", 1)[1])
    assert left > 0
    rec = _serve(port)
    try:
        again = subprocess.run(cmd, capture_output=True, timeout=300)
        assert again.returncode == 0, again.stderr.decode()
        assert len(set(_received(rec))) == left
    finally:
        rec.shutdown()
        rec.server_close()
