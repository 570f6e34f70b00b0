"""One input line -> normalized events.

Normalized events are recognised by a string `event.dataset`; anything else is a raw audit line
for the normalizer (`secretsight.normalize`). Shippers often wrap the raw line:
`{"log": "..."}` / `{"message": "..."}` (Fluent Bit, Vector) are unwrapped.

Each line is parsed ONCE: a raw audit line orjson parsed goes to the normalizer as that object
(`object_items`), not as bytes the normalizer would parse again (its strict parse is orjson's).
`decode_lines` decodes a whole read of the watch loop, counting instead of raising for the lines
without an event (a Vault request entry is one line in two: an exception each cost ~1 us).
"""

from __future__ import annotations

import json
from typing import Any

from secretsight.normalize.codes import MAX_LINE_BYTES, DeadLetter
from secretsight.normalize.line import VAULT_TYPES, normalize_line, object_items
from secretsight.normalize.vault import REQUEST_ENTRY, vault_record

try:  # orjson parses several times faster; the stdlib is the fallback
    from orjson import JSONDecodeError as _JSONError
    from orjson import loads as _loads

    _ORJSON = True  # the normalizer's strict parse is orjson too: its objects can be reused
except ImportError:  # pragma: no cover
    _loads = json.loads  # type: ignore[assignment]
    _JSONError = ValueError  # type: ignore[assignment,misc]
    _ORJSON = False


class DecodeError(ValueError):
    """A line that yields no event; `reason` is a short metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def is_normalized(obj: Any) -> bool:
    ev = obj.get("event") if isinstance(obj, dict) else None
    return isinstance(ev, dict) and isinstance(ev.get("dataset"), str) and "@timestamp" in obj


class Skipped(Exception):
    """A line the normalizer deliberately skips (e.g. a Vault request entry): not an error,
    counted under its reason code."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(", ".join(reasons))
        self.reasons = reasons


SKIPPED = ""  # _collect's reason for a line holding only records skipped on purpose


def _collect(items: Any, events: list[dict[str, Any]], skips: list[str],
             dead: list[str] | None = None) -> str | None:
    """Append the events of one line's normalizer items (`normalize_line`'s list) to `events`
    and its skip codes to `skips` (and its dead-letter codes to `dead`). Returns why the line
    yields no event (its first dead-letter code, SKIPPED or "unrecognized"), None when it
    yields some (dead letters among events are not counted: the line was read)."""
    found = len(events)
    first_dead: str | None = None
    skipped = False
    # normalize_line -> [{"event": {...}} | {"skip": code} | {"dead_letter": code}, ...]
    for item in items if isinstance(items, list) else [items]:
        if not isinstance(item, dict):
            continue
        if is_normalized(item.get("event")):
            events.append(item["event"])
        elif is_normalized(item):
            events.append(item)
        elif "skip" in item:
            skipped = True
            skips.append(str(item["skip"]))
        elif "dead_letter" in item:
            code = str(item["dead_letter"])
            if first_dead is None:
                first_dead = code
            if dead is not None:
                dead.append(code)
    if len(events) > found:
        return None
    return first_dead or (SKIPPED if skipped else "unrecognized")


def _checked(items: Any, skips: list[str] | None) -> list[dict[str, Any]]:
    """`_collect` for one line, raising DecodeError or Skipped when it yields no event."""
    events: list[dict[str, Any]] = []
    line_skips: list[str] = []
    dead: list[str] = []
    reason = _collect(items, events, line_skips, dead)
    if skips is not None:
        skips.extend(line_skips)
    if reason is None:
        return events
    if reason == SKIPPED:
        raise Skipped(line_skips)
    if reason == "unrecognized":
        raise DecodeError("unrecognized", "the normalizer produced no event")
    raise DecodeError(reason, f"dead letter from the normalizer: {', '.join(dead)}")


def _normalize_raw(raw: str | bytes, skips: list[str] | None) -> list[dict[str, Any]]:
    try:
        items = normalize_line(raw)
    except Exception as exc:
        raise DecodeError("normalize_failed", f"normalizer failed: {exc}") from exc
    return _checked(items, skips)


def _parsed_once(line: str | bytes) -> bool:
    """Whether `line`, which orjson parsed, may reach the normalizer as that object: the only
    check `normalize_line` makes before its (orjson) parse is the length in bytes."""
    if not _ORJSON:
        return False
    if line.__class__ is bytes:
        return len(line) <= MAX_LINE_BYTES
    assert isinstance(line, str)
    return (len(line) if line.isascii() else len(line.encode("utf-8"))) <= MAX_LINE_BYTES


def decode_object(obj: Any, line: str | bytes | None = None,
                  skips: list[str] | None = None) -> list[dict[str, Any]]:
    """A parsed JSON value -> events. Raises DecodeError (counted as an error) or Skipped."""
    if is_normalized(obj):
        return [obj]
    if isinstance(obj, dict):
        for wrapper in ("log", "message"):
            inner = obj.get(wrapper)
            if isinstance(inner, str) and inner.lstrip().startswith("{"):
                return decode_line(inner, skips)
            if isinstance(inner, dict) and is_normalized(inner):
                return [inner]
    if line is not None and _parsed_once(line):
        try:
            items = object_items(obj, "auto")
        except Exception as exc:
            raise DecodeError("normalize_failed", f"normalizer failed: {exc}") from exc
        return _checked(items, skips)
    return _normalize_raw(line if line is not None else json.dumps(obj), skips)


def decode_line(line: str | bytes, skips: list[str] | None = None) -> list[dict[str, Any]]:
    """One input line -> events (raises DecodeError or Skipped when there is none)."""
    if not line.strip():
        return []
    try:
        obj = _loads(line)
    except (_JSONError, ValueError):
        # not JSON for us; the normalizer decides (and names the reason: malformed_json,
        # invalid_utf8, line_too_long...)
        return _normalize_raw(line, skips)
    return decode_object(obj, line, skips)


def decode_lines(lines: list[bytes], skips: list[str], errors: list[str]
                 ) -> list[dict[str, Any]]:
    """`decode_line` over the lines of one read, without an exception per line: the events of
    every line in order; the reason of each line that yields none by error goes to `errors`
    (the DecodeError reason), skip codes to `skips` (also for lines with events)."""
    events: list[dict[str, Any]] = []
    loads = _loads
    limit = MAX_LINE_BYTES if _ORJSON else -1
    for line in lines:
        # The common raw audit line inline (parsed, not a normalized event, not a shipper's
        # wrapper: what decode_object would hand the normalizer); anything else as one line.
        try:
            obj = loads(line)
        except (_JSONError, ValueError):
            obj = None
        if (obj.__class__ is dict and "event" not in obj and "log" not in obj
                and "message" not in obj and line.__class__ is bytes and len(line) <= limit):
            # A Vault entry (detect_source's first test): straight to vault_record, as
            # normalize/reader.py does for scan: the event itself, its skip code, or its dead
            # letter, without the item list around it (what _collect would decide from it).
            etype = obj.get("type")
            if etype == "request":
                # Half the lines: a request entry, which vault_record skips unless its path may
                # be an audit device's (its own test, in its order: a `request` that is no
                # object dead-letters first; anything else goes to it).
                req = obj.get("request")
                if req.__class__ is dict:
                    path = req.get("path")
                    if path.__class__ is not str or not path.startswith("sys/audit"):
                        skips.append(REQUEST_ENTRY)
                        continue
            if etype.__class__ is str and etype in VAULT_TYPES:
                try:
                    out = vault_record(obj)
                except DeadLetter as dl:
                    errors.append(dl.code)
                    continue
                except Exception:  # noqa: BLE001 - as decode_object: the normalizer failed
                    errors.append("normalize_failed")
                    continue
                if isinstance(out, str):
                    skips.append(out)
                else:
                    events.append(out)
                continue
            try:
                items = object_items(obj, "auto")
            except Exception:  # noqa: BLE001 - as decode_object: the normalizer failed
                errors.append("normalize_failed")
                continue
            reason = _collect(items, events, skips)
            if reason is not None and reason != SKIPPED:
                errors.append(reason)
            continue
        try:
            events.extend(decode_line(line, skips))
        except DecodeError as exc:
            errors.append(exc.reason)
        except Skipped:
            pass
    return events
