"""One input line -> normalized events.

Normalized events are recognised by a string `event.dataset`; anything else is a raw audit line
for `secretsight.normalize.normalize_line` (when that module is available). Shippers often wrap
the raw line: `{"log": "..."}` / `{"message": "..."}` (Fluent Bit, Vector) are unwrapped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

try:  # orjson parses several times faster; the stdlib is the fallback
    from orjson import JSONDecodeError as _JSONError
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    _loads = json.loads  # type: ignore[assignment]
    _JSONError = ValueError  # type: ignore[assignment,misc]


class DecodeError(ValueError):
    """A line that yields no event; `reason` is a short metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _load_normalizer() -> Callable[[str | bytes], Any] | None:
    try:
        from secretsight.normalize import normalize_line  # written by the normalizer helper
    except ImportError:
        return None
    return normalize_line


_normalizer: list[Callable[[str | bytes], Any] | None] = []


def normalizer() -> Callable[[str | bytes], Any] | None:
    if not _normalizer:
        _normalizer.append(_load_normalizer())
    return _normalizer[0]


def is_normalized(obj: Any) -> bool:
    ev = obj.get("event") if isinstance(obj, dict) else None
    return isinstance(ev, dict) and isinstance(ev.get("dataset"), str) and "@timestamp" in obj


class Skipped(Exception):
    """A line the normalizer deliberately skips (e.g. a Vault request entry): not an error,
    counted under its reason code."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(", ".join(reasons))
        self.reasons = reasons


def _normalize_raw(raw: str | bytes, skips: list[str] | None) -> list[dict[str, Any]]:
    norm = normalizer()
    if norm is None:
        raise DecodeError("not_normalized",
                          "not a normalized event (no event.dataset) and the raw normalizer "
                          "secretsight.normalize is not available")
    try:
        items = norm(raw)
    except Exception as exc:
        raise DecodeError("normalize_failed", f"normalizer failed: {exc}") from exc
    events: list[dict[str, Any]] = []
    dead: list[str] = []
    skipped: list[str] = []
    # normalize_line -> [{"event": {...}} | {"skip": code} | {"dead_letter": code}, ...]
    for item in items if isinstance(items, list) else [items]:
        if not isinstance(item, dict):
            continue
        if is_normalized(item.get("event")):
            events.append(item["event"])
        elif is_normalized(item):
            events.append(item)
        elif "skip" in item:
            skipped.append(str(item["skip"]))
        elif "dead_letter" in item:
            dead.append(str(item["dead_letter"]))
    if skips is not None:
        skips.extend(skipped)
    if not events:
        if dead:
            raise DecodeError(dead[0], f"dead letter from the normalizer: {', '.join(dead)}")
        if skipped:
            raise Skipped(skipped)
        raise DecodeError("unrecognized", "the normalizer produced no event")
    return events


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
    return _normalize_raw(line if line is not None else json.dumps(obj), skips)


def decode_line(line: str | bytes, skips: list[str] | None = None) -> list[dict[str, Any]]:
    """One input line -> events (raises DecodeError or Skipped when there is none)."""
    if not line.strip():
        return []
    try:
        obj = _loads(line)
    except (_JSONError, ValueError):
        # not JSON for us; the normalizer decides (and names the reason: malformed_json,
        # invalid_utf8, line_too_long...) when it is there
        if normalizer() is None:
            raise DecodeError("bad_json", "not JSON") from None
        return _normalize_raw(line, skips)
    return decode_object(obj, line, skips)
