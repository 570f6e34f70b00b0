"""What the detectors read from a normalized event, extracted once per event.

Every detector looks at the same handful of fields; pulling them out of the nested dict once
(and parsing `@timestamp` once, with a per-minute cache) is most of what keeps the detectors at
>100k events/s on one core.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

_TS = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}):(\d{2}(?:\.\d+)?)(Z|[+-]\d{2}:\d{2})$")


@lru_cache(maxsize=4096)
def _minute_epoch(prefix: str, zone: str) -> float:
    return datetime.fromisoformat(f"{prefix}:00{'+00:00' if zone == 'Z' else zone}").timestamp()


_MINUTES: dict[str, float] = {}  # "YYYY-MM-DDTHH:MM" -> epoch, for the common `...Z` form


def parse_ts(value: Any) -> float | None:
    """RFC 3339 -> epoch seconds; None when it is not one (the caller counts it)."""
    if value.__class__ is not str:
        return None
    # Fast path: UTC `Z` timestamps (what normalizers emit): the minute is looked up, only the
    # seconds are parsed.
    n = len(value)
    if (n >= 20 and value[-1] == "Z" and value[16] == ":" and value[10] == "T"
            and value[17:19].isdigit() and (n == 20 or (value[19] == "." and n > 21
                                                       and value[20:-1].isdigit()))):
        base = _MINUTES.get(value[:16])
        if base is None:
            try:
                base = _minute_epoch(value[:16], "Z")
            except ValueError:
                return None
            if len(_MINUTES) > 100_000:
                _MINUTES.clear()
            _MINUTES[value[:16]] = base
        return base + float(value[17:-1])
    m = _TS.match(value)
    if m is None:
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))  # noqa: FURB162 - Python < 3.11 forms
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()
    try:
        return _minute_epoch(m.group(1), m.group(3)) + float(m.group(2))
    except ValueError:
        return None


def iso(epoch: float) -> str:
    """epoch seconds -> RFC 3339 UTC with `Z` (millisecond precision when not whole)."""
    dt = datetime.fromtimestamp(epoch, tz=UTC)
    if dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def glob_matcher(patterns: list[str]):
    """Case-sensitive `*` globs (identities are case-sensitive) -> a predicate on strings."""
    exact = {p for p in patterns if not any(c in p for c in "*?[")}
    globs = [re.compile(fnmatch.translate(p)) for p in patterns if p not in exact]

    def match(*values: str | None) -> bool:
        for v in values:
            if v is None:
                continue
            if v in exact or any(g.match(v) for g in globs):
                return True
        return False

    return match


@dataclass(slots=True)
class Ev:
    """The fields the detectors use; `raw` keeps the event for evidence."""

    ts: float
    timestamp: str
    dataset: str
    action: str
    outcome: str
    category: str
    event_id: str | None
    user_id: str | None
    user_name: str | None
    operation: str | None
    path: str | None
    # True for the one entry per request that counts as "the operation happened": Vault
    # response entries (request entries duplicate them), Kubernetes ResponseComplete, and not
    # failures. Detectors that count reads use only these.
    effective: bool
    # True unless the entry duplicates another of the same request (Vault request entry,
    # Kubernetes RequestReceived/ResponseStarted): failures are final, not effective.
    final: bool
    raw: dict[str, Any]
    # (first_seen, last_seen) of user_id BEFORE this event, filled by the driver.
    prev_first: float | None = None
    prev_last: float | None = None
    paths: list[str] | None = None  # read_paths() cache

    def get(self, dotted: str) -> Any:
        return lookup(self.raw, dotted)


def lookup(event: dict[str, Any], dotted: str) -> Any:
    """A dotted field from a nested event (also accepts a flat `{"a.b": v}` key)."""
    if dotted in event:
        return event[dotted]
    cur: Any = event
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def extract(event: dict[str, Any]) -> Ev | str:
    """A normalized event -> Ev, or a reason string when it cannot be used."""
    if not isinstance(event, dict):
        return "not a JSON object"
    ts_str = event.get("@timestamp")
    ts = parse_ts(ts_str)
    if ts is None:
        return f"bad or missing @timestamp: {ts_str!r}"
    ev = event.get("event")
    if ev.__class__ is not dict or ev.get("dataset").__class__ is not str:
        return "missing event.dataset"
    dataset = ev["dataset"]
    outcome = ev.get("outcome") or "unknown"
    if dataset == "vault.audit":
        final = (event.get("vault") or _EMPTY).get("entry_type") != "request"
    elif dataset == "kubernetes.audit":
        stage = (event.get("kubernetes") or _EMPTY).get("stage")
        final = stage is None or stage == "ResponseComplete" or stage == "Panic"
    else:
        final = True
    user = event.get("user") or _EMPTY
    secret = event.get("secret") or _EMPTY
    return Ev(
        ts, str(ts_str), dataset, ev.get("action") or "", outcome,
        (event.get("secretsight") or _EMPTY).get("category") or "other",
        ev.get("id"), user.get("id"), user.get("name"), secret.get("operation"),
        secret.get("path"), final and outcome != "failure", final, event,
    )


_EMPTY: dict[str, Any] = {}


def read_paths(ev: Ev) -> list[str]:
    """The concrete secret paths an effective read touched (BatchGetSecretValue: each id).
    Computed once per event (the first detector that asks caches it on the event)."""
    cached = ev.paths
    if cached is not None:
        return cached
    if ev.operation != "read" or not ev.effective:
        ev.paths = []
    elif ev.path is not None:
        ev.paths = [] if "*" in ev.path else [ev.path]
    else:
        ids = ev.get("aws.secret_ids")
        ev.paths = [p for p in ids if isinstance(p, str)] if isinstance(ids, list) else []
    return ev.paths
