"""Real processes for the end-to-end alerting tests, on loopback only: a webhook receiver,
Alertmanager with the generated config (each placeholder receiver given a webhook, as a user
fills them in), Prometheus with the generated rules. Each process is ours and stopped by its
handle."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import pytest
import yaml

from secretsight.alerting.alertmanager import CONFIG_FILE
from secretsight.config import Config
from support.prometheus_tools import alerting_files


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    package = "prometheus-alertmanager" if "alertmanager" in names[0] else "prometheus"
    pytest.skip(f"{names[0]} is not installed (apt-get install {package}; scripts/test.sh "
                "installs it)")


@contextmanager
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP server recording each POSTed Alertmanager notification (with its path:
    the receiver name)."""
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's method name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"receiver": self.path.strip("/"), **json.loads(body)})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def wait_ready(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}")
        try:
            with urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{what} not ready within {timeout:.0f} s ({url})")


@contextmanager
def process(args: list[str], ready_url: str, what: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(ready_url, proc, what)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def alertmanager(tmp_path: Path, config: Config, hook: str) -> Iterator[str]:
    """The generated config with a webhook per receiver and 1 s group waits; yields its URL."""
    exe = binary("prometheus-alertmanager", "alertmanager")
    doc = yaml.safe_load(alerting_files(config)[CONFIG_FILE])
    for receiver in doc["receivers"]:
        receiver["webhook_configs"] = [{"url": f"{hook}/{receiver['name']}",
                                        "send_resolved": False}]
    doc["route"].update(group_wait="1s", group_interval="1s")
    for route in doc["route"]["routes"][0]["routes"]:
        route.pop("group_wait", None)
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(doc), "utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with process([exe, f"--config.file={path}", f"--storage.path={tmp_path / 'am-data'}",
                  f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                 f"{url}/-/ready", "alertmanager"):
        yield url


def post_alert(url: str, **labels: str) -> None:
    alert = [{"labels": {"team": "security", "severity": "medium", **labels},
              "startsAt": datetime.now(UTC).isoformat()}]
    req = Request(f"{url}/api/v2/alerts", data=json.dumps(alert).encode(),
                  headers={"Content-Type": "application/json"}, method="POST")
    with urlopen(req, timeout=5) as r:
        assert r.status == 200


def delivered(received: list[dict[str, Any]], alertname: str, wait: float) -> list[dict[str, Any]]:
    """(receiver, alert labels) of the notifications carrying `alertname`, waiting up to `wait`
    seconds for the first."""
    deadline = time.monotonic() + wait
    while True:
        hits = [{"receiver": m["receiver"], **a["labels"]} for m in list(received)
                for a in m["alerts"] if a["labels"].get("alertname") == alertname]
        if hits or time.monotonic() >= deadline:
            return hits
        time.sleep(0.2)
