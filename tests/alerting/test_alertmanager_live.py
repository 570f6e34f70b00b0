"""The generated Alertmanager config on a real Alertmanager (Debian's prometheus-alertmanager,
loopback only): an admin alert is muted inside a maintenance window and delivered outside it,
a bulk read is delivered inside the window, and Alertmanager's decision agrees with the
admin_off_hours detector's calendar (secretsight.detect.maintenance) on the same config.

The receivers get a webhook to a local HTTP server (what a user adds under the placeholder
names) and the group waits are shortened; the routes and time intervals are the generated ones.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.alerting_stack import alertmanager, delivered, post_alert, webhook

from secretsight.config import Config, MaintenanceWindow, TimeInterval, TimeRange
from secretsight.detect.maintenance import MaintenanceCalendar

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

pytestmark = pytest.mark.prometheus_tools


def _window(inside: bool) -> MaintenanceWindow:
    """A whole-day window on today's (inside) or tomorrow's (outside) UTC weekday."""
    now = datetime.now(UTC)
    if now.hour == 23 and now.minute >= 58:
        pytest.skip("too close to midnight UTC for a whole-day window")
    day = now if inside else now + timedelta(days=1)
    return MaintenanceWindow(name="today" if inside else "tomorrow", time_intervals=[
        TimeInterval(weekdays=[WEEKDAYS[day.weekday()]],
                     times=[TimeRange(start_time="00:00", end_time="24:00")])])


@pytest.mark.parametrize("inside", [True, False], ids=["inside-window", "outside-window"])
def test_admin_alert_muted_exactly_when_the_detector_calendar_says_maintenance(
        tmp_path: Path, inside: bool) -> None:
    config = Config(maintenance_windows=[_window(inside)])
    # the detector's calendar on the same config
    in_maintenance = MaintenanceCalendar(config.maintenance_windows).window_at(time.time())
    assert (in_maintenance is not None) == inside
    receivers = config.alerting.receivers
    with webhook() as (hook, received), alertmanager(tmp_path, config, hook) as url:
        post_alert(url, alertname="admin_activity", anomaly="admin_off_hours")
        post_alert(url, alertname="bulk_read", anomaly="bulk_read", severity="high")
        # the page route is never muted: delivered inside the window too
        bulk = delivered(received, "bulk_read", 15)
        assert [h["receiver"] for h in bulk] == [receivers.page]
        # both alerts were posted together: by now an unmuted admin alert has arrived too
        admin = delivered(received, "admin_activity", 5)
        assert [h["receiver"] for h in admin] == ([] if inside else [receivers.chat])
