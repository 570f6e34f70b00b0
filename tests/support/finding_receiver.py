"""An HTTP receiver on loopback that records every POST (Authorization header, body) and answers
with a settable status: the far end of the watch side-car's HTTP output (tests/watch)."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver(ThreadingHTTPServer):
    def __init__(self, status: int, port: int = 0) -> None:
        self.bodies: list[tuple[str, bytes]] = []
        self.status = status
        super().__init__(("127.0.0.1", port), _Handler)


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
