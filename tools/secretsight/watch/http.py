"""The HTTP endpoint: POST /ingest (NDJSON or a JSON array, as Vector's `http` sink and Fluent
Bit's `http` output send), GET /metrics (Prometheus), GET /healthz.

Binds 127.0.0.1 by default. With a bearer token, /ingest and /metrics answer 401 without it.
Bodies larger than the limit are refused with 413 before being read; bad bodies get 400 with a
JSON error; every outcome is counted (secretsight_http_requests_total). An /ingest request is
answered only after its events are processed and COMMITTED, so a shipper that retries on error
gets at-least-once delivery.
"""

from __future__ import annotations

import hmac
import json
import queue
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from secretsight.watch.decode import DecodeError, Skipped, decode_line, decode_object


class IngestServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], *, work: queue.Queue, metrics: Any,
                 token: str | None, max_body: int, ack_timeout: float = 30.0) -> None:
        super().__init__(address, Handler)
        self.work = work
        self.metrics = metrics
        self.token = token
        self.max_body = max_body
        self.ack_timeout = ack_timeout

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host if isinstance(host, str) else host.decode()}:{port}"

    def start(self) -> threading.Thread:
        t = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                             name="http", daemon=True)
        t.start()
        return t


class Handler(BaseHTTPRequestHandler):
    server: IngestServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are counted in metrics, not logged per line

    def _reply(self, code: int, body: dict[str, Any] | str, ctype: str = "application/json",
               extra: dict[str, str] | None = None) -> None:
        path = self.path.split("?")[0]
        known = path if path in ("/ingest", "/metrics", "/healthz") else "other"
        self.server.metrics.count("http_requests", (known, code))
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        token = self.server.token
        if not token:
            return True
        got = self.headers.get("Authorization", "")
        if got.startswith("Bearer ") and hmac.compare_digest(got[7:].strip(), token):
            return True
        self.close_connection = True
        self._reply(401, {"error": "missing or wrong bearer token"},
                    extra={"WWW-Authenticate": 'Bearer realm="secretsight"'})
        return False

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/healthz":
            self._reply(200, {"status": "ok"})
        elif path == "/metrics":
            if self._authorized():
                self._reply(200, self.server.metrics.render(),
                            ctype="text/plain; version=0.0.4; charset=utf-8")
        elif path == "/ingest":
            self._reply(405, {"error": "use POST"}, extra={"Allow": "POST"})
        else:
            self._reply(404, {"error": f"no such endpoint {path}"})

    def do_PUT(self) -> None:
        self.close_connection = True
        self._reply(405, {"error": "use POST /ingest"}, extra={"Allow": "POST"})

    def do_POST(self) -> None:
        path = self.path.split("?")[0]
        if path != "/ingest":
            self.close_connection = True
            self._reply(404, {"error": f"no such endpoint {path}"})
            return
        if not self._authorized():
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            self._reply(411, {"error": "Content-Length required"})
            return
        n = int(length)
        if n > self.server.max_body:
            self.close_connection = True  # the body is not read: drop the connection after
            self._reply(413, {"error": f"body of {n} bytes exceeds the limit of "
                                       f"{self.server.max_body} bytes"})
            return
        body = self.rfile.read(n)
        enc = (self.headers.get("Content-Encoding") or "").lower()
        try:
            if enc == "gzip":
                body = _bounded_gunzip(body, self.server.max_body)
            elif enc not in ("", "identity"):
                raise DecodeError("bad_encoding", f"unsupported Content-Encoding {enc!r}")
            events, errors, skips = parse_body(body)
        except DecodeError as exc:
            self.server.metrics.count("parse_errors", ("http", exc.reason))
            self._reply(413 if exc.reason == "too_large" else 400, {"error": str(exc)})
            return
        for reason, _ in errors:
            self.server.metrics.count("parse_errors", ("http", reason))
        for reason in skips:
            self.server.metrics.count("skipped", ("http", reason))
        if not events and not skips:
            self._reply(400, {"error": "no usable event in the body", "rejected": len(errors),
                              "errors": [m for _, m in _numbered(errors)][:5]})
            return
        if not events:  # only deliberate skips (e.g. Vault request entries): nothing to do
            self._reply(200, {"accepted": 0, "rejected": len(errors), "skipped": len(skips),
                              "errors": [m for _, m in _numbered(errors)][:5]})
            return
        done = threading.Event()
        result: dict[str, Any] = {}
        self.server.work.put(("events", "http", (events, done, result)))
        if not done.wait(self.server.ack_timeout):
            self._reply(503, {"error": "events queued but not committed in time; retry"})
            return
        if result.get("error"):
            self._reply(500, {"error": result["error"]})
            return
        self._reply(200, {"accepted": len(events), "rejected": len(errors), "skipped": len(skips),
                          "errors": [m for _, m in _numbered(errors)][:5]})


def _numbered(errors: list[tuple[str, tuple[int, str]]]) -> list[tuple[str, str]]:
    return [(r, f"line {i}: {m}") for r, (i, m) in errors]


def _bounded_gunzip(body: bytes, limit: int) -> bytes:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as exc:
        raise DecodeError("bad_gzip", f"body is not valid gzip: {exc}") from exc
    if len(out) > limit:
        raise DecodeError("too_large", f"decompressed body exceeds {limit} bytes")
    return out


def parse_body(body: bytes) -> tuple[list[dict[str, Any]], list[tuple[str, tuple[int, str]]],
                                    list[str]]:
    """NDJSON (one event per line) or one JSON array -> events, [(reason, (line, message))],
    skip reasons."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("bad_utf8", f"body is not UTF-8: {exc}") from exc
    events: list[dict[str, Any]] = []
    errors: list[tuple[str, tuple[int, str]]] = []
    skips: list[str] = []
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except ValueError as exc:
            raise DecodeError("bad_json", f"body starts like a JSON array but is not one: {exc}"
                              ) from exc
        for i, obj in enumerate(items, 1):
            try:
                events.extend(decode_object(obj, None, skips))
            except DecodeError as exc:
                errors.append((exc.reason, (i, str(exc))))
            except Skipped:
                pass
        return events, errors, skips
    for i, line in enumerate(text.split("\n"), 1):
        try:
            events.extend(decode_line(line, skips))
        except DecodeError as exc:
            errors.append((exc.reason, (i, str(exc))))
        except Skipped:
            pass
    return events, errors, skips
