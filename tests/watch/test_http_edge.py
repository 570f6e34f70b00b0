"""Fault tests of the /ingest server at the network edge (issue 12): slow and idle clients,
connection and in-flight-bytes caps, short bodies, bad framing, deep JSON, backlog, IPv6,
client disconnects, and refusing to listen beyond loopback without a token. Every test talks to
a real socket; the side-car tests run the installed `secretsight` command."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.event_builders import reads
from support.watch_ingest import TOKEN, Running, ndjson

from secretsight.limits import HttpLimits

WATCH = [str(Path(sys.executable).with_name("secretsight")), "watch"]

FAST = HttpLimits(header_timeout_seconds=0.5, body_timeout_seconds=1.0, max_connections=8,
                  max_inflight_body_bytes=200_000)


@pytest.fixture
def edge() -> Iterator[Running]:
    r = Running(TOKEN, limits=FAST)
    yield r
    r.stop()


def _connect(r: Running) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", r.server.port), timeout=5)
    return s


def _read_reply(s: socket.socket, timeout: float = 5) -> tuple[int, bytes]:
    """(status, body) of one response; (0, b"") when the server closed without a reply."""
    s.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return (0, data)
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"(?i)content-length:\s*(\d+)", head)
    n = int(m.group(1)) if m else 0
    while len(body) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, body


def _post_head(n: int, *, auth: bool = True, extra: str = "") -> bytes:
    a = f"Authorization: Bearer {TOKEN}\r\n" if auth else ""
    return (f"POST /ingest HTTP/1.1\r\nHost: x\r\n{a}Content-Type: application/x-ndjson\r\n"
            f"Content-Length: {n}\r\n{extra}\r\n").encode()


def _processed(r: Running) -> int:
    text = r.request("GET", "/metrics")[1]
    m = re.search(r'secretsight_events_processed_total\{source="vault.audit"\} (\d+)', text)
    return int(m.group(1)) if m else 0


def test_slow_header_client_is_cut_off(edge: Running) -> None:
    """Slowloris: a client that never finishes its headers is closed after the header timeout,
    before and after authentication alike (the token is a header)."""
    s = _connect(edge)
    s.sendall(b"POST /ingest HTTP/1.1\r\nHost: x\r\n")  # ...and nothing more
    t0 = time.monotonic()
    status, _ = _read_reply(s, timeout=5)
    assert status in (0, 408) and time.monotonic() - t0 < 3
    s.close()


def test_slow_body_client_is_cut_off_and_nothing_ingested(edge: Running) -> None:
    body = ndjson(reads(0, 5))
    s = _connect(edge)
    s.sendall(_post_head(len(body)) + body[:10])  # the rest never comes
    t0 = time.monotonic()
    status, _ = _read_reply(s, timeout=5)
    assert status == 408 and time.monotonic() - t0 < 4
    s.close()
    assert _processed(edge) == 0


def test_connection_cap_refuses_extra_clients_and_recovers(edge: Running) -> None:
    idle = [_connect(edge) for _ in range(FAST.max_connections)]
    time.sleep(0.1)
    extra = _connect(edge)
    status, _ = _read_reply(extra, timeout=3)
    assert status == 503
    extra.close()
    time.sleep(FAST.header_timeout_seconds + 0.5)  # the idle ones are timed out...
    assert edge.request("GET", "/healthz")[0] == 200  # ...and the server serves again
    for s in idle:
        s.close()


def test_inflight_body_bytes_are_capped(edge: Running) -> None:
    """Bodies being received count against a budget: a request that would pass it is 503
    with Retry-After, not buffered."""
    hold = []
    for _ in range(3):  # 3 x 60 KB declared, under the 200 KB budget, drip-fed
        s = _connect(edge)
        s.sendall(_post_head(60_000) + b"{")
        hold.append(s)
    time.sleep(0.1)
    s = _connect(edge)
    s.sendall(_post_head(60_000))
    status, _ = _read_reply(s, timeout=3)
    assert status == 503
    for h in hold:
        h.close()


def test_short_body_is_400_and_nothing_ingested(edge: Running) -> None:
    """A body shorter than its Content-Length (the client half-closes) is not a batch."""
    body = ndjson(reads(0, 50))
    s = _connect(edge)
    s.sendall(_post_head(len(body) + 500) + body)
    s.shutdown(socket.SHUT_WR)
    status, reply = _read_reply(s)
    s.close()
    assert status == 400 and b"complete" in reply
    assert _processed(edge) == 0


@pytest.mark.parametrize("head", [
    b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n12345",
    b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"POST /ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked, x\r\n\r\n",
    b"GARBAGE\r\n\r\n",
    b"POST /ingest HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
], ids=["conflicting_length", "non_numeric_length", "bad_transfer_encoding", "garbage_request",
        "malformed_header"])
def test_bad_framing_is_400(edge: Running, head: bytes) -> None:
    s = _connect(edge)
    s.sendall(head)
    status, _ = _read_reply(s)
    s.close()
    assert status == 400
    assert edge.request("GET", "/healthz")[0] == 200


def test_chunked_body_is_accepted(edge: Running) -> None:
    body = ndjson(reads(0, 3))
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:20], body[20:])) + b"0\r\n\r\n"
    s = _connect(edge)
    s.sendall(b"POST /ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
              + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
    status, reply = _read_reply(s)
    s.close()
    assert status == 200 and json.loads(reply)["accepted"] == 3


def test_keep_alive_and_expect_100_continue(edge: Running) -> None:
    """Two requests on one connection; a client that waits for `100 Continue` (curl) gets it
    before sending its body."""
    body = ndjson(reads(0, 2))
    s = _connect(edge)
    for _ in range(2):
        s.sendall(_post_head(len(body), extra="Expect: 100-continue\r\n"))
        assert s.recv(64).startswith(b"HTTP/1.1 100 ")
        s.sendall(body)
        status, reply = _read_reply(s)
        assert status == 200 and json.loads(reply)["accepted"] == 2
    s.close()


def test_too_deep_json_is_400() -> None:
    r = Running(TOKEN, max_body=1 << 20)
    try:
        deep = b"[" * 100_000 + b"]" * 100_000
        for body in (deep, b'{"a": ' + deep + b"}\n"):
            code, reply = r.request("POST", "/ingest", body)
            assert code == 400, reply
        assert r.request("GET", "/healthz")[0] == 200
    finally:
        r.stop()


def test_backlog_absorbs_a_burst_of_connections() -> None:
    """200 clients connecting at once all get an answer (a backlog of 5 reset them)."""
    r = Running(TOKEN)
    try:
        results: list[int] = []
        lock = threading.Lock()
        barrier = threading.Barrier(200)

        def one() -> None:
            barrier.wait()
            try:
                code = r.request("GET", "/healthz", token=None)[0]
            except OSError:
                code = -1
            with lock:
                results.append(code)

        threads = [threading.Thread(target=one) for _ in range(200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results.count(200) == 200, sorted(set(results))
    finally:
        r.stop()


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback on this machine")
def test_ipv6_listen() -> None:
    r = Running(TOKEN, address=("::1", 0))
    try:
        assert r.server.url.startswith("http://[::1]:")
        code, reply = r.request("POST", "/ingest", ndjson(reads(0, 2)))
        assert (code, reply["accepted"]) == (200, 2)
    finally:
        r.stop()


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback on this machine")
def test_ipv6_listen_from_the_command_line(tmp_path: Path) -> None:
    """`--listen [::1]:PORT` without a token: loopback, so allowed."""
    p = _sidecar(["--listen", "[::1]:0"], tmp_path)
    try:
        assert p.stderr is not None
        line = p.stderr.readline().decode()
        assert "http://[::1]:" in line, line
        port = int(re.search(r":(\d+) ", line).group(1))  # type: ignore[union-attr]
        with socket.create_connection(("::1", port)) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_reply(s)[0] == 200
    finally:
        p.terminate()
        p.communicate(timeout=30)


def _sidecar(args: list[str], tmp_path: Path, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("SECRETSIGHT_WATCH_TOKEN", None)
    return subprocess.Popen([*WATCH, "--state", f"sqlite:///{tmp_path}/s.db", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "[::]:0", "192.0.2.1:0"])
def test_refuses_to_listen_beyond_loopback_without_token(tmp_path: Path, listen: str) -> None:
    p = _sidecar(["--listen", listen], tmp_path)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 2
    assert b"without a token" in err and b"--insecure-no-token" in err


def test_client_disconnects_print_no_traceback(tmp_path: Path) -> None:
    p = _sidecar(["--listen", "127.0.0.1:0", "--token", TOKEN], tmp_path)
    try:
        assert p.stderr is not None
        line = p.stderr.readline().decode()
        port = int(re.search(r":(\d+) ", line).group(1))  # type: ignore[union-attr]
        for payload in (b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n",
                        _post_head(10_000) + b"{\"a\"", b"GET /metr"):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(payload)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()  # abortive close (RST)
        time.sleep(0.5)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_reply(s)[0] == 200
    finally:
        p.terminate()
        _, err = p.communicate(timeout=30)
    assert b"Traceback" not in err, err.decode()
