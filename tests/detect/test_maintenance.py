"""Maintenance windows follow Alertmanager `time_intervals` semantics."""

from __future__ import annotations

from datetime import datetime

import pytest

from secretsight.config import MaintenanceWindow
from secretsight.detect.events import parse_ts
from secretsight.detect.maintenance import MaintenanceCalendar
from secretsight.errors import SecretSightError


def cal(location: str = "UTC", **interval) -> MaintenanceCalendar:
    return MaintenanceCalendar([MaintenanceWindow.model_validate(
        {"name": "w", "location": location, "time_intervals": [interval]})])


BERLIN_OFFICE = {"times": [{"start_time": "09:00", "end_time": "17:00"}]}

CASES = [
    # id, calendar kwargs, instant, inside?
    ("times/start_inclusive", {"times": [{"start_time": "06:00", "end_time": "22:00"}]},
     "2026-01-05T06:00:00Z", True),
    ("times/end_exclusive", {"times": [{"start_time": "06:00", "end_time": "22:00"}]},
     "2026-01-05T22:00:00Z", False),
    ("times/last_minute_inside", {"times": [{"start_time": "06:00", "end_time": "22:00"}]},
     "2026-01-05T21:59:59Z", True),
    ("times/end_24_00", {"times": [{"start_time": "20:00", "end_time": "24:00"}]},
     "2026-01-05T23:59:00Z", True),
    ("times/overnight_as_two_ranges", {"times": [{"start_time": "22:00", "end_time": "24:00"},
                                                 {"start_time": "00:00", "end_time": "06:00"}]},
     "2026-01-06T02:00:00Z", True),
    ("weekdays/monday_to_friday_saturday", {"weekdays": ["monday:friday"]},
     "2026-01-10T12:00:00Z", False),
    ("weekdays/single_sunday", {"weekdays": ["sunday"]}, "2026-01-11T12:00:00Z", True),
    ("days_of_month/last_day_of_leap_february", {"days_of_month": ["-1"]},
     "2028-02-29T12:00:00Z", True),
    ("days_of_month/28th_is_not_last_in_leap_year", {"days_of_month": ["-1"]},
     "2028-02-28T12:00:00Z", False),
    ("days_of_month/last_three_days", {"days_of_month": ["-3:-1"]}, "2026-01-29T00:00:00Z", True),
    ("days_of_month/positive_to_negative", {"days_of_month": ["25:-1"]},
     "2026-02-28T00:00:00Z", True),
    ("days_of_month/range_clamped_to_short_month", {"days_of_month": ["28:31"]},
     "2026-02-28T00:00:00Z", True),
    ("days_of_month/start_past_month_end_skipped", {"days_of_month": ["30:31"]},
     "2026-02-28T00:00:00Z", False),
    ("months/names_range", {"months": ["january:march"]}, "2026-03-31T23:00:00Z", True),
    ("months/number", {"months": ["12"]}, "2026-11-30T00:00:00Z", False),
    ("years/range", {"years": ["2025:2026"]}, "2027-01-01T00:00:00Z", False),
    ("location/berlin_summer_0930_local", BERLIN_OFFICE | {"location": "Europe/Berlin"},
     "2026-07-06T07:30:00Z", True),
    ("location/berlin_winter_0830_local", BERLIN_OFFICE | {"location": "Europe/Berlin"},
     "2026-01-05T07:30:00Z", False),
    ("location/dst_spring_forward_day", BERLIN_OFFICE | {"location": "Europe/Berlin"},
     "2026-03-29T07:00:00Z", True),  # 09:00 CEST, the first day of summer time
    ("location/dst_fall_back_day", BERLIN_OFFICE | {"location": "Europe/Berlin"},
     "2026-10-25T07:59:00Z", False),  # 08:59 CET, the first day of winter time
    ("location/weekday_in_local_zone", {"weekdays": ["saturday"], "location": "Asia/Tokyo"},
     "2026-01-09T16:00:00Z", True),  # Friday 16:00 UTC = Saturday 01:00 in Tokyo
]


@pytest.mark.parametrize("spec,instant,inside", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_window_contains(spec: dict, instant: str, inside: bool) -> None:
    spec = dict(spec)
    location = spec.pop("location", "UTC")
    assert (cal(location, **spec).window_at(parse_ts(instant)) is not None) is inside


INVALID = [
    ("times/crossing_midnight", {"times": [{"start_time": "22:00", "end_time": "06:00"}]}),
    ("times/empty_range", {"times": [{"start_time": "10:00", "end_time": "10:00"}]}),
    ("weekdays/wrapping_range", {"weekdays": ["saturday:sunday"]}),
    ("weekdays/unknown_name", {"weekdays": ["funday"]}),
    ("days_of_month/zero", {"days_of_month": ["0"]}),
    ("days_of_month/negative_start_positive_end", {"days_of_month": ["-3:5"]}),
    ("days_of_month/end_before_start", {"days_of_month": ["10:5"]}),
    ("months/out_of_range", {"months": ["13"]}),
]


@pytest.mark.parametrize("spec", [c[1] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_window_is_a_config_error(spec: dict) -> None:
    with pytest.raises(SecretSightError, match="invalid maintenance window"):
        cal(**spec)


def test_unknown_location_is_a_config_error() -> None:
    with pytest.raises(SecretSightError, match="unknown location"):
        cal("Mars/Olympus_Mons", **BERLIN_OFFICE)


def test_every_constraint_must_hold() -> None:
    c = cal(weekdays=["monday:friday"], times=[{"start_time": "06:00", "end_time": "22:00"}])
    monday_night = datetime.fromisoformat("2026-01-05T23:00:00+00:00").timestamp()
    saturday_noon = datetime.fromisoformat("2026-01-10T12:00:00+00:00").timestamp()
    assert c.window_at(monday_night) is None
    assert c.window_at(saturday_noon) is None
