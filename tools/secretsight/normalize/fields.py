"""Typed reads of source fields, timestamps and IP literals, with the contract's rules:
JSON null and "" mean absent; a present field of the wrong JSON type dead-letters the record
(`wrong_type`), so the three implementations agree on what is malformed."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timedelta
from typing import Any

from secretsight.normalize.cells import LONG_MAX, LONG_MIN, list_cell
from secretsight.normalize.codes import DeadLetter

# ---------------------------------------------------------------- typed getters


def opt_str(obj: dict[str, Any], key: str) -> str | None:
    v = obj.get(key)
    if v is None or v == "":
        return None
    if type(v) is not str:
        raise DeadLetter("wrong_type")
    return v


def req_str(obj: dict[str, Any], key: str) -> str:
    v = obj.get(key)
    if v is None or v == "":
        raise DeadLetter("missing_field")
    if type(v) is not str:
        raise DeadLetter("wrong_type")
    return v


def opt_obj(obj: dict[str, Any], key: str) -> dict[str, Any] | None:
    v = obj.get(key)
    if v is None:
        return None
    if type(v) is not dict:
        raise DeadLetter("wrong_type")
    return v


def opt_int(obj: dict[str, Any], key: str) -> int | None:
    v = obj.get(key)
    if v is None:
        return None
    if type(v) is not int or not LONG_MIN <= v <= LONG_MAX:  # bool is not int: type() is exact
        raise DeadLetter("wrong_type")
    return v


def opt_bool(obj: dict[str, Any], key: str) -> bool | None:
    v = obj.get(key)
    if v is None:
        return None
    if type(v) is not bool:
        raise DeadLetter("wrong_type")
    return v


def opt_list(obj: dict[str, Any], key: str) -> list[Any] | None:
    v = obj.get(key)
    if v is None:
        return None
    if type(v) is not list:
        raise DeadLetter("wrong_type")
    return v


def opt_str_list(obj: dict[str, Any], key: str) -> list[str] | None:
    """A list of strings, as logged (order kept); empty strings dropped; None when empty."""
    v = obj.get(key)
    return None if v is None else _str_list(v)


def _str_list(v: Any) -> list[str] | None:
    if type(v) is not list:
        raise DeadLetter("wrong_type")
    for item in v:
        if type(item) is not str:
            raise DeadLetter("wrong_type")
    if "" in v:
        v = [s for s in v if s]
    return v or None


def check_strs(*values: Any) -> None:
    """Each value is None or a string (one call for many fields: this is the hot path)."""
    for v in values:
        if v is not None and type(v) is not str:
            raise DeadLetter("wrong_type")


_sorted_lists: dict[tuple[str, ...], list[str] | None] = {}


def opt_sorted_strs(obj: dict[str, Any], key: str) -> list[str] | None:
    """opt_str_list then sorted_set, memoized: policy and group lists repeat across events."""
    v = obj.get(key)
    return None if v is None else sorted_strs(v)


def sorted_strs(v: Any) -> list[str] | None:
    """A present list-of-strings field, sorted and de-duplicated (`sorted_set`), None when
    empty; `wrong_type` for anything else. Memoized: policy and group lists repeat."""
    if type(v) is list:
        k = tuple(v)
        try:
            hit = _sorted_lists.get(k, _MISS)
        except TypeError:  # an unhashable element (object, list): not a string
            raise DeadLetter("wrong_type") from None
        if hit is not _MISS:
            return list(hit) if hit is not None else None
    elif v is None:
        return None
    result = sorted_set(_str_list(v))
    if len(_sorted_lists) > 4096:
        _sorted_lists.clear()
    _sorted_lists[tuple(v)] = result
    return list(result) if result is not None else None


_MISS: Any = object()
_sorted_cells: dict[tuple[str, ...], str | None] = {}


def sorted_strs_cell(v: Any) -> str | None:
    """`sorted_strs` as its stored cell (`cells.list_cell`, the JSON text), None when absent or
    empty; the same `wrong_type`. Memoized apart: the text is what repeats in a row."""
    if type(v) is list:
        try:
            hit = _sorted_cells.get(tuple(v), _MISS)
        except TypeError:  # an unhashable element (object, list): not a string
            raise DeadLetter("wrong_type") from None
        if hit is not _MISS:
            return hit  # type: ignore[no-any-return]
    elif v is None:
        return None
    result = sorted_set(_str_list(v))
    text = None if result is None else list_cell(result)
    if len(_sorted_cells) > 4096:
        _sorted_cells.clear()
    _sorted_cells[tuple(v)] = text
    return text


def sorted_set(values: list[str] | None) -> list[str] | None:
    """Sorted, de-duplicated (code point order), None when empty."""
    if not values:
        return None
    if len(values) == 1:
        return list(values)
    return sorted(set(values))


# ---------------------------------------------------------------- timestamps

# RFC 3339 with a `T` and a zone, or CloudTrail's (Panther's) `YYYY-MM-DD HH:MM:SS[.frac]` with
# an optional zone (UTC when absent). Fraction: 1 to 9 digits, kept as written.
_TS = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})"
    r"| ([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})?)\Z"
)
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_in_month(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS[month - 1]


_valid_minutes: dict[str, bool] = {}  # "YYYY-MM-DDTHH:MM" -> valid; events share minutes


def _minute_ok(prefix: str) -> bool:
    ok = _valid_minutes.get(prefix)
    if ok is None:
        try:
            ok = _timestamp_slow(prefix + ":00Z") != ""
        except DeadLetter:
            ok = False
        if len(_valid_minutes) > 4096:
            _valid_minutes.clear()
        _valid_minutes[prefix] = ok
    return ok


# What Vault, CloudTrail and Kubernetes write: already RFC 3339 UTC, returned as is once its
# minute is known valid (one C match instead of a dozen slices and compares).
_UTC_STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-5][0-9](?:\.[0-9]{1,9})?Z")
_utc_stamp = _UTC_STAMP.fullmatch


def timestamp(value: Any) -> str:
    """Normalize a source timestamp to RFC 3339 UTC `...Z`, keeping its fraction digits."""
    if type(value) is str and _utc_stamp(value) is not None:
        prefix = value[:16]
        ok = _valid_minutes.get(prefix)
        if ok is None:
            ok = _minute_ok(prefix)
        if ok:
            return value
    return _timestamp_slow(value)


def _timestamp_slow(value: Any) -> str:
    if value is None or value == "":
        raise DeadLetter("missing_timestamp")
    if type(value) is not str:
        raise DeadLetter("invalid_timestamp")
    m = _TS.match(value)
    if m is None:
        raise DeadLetter("invalid_timestamp")
    if m.group(4) is not None:
        hh, mi, ss, frac, zone = m.group(4, 5, 6, 7, 8)
    else:
        hh, mi, ss, frac, zone = m.group(9, 10, 11, 12, 13)
    year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    h, n, s = int(hh), int(mi), int(ss)
    if not (
        year >= 1
        and 1 <= month <= 12
        and 1 <= day <= _days_in_month(year, month)
        and h < 24
        and n < 60
        and s < 60
    ):
        raise DeadLetter("invalid_timestamp")
    frac = frac or ""
    if zone is None or zone == "Z" or zone == "+00:00" or zone == "-00:00":
        return f"{value[:10]}T{hh}:{mi}:{ss}{frac}Z"
    oh, om = int(zone[1:3]), int(zone[4:6])
    if oh > 23 or om > 59:
        raise DeadLetter("invalid_timestamp")
    offset = timedelta(hours=oh, minutes=om)
    try:
        local = datetime(year, month, day, h, n, s)
        utc = local - offset if zone[0] == "+" else local + offset
    except OverflowError:
        raise DeadLetter("invalid_timestamp") from None
    if not 1 <= utc.year <= 9999:
        raise DeadLetter("invalid_timestamp")
    return f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}{frac}Z"


# ---------------------------------------------------------------- IP literals

_IPV4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\Z"
)


def ip_literal(value: str) -> str | None:
    """`value` when it is an IPv4 (dotted quad, no leading zeros) or IPv6 literal (no zone,
    no brackets), else None. Returned as written: not re-canonicalised."""
    if _IPV4.match(value):
        return value
    if ":" not in value or "%" in value or len(value) > 45:
        return None
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return None
    return value


def _port(text: str) -> int | None:
    if not text or len(text) > 5 or not text.isascii() or not text.isdigit():
        return None
    p = int(text)
    return p if p <= 65535 else None


_addresses: dict[str, tuple[str | None, int | None]] = {}


def split_address(addr: str) -> tuple[str | None, int | None]:
    """A client address as Vault logs it: `ip`, `ipv4:port`, `[ipv6]:port` or `[ipv6]`.
    Anything else (a host name, a bad port) yields (None, None). Memoized: clients repeat."""
    hit = _addresses.get(addr)
    if hit is None:
        hit = _split_address(addr)
        if len(_addresses) > 4096:
            _addresses.clear()
        _addresses[addr] = hit
    return hit


def _split_address(addr: str) -> tuple[str | None, int | None]:
    ip = ip_literal(addr)
    if ip is not None:
        return ip, None
    if addr.startswith("["):
        close = addr.find("]")
        if close < 0:
            return None, None
        host, rest = addr[1:close], addr[close + 1 :]
        if ":" not in host or ip_literal(host) is None:
            return None, None
        if rest == "":
            return host, None
        if rest[0] != ":":
            return None, None
        port = _port(rest[1:])
        return (host, port) if port is not None else (None, None)
    host, sep, rest = addr.partition(":")
    if sep and ":" not in rest and _IPV4.match(host):
        port = _port(rest)
        if port is not None:
            return host, port
    return None, None
