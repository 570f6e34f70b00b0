"""A Watcher serving POST /ingest and GET /metrics on a real loopback socket, its loop in a
thread, findings written to a buffer (tests/watch)."""

from __future__ import annotations

import io
import json
import queue
import threading
import urllib.error
import urllib.request
from typing import Any

from secretsight.config import Config
from secretsight.detect import Detectors, open_store
from secretsight.limits import HttpLimits
from secretsight.watch.http import IngestServer
from secretsight.watch.metrics import Metrics
from secretsight.watch.outputs import StdoutOutput
from secretsight.watch.runner import Watcher

TOKEN = "s3cret-token"


class Running:
    def __init__(self, token: str | None, max_body: int = 64 * 1024,
                 limits: HttpLimits | None = None,
                 address: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        self.work: queue.Queue = queue.Queue()
        self.metrics = Metrics()
        self.sink = io.StringIO()
        det = Detectors(Config(), open_store(None))
        self.watcher = Watcher(det, files=[], outputs=[StdoutOutput(self.sink)],
                               metrics=self.metrics, work=self.work, commit_interval=0.05)
        self.server = IngestServer(address, work=self.work, metrics=self.metrics,
                                   token=token, max_body=max_body, ack_timeout=10,
                                   **({"limits": limits} if limits else {}))
        self.server.start()
        self.thread = threading.Thread(target=self.watcher.run, daemon=True)
        self.thread.start()

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, token: str | None = TOKEN
                ) -> tuple[int, Any]:
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.server.url + path, data=body, headers=h, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                code, raw, ctype = resp.status, resp.read(), resp.headers["Content-Type"]
        except urllib.error.HTTPError as exc:
            code, raw, ctype = exc.code, exc.read(), exc.headers["Content-Type"]
        return code, (json.loads(raw) if "json" in (ctype or "") else raw.decode())

    def findings(self) -> list[dict]:
        return [json.loads(x) for x in self.sink.getvalue().splitlines()]

    def stop(self) -> None:
        self.watcher.stop_requested = True
        self.thread.join(10)
        self.server.shutdown()
        self.server.server_close()


def ndjson(events: list[dict]) -> bytes:
    return "".join(json.dumps(e) + "\n" for e in events).encode()
