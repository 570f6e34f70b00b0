"""The generated Alertmanager config on a real Alertmanager (Debian's prometheus-alertmanager,
loopback only): an admin alert is muted inside a maintenance window and delivered outside it,
a bulk read is delivered inside the window, and Alertmanager's decision agrees with the
admin_off_hours detector's calendar (secretsight.detect.maintenance) on the same config.

The receivers get a webhook to a local HTTP server (what a user adds under the placeholder
names) and the group waits are shortened; the routes and time intervals are the generated ones.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.request import Request, urlopen

import pytest
import yaml
from alerting_tools import alerting_files

from secretsight.alerting.alertmanager import CONFIG_FILE
from secretsight.config import Config, MaintenanceWindow, TimeInterval, TimeRange
from secretsight.detect.maintenance import MaintenanceCalendar

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"path": self.path, **json.loads(body)})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def webhook() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []
    handler = type("Hook", (_Hook,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def _window_containing_now(inside: bool) -> MaintenanceWindow:
    now = datetime.now(UTC)
    if now.hour == 23 and now.minute >= 58:
        pytest.skip("too close to midnight UTC for a whole-day window")
    day = now if inside else now + timedelta(days=1)
    return MaintenanceWindow(name="today" if inside else "tomorrow", time_intervals=[
        TimeInterval(weekdays=[WEEKDAYS[day.weekday()]],
                     times=[TimeRange(start_time="00:00", end_time="24:00")])])


def _start(tmp_path: Path, config: Config, hook: str) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.skip("prometheus-alertmanager is not installed (apt-get install "
                    "prometheus-alertmanager; scripts/test.sh installs it)")
    doc = yaml.safe_load(alerting_files(config)[CONFIG_FILE])
    for receiver in doc["receivers"]:  # what the user fills in under each placeholder name
        receiver["webhook_configs"] = [{"url": f"{hook}/{receiver['name']}",
                                        "send_resolved": False}]
    doc["route"].update(group_wait="1s", group_interval="1s")
    for route in doc["route"]["routes"][0]["routes"]:
        route.pop("group_wait", None)
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(doc), "utf-8")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={path}", f"--storage.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urlopen(f"{url}/-/ready", timeout=1) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail("alertmanager did not become ready within 20 s")


def _post(url: str, **labels: str) -> None:
    alert = [{"labels": {"team": "security", "severity": "medium", **labels},
              "startsAt": datetime.now(UTC).isoformat()}]
    req = Request(f"{url}/api/v2/alerts", data=json.dumps(alert).encode(),
                  headers={"Content-Type": "application/json"}, method="POST")
    with urlopen(req, timeout=5) as r:
        assert r.status == 200


def _delivered(received: list[dict], alertname: str, wait: float) -> list[str]:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        hits = [m["path"].strip("/") for m in received
                if any(a["labels"].get("alertname") == alertname for a in m["alerts"])]
        if hits:
            return hits
        time.sleep(0.2)
    return []


@pytest.mark.parametrize("inside", [True, False], ids=["inside-window", "outside-window"])
def test_admin_alert_muted_exactly_when_the_detector_calendar_says_maintenance(
        tmp_path: Path, webhook: tuple[str, list[dict]], inside: bool) -> None:
    hook, received = webhook
    config = Config(maintenance_windows=[_window_containing_now(inside)])
    # the detector's calendar on the same config
    in_maintenance = MaintenanceCalendar(config.maintenance_windows).window_at(time.time())
    assert (in_maintenance is not None) == inside
    proc, url = _start(tmp_path, config, hook)
    try:
        _post(url, alertname="admin_activity", anomaly="admin_off_hours")
        _post(url, alertname="bulk_read", anomaly="bulk_read", severity="high")
        # the page route is never muted: delivered inside the window too
        assert _delivered(received, "bulk_read", 15) == [config.alerting.receivers.page]
        admin = _delivered(received, "admin_activity", 5)
        assert admin == ([] if inside else [config.alerting.receivers.chat])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
