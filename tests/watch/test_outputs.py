"""Finding outputs: HTTP POST to a real loopback receiver (and what happens when it is down),
file output truncation on restore."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from support.redis_server import free_port

from secretsight.watch.outputs import FileOutput, HttpOutput


class Receiver(ThreadingHTTPServer):
    def __init__(self, status: int) -> None:
        self.bodies: list[tuple[str, bytes]] = []
        self.status = status
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.append((self.headers.get("Authorization", ""), body))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()


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
    HttpOutput(url, token="t0k").write(FINDINGS)
    ((auth, body),) = receiver.bodies
    assert auth == "Bearer t0k"
    assert [json.loads(x) for x in body.splitlines()] == FINDINGS


def test_http_output_down_counts_and_falls_back_to_stderr(capsys) -> None:
    errors: list[str] = []
    out = HttpOutput(f"http://127.0.0.1:{free_port()}/x", retries=2, timeout=1,
                     on_error=errors.append)
    out.write(FINDINGS)  # nothing listens: must not raise
    assert errors == [out.name]
    err = capsys.readouterr().err
    assert "could not POST 2 finding(s)" in err and '"id": "a1"' in err


def test_http_output_error_status_is_retried_then_reported(receiver: Receiver) -> None:
    receiver.status = 503
    errors: list[str] = []
    url = f"http://127.0.0.1:{receiver.server_address[1]}/findings"
    HttpOutput(url, retries=2, on_error=errors.append).write(FINDINGS)
    assert len(receiver.bodies) == 2 and errors == [f"http:{url}"]


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
