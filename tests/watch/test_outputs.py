"""Finding outputs: HTTP POST to a real loopback receiver (and what happens when it is down),
file output truncation on restore."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from support.finding_receiver import Receiver

from secretsight.limits import SpoolLimits
from secretsight.watch.outputs import FileOutput, HttpOutput


@pytest.fixture
def receiver():
    r = Receiver(200)
    t = threading.Thread(target=r.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield r
    r.shutdown()
    r.server_close()


FINDINGS = [{"id": "a1", "anomaly": "bulk_read"}, {"id": "b2", "anomaly": "audit_gap"}]


def test_http_output_posts_ndjson_with_token(receiver: Receiver) -> None:
    url = f"http://127.0.0.1:{receiver.server_address[1]}/findings"
    out = HttpOutput(url, token="t0k")
    out.write(FINDINGS)
    assert out.drain(10) == 0
    out.close()
    ((auth, body),) = receiver.bodies
    assert auth == "Bearer t0k"
    assert [json.loads(x) for x in body.splitlines()] == FINDINGS


def test_http_output_error_status_is_retried_until_accepted(receiver: Receiver) -> None:
    receiver.status = 503
    counts: list[tuple[str, int]] = []
    url = f"http://127.0.0.1:{receiver.server_address[1]}/findings"
    out = HttpOutput(url, limits=SpoolLimits(retry_initial_seconds=0.05, retry_max_seconds=0.1),
                     on_count=lambda o, e, n: counts.append((e, n)))
    out.write(FINDINGS)
    deadline = time.monotonic() + 10
    while len(receiver.bodies) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    receiver.status = 200
    assert out.drain(10) == 0
    out.close()
    assert len(receiver.bodies) >= 4  # 3+ refusals, then the one accepted
    assert ("delivered", 2) in counts and ("retried", 2) in counts


def test_file_output_restore_truncates_uncommitted_tail(tmp_path: Path) -> None:
    path = tmp_path / "f.ndjson"
    out = FileOutput(path)
    out.write(FINDINGS[:1])
    committed = out.position()
    out.write(FINDINGS[1:])  # written after the last commit, then a crash
    out.close()
    again = FileOutput(path)
    again.restore(committed)
    again.write(FINDINGS[1:])
    again.close()
    assert [json.loads(x) for x in path.read_text().splitlines()] == FINDINGS
