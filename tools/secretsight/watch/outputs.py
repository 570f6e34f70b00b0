"""Where findings go: NDJSON on stdout, appended to a file, or POSTed to an HTTP endpoint.

Each finding line carries a deterministic `id` (a hash of its content) so a receiver can
de-duplicate. A file output is exactly-once across crashes: its size before each batch is
committed with the state, and a restart truncates it back to that size before re-writing the
committed batch (see runner.py). stdout is at-least-once for the last batch; HTTP is
at-least-once through a durable spool (spool.py), retried in the background.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from secretsight.alerting.settings import AlertingSettings
from secretsight.errors import SecretSightError
from secretsight.findings import Finding
from secretsight.limits import SpoolLimits
from secretsight.watch.spool import Spool


class OutputError(SecretSightError):
    """An output cannot take findings (a full disk, an I/O error): the run stops, exit 2."""


def finding_json(f: Finding, alerting: AlertingSettings | None = None) -> dict[str, Any]:
    body = f.to_json(alerting)
    # The id names the finding, not where its runbook lives: the link stays out of the digest.
    ident = {k: v for k, v in body.items() if k != "runbook"}
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]
    return {"id": digest, **body}


class Output:
    name = "output"

    def write(self, findings: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def position(self) -> Any:
        return None

    def restore(self, position: Any) -> None:
        pass

    def close(self) -> None:
        pass


class StdoutOutput(Output):
    name = "stdout"

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stdout

    def write(self, findings: list[dict[str, Any]]) -> None:
        for f in findings:
            self.stream.write(json.dumps(f, sort_keys=True) + "\n")
        self.stream.flush()


class FileOutput(Output):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()
        self.name = f"file:{self.path}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "ab")  # noqa: SIM115 - held for the run
        # fsync makes a regular file's lines durable before the next commit; a device or a
        # pipe (/dev/null, a FIFO) cannot be synced (EINVAL) and has nothing to make durable.
        self.syncable = stat.S_ISREG(os.fstat(self.fh.fileno()).st_mode)

    def write(self, findings: list[dict[str, Any]]) -> None:
        if not findings:
            return
        self.fh.write(b"".join(json.dumps(f, sort_keys=True).encode() + b"\n" for f in findings))
        self.fh.flush()
        if self.syncable:
            os.fsync(self.fh.fileno())

    def position(self) -> int:
        return self.fh.tell()

    def restore(self, position: Any) -> None:
        if isinstance(position, int) and position < os.fstat(self.fh.fileno()).st_size:
            self.fh.truncate(position)  # what a killed run wrote after its last commit
        self.fh.seek(0, os.SEEK_END)

    def close(self) -> None:
        self.fh.close()


class HttpOutput(Output):
    """POST findings as NDJSON, at-least-once: `write` only appends them to the spool (a local
    SQLite insert, so the watch loop never waits on the receiver); a sender thread POSTs the
    oldest first, removes them on a 2xx, and on any failure (refused, timeout, non-2xx) retries
    with exponential backoff. See spool.py for the policy when the spool is full."""

    BATCH = 500  # findings per POST

    def __init__(self, url: str, token: str | None = None, *, spool: Spool | None = None,
                 limits: SpoolLimits | None = None,
                 on_count: Callable[[str, str, int], None] | None = None) -> None:
        self.url = url
        self.name = f"http:{url}"
        self.token = token
        self.limits = limits or SpoolLimits()
        self.spool = spool or Spool(None)
        self.on_count = on_count or (lambda output, event, n: None)
        self.failures = 0  # consecutive failed POSTs (the backoff exponent)
        self.last_error = ""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send_loop, name=f"output {url}",
                                        daemon=True)
        self._thread.start()

    def write(self, findings: list[dict[str, Any]]) -> None:
        if not findings:
            return
        rows = [json.dumps(f, sort_keys=True).encode() for f in findings]
        dropped = self.spool.add(self.name, rows, self.limits.max_findings)
        self.on_count(self.name, "spooled", len(rows))
        if dropped:
            self.on_count(self.name, "dropped", dropped)
            print(f"secretsight watch: spool for {self.url} is full "
                  f"({self.limits.max_findings}); dropped the {dropped} oldest finding(s)",
                  file=sys.stderr)
        self._wake.set()

    def pending(self) -> int:
        return self.spool.depth(self.name)

    def _post(self, body: bytes) -> None:
        headers = {"Content-Type": "application/x-ndjson"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.limits.request_timeout_seconds) as resp:
            if not 200 <= resp.status < 300:
                raise OSError(f"HTTP {resp.status}")

    def send_once(self) -> bool:
        """POST one batch from the spool; True when the spool is now empty."""
        batch = self.spool.take(self.name, self.BATCH)
        if not batch:
            return True
        if self.failures:
            self.on_count(self.name, "retried", len(batch))
        try:
            self._post(b"".join(f + b"\n" for _, f in batch))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            self.failures += 1
            self.last_error = str(getattr(exc, "reason", exc))
            self.on_count(self.name, "failed_posts", 1)
            return False
        self.spool.remove([seq for seq, _ in batch])
        self.failures = 0
        self.on_count(self.name, "delivered", len(batch))
        return len(batch) < self.BATCH and self.pending() == 0

    def _backoff(self) -> float:
        lim = self.limits
        return min(lim.retry_max_seconds, lim.retry_initial_seconds * 2 ** (self.failures - 1))

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            try:
                empty = self.send_once()
            except Exception as exc:  # noqa: BLE001 - the sender must outlive a bad spool read
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                empty = False
            if self.failures:
                self._stop.wait(self._backoff())  # new findings do not cut a backoff short
            elif empty:
                self._wake.wait(1.0)
                self._wake.clear()

    def drain(self, seconds: float) -> int:
        """Keep delivering for up to `seconds`; the number of findings still undelivered."""
        deadline = time.monotonic() + seconds
        self._wake.set()
        while self.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.pending()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(self.limits.request_timeout_seconds + 5)


def open_output(spec: str, token: str | None = None, *, spool: Spool | None = None,
                limits: SpoolLimits | None = None,
                on_count: Callable[[str, str, int], None] | None = None) -> Output:
    if spec in ("-", "stdout"):
        return StdoutOutput()
    if spec.startswith(("http://", "https://")):
        return HttpOutput(spec, token, spool=spool, limits=limits, on_count=on_count)
    spec = spec.removeprefix("file:")
    if not spec:
        raise SecretSightError("empty --output")
    return FileOutput(spec)
