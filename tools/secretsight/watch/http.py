"""The HTTP endpoint: POST /ingest (NDJSON or a JSON array, as Vector's `http` sink and Fluent
Bit's `http` output send), GET /metrics (Prometheus), GET /healthz.

Binds 127.0.0.1 by default (the side-car refuses a non-loopback address without a token unless
told otherwise). With a bearer token, /ingest and /metrics answer 401 without it. An /ingest
request is answered only after its events are processed and COMMITTED, so a shipper that
retries on error gets at-least-once delivery. Every outcome is counted
(secretsight_http_requests_total, secretsight_http_refused_total).

Served by asyncio streams with h11 doing the HTTP/1.1 framing (docs/watch.md says why): a
connection costs a coroutine, not a thread, so slow clients are cheap, and every limit of
`limits.HttpLimits` is enforced here: header and body deadlines, a connection cap, a budget of
body bytes in flight, the listen backlog, header size. A body that does not arrive complete
(shorter than its Content-Length, a broken chunk) is a 400 and none of it is ingested.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import hmac
import json
import queue
import socket
import sys
import threading
import zlib
from typing import Any

import h11

from secretsight.limits import HttpLimits
from secretsight.watch.decode import DecodeError, Skipped, _loads, decode_line, decode_object

_PATHS = ("/ingest", "/metrics", "/healthz")
_TRIM_AFTER = 1 << 20  # after bodies this large, hand freed heap pages back to the OS


def _load_malloc_trim() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to do
        return None


_malloc_trim = _load_malloc_trim()


def _release_memory() -> None:
    """glibc keeps freed memory of large bodies in its arenas (RSS stays at the peak of a
    burst); malloc_trim returns it."""
    if _malloc_trim is not None:
        _malloc_trim(0)
_CLIENT_GONE = (ConnectionError, asyncio.IncompleteReadError, OSError)


class _Timeout(Exception):
    pass


class _Ack:
    """What the watch loop calls `.set()` on once a request's events are committed: wakes the
    request's coroutine from the loop thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()

    def _done(self) -> None:
        if not self.future.done():
            self.future.set_result(None)

    def set(self) -> None:
        self.loop.call_soon_threadsafe(self._done)


class IngestServer:
    def __init__(self, address: tuple[str, int], *, work: queue.Queue, metrics: Any,
                 token: str | None, max_body: int, ack_timeout: float = 30.0,
                 limits: HttpLimits | None = None) -> None:
        self.work = work
        self.metrics = metrics
        self.token = token
        self.max_body = max_body
        self.ack_timeout = ack_timeout
        self.limits = limits or HttpLimits()
        self.connections = 0
        self.inflight_bytes = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop = asyncio.new_event_loop()
        host, port = address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self._server = self._loop.run_until_complete(asyncio.start_server(
                self._connection, host, port, family=family, backlog=self.limits.backlog,
                reuse_address=True, limit=self.limits.max_header_bytes))
        except BaseException:
            self._loop.close()
            raise
        sockname = self._server.sockets[0].getsockname()
        self.server_address = (sockname[0], sockname[1])
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = self.server_address[0]
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self._loop.run_forever, name="http", daemon=True)
        self._thread.start()
        return self._thread

    def shutdown(self) -> None:
        async def stop() -> None:
            self._server.close()
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._loop.stop()

        if self._thread is not None and self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(stop(), self._loop)
            self._thread.join(10)

    def server_close(self) -> None:
        if not self._loop.is_running():
            self._loop.close()

    # ---- one connection
    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        lim = self.limits
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=lim.max_header_bytes)
        over = self.connections >= lim.max_connections
        self.connections += 1
        try:
            if over:
                self.metrics.count("http_refused", "connections")
                await self._send(conn, writer, 503, {"error": "too many connections; retry"},
                                 "other", close=True, extra={"Retry-After": "1"})
                return
            while True:
                if not await self._one_request(conn, reader, writer):
                    return
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (_Timeout, asyncio.CancelledError, *_CLIENT_GONE):
            pass  # a client that went away or stalled: nothing to say, nobody to say it to
        except Exception as exc:  # noqa: BLE001 - one connection never takes the server down
            self.metrics.count("http_refused", "internal_error")
            print(f"secretsight watch: HTTP connection failed: {type(exc).__name__}: {exc}",
                  file=sys.stderr)
        finally:
            self.connections -= 1
            writer.close()
            with contextlib.suppress(*_CLIENT_GONE, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            if task is not None:
                self._tasks.discard(task)

    async def _next_event(self, conn: h11.Connection, reader: asyncio.StreamReader,
                          deadline: float) -> Any:
        loop = asyncio.get_running_loop()
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise _Timeout
            try:
                data = await asyncio.wait_for(reader.read(65536), remaining)
            except TimeoutError:
                raise _Timeout from None
            conn.receive_data(data)  # b"" is EOF: h11 then reports an incomplete message

    async def _one_request(self, conn: h11.Connection, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection is to be closed."""
        loop = asyncio.get_running_loop()
        lim = self.limits
        try:
            req = await self._next_event(conn, reader, loop.time() + lim.header_timeout_seconds)
        except _Timeout:
            if conn.their_state is h11.IDLE and not conn.trailing_data[0]:
                return False  # an idle keep-alive connection: just close it
            self.metrics.count("http_refused", "header_timeout")
            await self._send(conn, writer, 408, {"error": "request headers not received in "
                                                 "time"}, "other", close=True)
            return False
        except h11.RemoteProtocolError as exc:
            code = 431 if "exceeds" in str(exc).lower() else 400
            await self._send(conn, writer, code, {"error": f"bad request: {exc}"}, "other",
                             close=True)
            return False
        if isinstance(req, h11.ConnectionClosed):
            return False
        assert isinstance(req, h11.Request)
        path = req.target.decode("latin-1").split("?")[0]
        known = path if path in _PATHS else "other"
        method = req.method.decode("latin-1")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in req.headers}

        def reply(code: int, body: dict[str, Any] | str, close: bool = False,
                  ctype: str = "application/json", extra: dict[str, str] | None = None) -> Any:
            return self._send(conn, writer, code, body, known, close=close, ctype=ctype,
                              extra=extra)

        if method == "GET":
            if path == "/healthz":
                await reply(200, {"status": "ok"})
            elif path == "/metrics":
                if self._authorized(headers):
                    await reply(200, self.metrics.render(),
                                ctype="text/plain; version=0.0.4; charset=utf-8")
                else:
                    await self._unauthorized(reply)
                    return False
            elif path == "/ingest":
                await reply(405, {"error": "use POST"}, extra={"Allow": "POST"})
            else:
                await reply(404, {"error": f"no such endpoint {path}"})
            return await self._discard_body(conn, reader)
        if method != "POST" or path != "/ingest":
            if path in _PATHS:
                await reply(405, {"error": "use POST /ingest"}, close=True,
                            extra={"Allow": "POST" if path == "/ingest" else "GET"})
            else:
                await reply(404, {"error": f"no such endpoint {path}"}, close=True)
            return False
        if not self._authorized(headers):
            await self._unauthorized(reply)
            return False
        declared = headers.get("content-length")
        size = int(declared) if declared is not None else self.max_body  # h11 checked it
        if size > self.max_body:
            await reply(413, {"error": f"body of {size} bytes exceeds the limit of "
                                       f"{self.max_body} bytes"}, close=True)
            return False
        if self.inflight_bytes + size > lim.max_inflight_body_bytes:
            self.metrics.count("http_refused", "inflight_bytes")
            await reply(503, {"error": "too many request bodies in flight; retry"}, close=True,
                        extra={"Retry-After": "1"})
            return False
        self.inflight_bytes += size
        try:
            return await self._ingest(conn, reader, writer, headers, reply)
        finally:
            self.inflight_bytes -= size
            if size >= _TRIM_AFTER and self.inflight_bytes == 0:
                _release_memory()

    async def _discard_body(self, conn: h11.Connection, reader: asyncio.StreamReader) -> bool:
        """A GET with a body (unusual but legal): read it so the connection can be reused."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.body_timeout_seconds
        try:
            while not isinstance(await self._next_event(conn, reader, deadline),
                                 h11.EndOfMessage):
                pass
        except (_Timeout, h11.RemoteProtocolError):
            return False
        return True

    async def _ingest(self, conn: h11.Connection, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter, headers: dict[str, str], reply: Any) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.body_timeout_seconds
        if conn.they_are_waiting_for_100_continue:  # curl sends `Expect: 100-continue`
            writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[]))
                         or b"")
        parts: list[bytes] = []
        got = 0
        try:
            while True:
                event = await self._next_event(conn, reader, deadline)
                if isinstance(event, h11.EndOfMessage):
                    break
                if isinstance(event, h11.Data):
                    got += len(event.data)
                    if got > self.max_body:
                        await reply(413, {"error": f"body exceeds the limit of {self.max_body} "
                                                   "bytes"}, close=True)
                        return False
                    parts.append(bytes(event.data))
        except _Timeout:
            self.metrics.count("http_refused", "body_timeout")
            await reply(408, {"error": "request body not received in time; nothing was "
                                       "ingested"}, close=True)
            return False
        except h11.RemoteProtocolError as exc:
            await reply(400, {"error": f"the body did not arrive complete ({exc}); nothing was "
                                       "ingested"}, close=True)
            return False
        body = b"".join(parts)
        del parts
        enc = headers.get("content-encoding", "").lower()
        try:
            # Decoding a 10 MB body takes a while: off the event loop, so timeouts keep ticking.
            events, errors, skips = await loop.run_in_executor(
                None, _decode_body, body, enc, self.max_body)
        except DecodeError as exc:
            self.metrics.count("parse_errors", ("http", exc.reason))
            await reply(413 if exc.reason == "too_large" else 400, {"error": str(exc)})
            return True
        del body
        for reason, _ in errors:
            self.metrics.count("parse_errors", ("http", reason))
        for reason in skips:
            self.metrics.count("skipped", ("http", reason))
        shown = [m for _, m in _numbered(errors)][:5]
        if not events and not skips:
            await reply(400, {"error": "no usable event in the body", "rejected": len(errors),
                              "errors": shown})
            return True
        if not events:  # only deliberate skips (e.g. Vault request entries): nothing to do
            await reply(200, {"accepted": 0, "rejected": len(errors), "skipped": len(skips),
                              "errors": shown})
            return True
        ack = _Ack(loop)
        result: dict[str, Any] = {}
        try:
            self.work.put_nowait(("events", "http", (events, ack, result)))
        except queue.Full:
            self.metrics.count("http_refused", "queue_full")
            await reply(503, {"error": "the side-car is busy; retry"},
                        extra={"Retry-After": "1"})
            return True
        try:
            await asyncio.wait_for(asyncio.shield(ack.future), self.ack_timeout)
        except TimeoutError:
            await reply(503, {"error": "events queued but not committed in time; retry"})
            return True
        if result.get("error"):
            await reply(500, {"error": result["error"]})
            return True
        await reply(200, {"accepted": len(events), "rejected": len(errors),
                          "skipped": len(skips), "errors": shown})
        return True

    def _authorized(self, headers: dict[str, str]) -> bool:
        if not self.token:
            return True
        got = headers.get("authorization", "")
        return got.startswith("Bearer ") and hmac.compare_digest(
            got[7:].strip().encode(), self.token.encode())

    async def _unauthorized(self, reply: Any) -> None:
        await reply(401, {"error": "missing or wrong bearer token"}, close=True,
                    extra={"WWW-Authenticate": 'Bearer realm="secretsight"'})

    async def _send(self, conn: h11.Connection, writer: asyncio.StreamWriter, code: int,
                    body: dict[str, Any] | str, path: str, *, close: bool = False,
                    ctype: str = "application/json", extra: dict[str, str] | None = None
                    ) -> None:
        self.metrics.count("http_requests", (path, code))
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return  # h11 cannot answer in this state (e.g. the request line never came)
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        hdrs = [("Content-Type", ctype), ("Content-Length", str(len(data)))]
        hdrs += list((extra or {}).items())
        if close:
            hdrs.append(("Connection", "close"))
        try:
            out = conn.send(h11.Response(status_code=code, headers=hdrs))
            out += conn.send(h11.Data(data=data)) or b""
            out += conn.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:
            return
        writer.write(out or b"")
        try:
            await asyncio.wait_for(writer.drain(), self.limits.body_timeout_seconds)
        except TimeoutError:
            raise _Timeout from None


def _decode_body(body: bytes, enc: str, limit: int) -> tuple[
        list[dict[str, Any]], list[tuple[str, tuple[int, str]]], list[str]]:
    if enc == "gzip":
        body = _bounded_gunzip(body, limit)
    elif enc not in ("", "identity"):
        raise DecodeError("bad_encoding", f"unsupported Content-Encoding {enc!r}")
    try:
        return parse_body(body)
    except RecursionError:  # a nesting deeper than the interpreter's stack, anywhere
        raise DecodeError("too_deep", "JSON nested too deeply") from None


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
    if body[:3] == b"\xef\xbb\xbf":  # a UTF-8 byte order mark is not data
        body = body[3:]
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
            items = _loads(stripped)  # orjson: a depth limit instead of a RecursionError
        except ValueError as exc:
            raise DecodeError("bad_json", f"body starts like a JSON array but is not one: {exc}"
                              ) from exc
        if not isinstance(items, list):
            raise DecodeError("bad_json", "body starts like a JSON array but is not one")
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
