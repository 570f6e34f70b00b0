"""Where findings go: NDJSON on stdout, appended to a file, or POSTed to an HTTP endpoint.

Each finding line carries a deterministic `id` (a hash of its content) so a receiver can
de-duplicate. A file output is exactly-once across crashes: its size before each batch is
committed with the state, and a restart truncates it back to that size before re-writing the
committed batch (see runner.py). stdout and HTTP are at-least-once for the last batch.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from secretsight.alerting.settings import AlertingSettings
from secretsight.errors import SecretSightError
from secretsight.findings import Finding


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

    def write(self, findings: list[dict[str, Any]]) -> None:
        if not findings:
            return
        self.fh.write(b"".join(json.dumps(f, sort_keys=True).encode() + b"\n" for f in findings))
        self.fh.flush()
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
    """POST a batch as NDJSON; retried with backoff; failures are counted and logged."""

    def __init__(self, url: str, token: str | None = None, retries: int = 3,
                 timeout: float = 10.0, on_error: Any = None) -> None:
        self.url = url
        self.name = f"http:{url}"
        self.token = token
        self.retries = retries
        self.timeout = timeout
        self.on_error = on_error

    def write(self, findings: list[dict[str, Any]]) -> None:
        if not findings:
            return
        body = b"".join(json.dumps(f, sort_keys=True).encode() + b"\n" for f in findings)
        headers = {"Content-Type": "application/x-ndjson"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        err: Exception | None = None
        for attempt in range(self.retries):
            try:
                req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    if 200 <= resp.status < 300:
                        return
            except (urllib.error.URLError, OSError) as exc:
                err = exc
            time.sleep(0.2 * (2 ** attempt))
        print(f"secretsight watch: could not POST {len(findings)} finding(s) to {self.url}: {err};"
              " they were written to stderr instead", file=sys.stderr)
        for f in findings:
            print(json.dumps(f, sort_keys=True), file=sys.stderr)
        if self.on_error:
            self.on_error(self.name)


def open_output(spec: str, token: str | None = None) -> Output:
    if spec in ("-", "stdout"):
        return StdoutOutput()
    if spec.startswith(("http://", "https://")):
        return HttpOutput(spec, token)
    spec = spec.removeprefix("file:")
    if not spec:
        raise SecretSightError("empty --output")
    return FileOutput(spec)
