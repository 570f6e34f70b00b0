"""Maintenance windows with Alertmanager `time_intervals` semantics.

Follows prometheus/alertmanager `timeinterval` (ContainsTime and the YAML validation):
- the time is converted to the window's `location` (IANA zone, zoneinfo) first, so `09:00` means
  local wall-clock time on both sides of a DST change;
- `times`: start_time inclusive, end_time exclusive, minutes of the day; `24:00` is a valid end;
  start must be strictly before end: a range crossing midnight is invalid (write two ranges);
- `weekdays` (sunday..saturday, ranges `monday:friday`, start <= end), `days_of_month` (1..31 or
  -1..-31 counted from the end of the month; a negative start needs a negative end; a range is
  clamped to the month and skipped when its start is past the month's end), `months`
  (names or 1..12), `years`: inclusive ranges;
- every constraint given must hold; an absent constraint always holds; a window matches when
  any of its intervals matches.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from secretsight.config import MaintenanceWindow, TimeInterval
from secretsight.errors import SecretSightError

_WEEKDAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december"]

Range = tuple[int, int]


def _split(spec: str) -> tuple[str, str]:
    parts = spec.strip().lower().split(":")
    if len(parts) == 1:
        return parts[0], parts[0]
    if len(parts) == 2:
        return parts[0].strip(), parts[1].strip()
    raise ValueError(f"bad range {spec!r}")


def _weekday(v: str) -> int:
    if v not in _WEEKDAYS:
        raise ValueError(f"{v!r} is not a weekday")
    return _WEEKDAYS.index(v)


def _month(v: str) -> int:
    if v in _MONTHS:
        return _MONTHS.index(v) + 1
    n = int(v)
    if not 1 <= n <= 12:
        raise ValueError(f"{v!r} is not a month")
    return n


def _named_ranges(specs: list[str], parse: Callable[[str], int], order_error: str) -> list[Range]:
    """`monday:friday` / `january:march` / `5` -> (first, last) ranges, in order or refused."""
    out: list[Range] = []
    for spec in specs:
        a, b = _split(spec)
        r = (parse(a), parse(b))
        if r[0] > r[1]:
            raise ValueError(f"{order_error}: {spec!r}")
        out.append(r)
    return out


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


@dataclass(frozen=True)
class CompiledInterval:
    times: tuple[Range, ...]
    weekdays: tuple[Range, ...]
    days_of_month: tuple[Range, ...]
    months: tuple[Range, ...]
    years: tuple[Range, ...]

    def contains(self, t: datetime) -> bool:
        """`t` must already be in the window's location (Alertmanager ContainsTime)."""
        if self.times:
            minute = t.hour * 60 + t.minute
            if not any(s <= minute < e for s, e in self.times):
                return False
        if self.days_of_month:
            dim = calendar.monthrange(t.year, t.month)[1]
            ok = False
            for b, e in self.days_of_month:
                begin = dim + b + 1 if b < 0 else b
                end = dim + e + 1 if e < 0 else e
                if begin > dim:  # "skip clamping if the beginning date is after the month"
                    continue
                begin = max(-dim, min(begin, dim))
                end = max(-dim, min(end, dim))
                if begin <= t.day <= end:
                    ok = True
                    break
            if not ok:
                return False
        if self.months and not any(b <= t.month <= e for b, e in self.months):
            return False
        if self.weekdays:
            wd = (t.weekday() + 1) % 7  # Python Monday=0 -> Go Sunday=0
            if not any(b <= wd <= e for b, e in self.weekdays):
                return False
        if self.years and not any(b <= t.year <= e for b, e in self.years):  # noqa: SIM103
            return False
        return True


def compile_interval(ti: TimeInterval, where: str) -> CompiledInterval:
    try:
        times = []
        for tr in ti.times:
            s, e = _minutes(tr.start_time), _minutes(tr.end_time)
            if s >= e:
                raise ValueError(
                    f"start time {tr.start_time} cannot be equal or greater than end time "
                    f"{tr.end_time} (a range crossing midnight is two ranges)")
            times.append((s, e))
        weekdays = _named_ranges(ti.weekdays, _weekday, "start day cannot be after end day")
        doms: list[Range] = []
        for spec in ti.days_of_month:
            d0, d1 = (int(x) for x in _split(spec))
            for d in (d0, d1):
                if d == 0 or not -31 <= d <= 31:
                    raise ValueError(f"{d} is not a valid day of the month")
            if d0 < 0 and d1 > 0:
                raise ValueError(f"end day must be negative if start day is negative: {spec!r}")
            # as Alertmanager: negative days checked against a 28-day month
            if (28 + d0 if d0 < 0 else d0) > (28 + d1 if d1 < 0 else d1):
                raise ValueError(f"end day {d1} is before start day {d0}")
            doms.append((d0, d1))
        months = _named_ranges(ti.months, _month, "end month is before start month")
        years: list[Range] = []
        for spec in ti.years:
            y0, y1 = (int(x) for x in _split(spec))
            if y0 > y1:
                raise ValueError(f"end year is before start year: {spec!r}")
            years.append((y0, y1))
    except ValueError as exc:
        raise SecretSightError(f"invalid maintenance window {where}: {exc}") from exc
    return CompiledInterval(tuple(times), tuple(weekdays), tuple(doms), tuple(months), tuple(years))


class MaintenanceCalendar:
    """Is an instant inside any configured maintenance window?"""

    def __init__(self, windows: list[MaintenanceWindow]) -> None:
        self.windows: list[tuple[str, ZoneInfo, list[CompiledInterval]]] = []
        for w in windows:
            try:
                zone = ZoneInfo(w.location)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise SecretSightError(
                    f"maintenance window {w.name!r}: unknown location {w.location!r}") from exc
            self.windows.append(
                (w.name, zone, [compile_interval(ti, repr(w.name)) for ti in w.time_intervals]))
        self._cache: dict[int, str | None] = {}

    def window_at(self, epoch: float) -> str | None:
        """The name of the window containing the instant, or None when off-hours."""
        minute = int(epoch // 60)  # every constraint has minute granularity
        if minute in self._cache:
            return self._cache[minute]
        found = None
        utc = datetime.fromtimestamp(minute * 60, tz=UTC)
        for name, zone, intervals in self.windows:
            local = utc.astimezone(zone)
            if any(i.contains(local) for i in intervals):
                found = name
                break
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[minute] = found
        return found
