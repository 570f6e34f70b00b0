"""What the detectors read from a normalized event, extracted once per event.

Every detector looks at the same handful of fields; pulling them out of the nested dict once
(parsing `@timestamp` once, with a per-minute prefix cache, and computing the read paths once)
keeps the per-event cost of the detectors themselves small. See docs/detectors.md, Performance.
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


# "YYYY-MM-DDTHH:MM:" -> epoch of that minute, for the common UTC form. Only prefixes that
# parsed are stored, so a hit also validates those 17 characters and leaves only the seconds
# to check: slicing and str tests cost ~50 ns each here. Keyed by the minute, not the second:
# a stream of a few events per second or fewer (the benchmark's, a quiet cluster's) found a
# new second at most events, and each cost a datetime parse.
_MINUTES: dict[str, float] = {}


# The last validated "YYYY-MM-DDTHH:MM:" prefix (a key of _MINUTES) and its epoch; the 18
# NULs match no timestamp (what follows a 17-character prefix is checked to be digits).
_LAST_MINUTE: list[Any] = ["\0" * 18, 0.0]

# "SS.fffZ" -> float("SS.fff") for the suffixes already validated (ASCII digits): one dict
# lookup instead of checking and parsing the seconds of every event (at most 60,000 keys at
# millisecond precision; cleared past 100,000).
_SECS: dict[str, float] = {}


# What follows a minute prefix "YYYY-MM-DDTHH:MM:" in the fast path: `SS` or `SS.fff` (ASCII
# digits, as many as written) and `Z`.
_seconds = re.compile(r"[0-9]{2}(?:\.[0-9]+)?Z").fullmatch


def _fast_prefix(value: str) -> float | None:
    """Validate and cache the minute prefix of a `YYYY-MM-DDTHH:MM:SS(.|Z)` time."""
    if not (len(value) >= 20 and value[10] == "T" and value[16] == ":"):
        return None
    try:
        base = _minute_epoch(value[:16], "Z")
    except ValueError:
        return None
    if len(_MINUTES) > 100_000:
        _MINUTES.clear()
    _MINUTES[value[:17]] = base
    return base


def parse_ts(value: Any) -> float | None:
    """RFC 3339 -> epoch seconds; None when it is not one (the caller counts it)."""
    if value.__class__ is not str:
        return None
    # Fast path: UTC `Z` timestamps (what normalizers emit): the minute is that of the previous
    # time (input is time-ordered) or looked up, the seconds (`SS` or `SS.fff`, ASCII digits)
    # checked by one match and parsed.
    last = _LAST_MINUTE
    if value.startswith(last[0]):
        if _seconds(value, 17) is not None:
            return last[1] + float(value[17:-1])  # type: ignore[no-any-return]
    elif value[-1:] == "Z":
        base = _MINUTES.get(value[:17])
        if base is None:
            base = _fast_prefix(value)
        if base is not None and _seconds(value, 17) is not None:
            last[0], last[1] = value[:17], base
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
    """The fields the detectors use on every event; `raw` keeps the event, and the fields only
    evidence and rare paths need (action, outcome, event id, user name, the timestamp string)
    are read from it when asked for: fewer fields to fill for each of a million events."""

    ts: float
    dataset: str
    category: str
    user_id: str | None
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
    paths: list[str] | None = None  # read_paths(), filled by extract()
    # The identity's in-memory record (state.IdentityState), filled by the driver when a
    # detector keeps per-identity state; None otherwise (detectors then look it up).
    ident: Any = None

    def get(self, dotted: str) -> Any:
        return lookup(self.raw, dotted)

    def _event(self, key: str) -> Any:
        event = self.raw.get("event")
        return event.get(key) if event.__class__ is dict else None

    @property
    def timestamp(self) -> str:
        return self.raw["@timestamp"]  # extract() checked it

    @property
    def action(self) -> str:
        return self._event("action") or ""

    @property
    def outcome(self) -> str:
        return self._event("outcome") or "unknown"

    @property
    def event_id(self) -> str | None:
        return self._event("id")

    @property
    def user_name(self) -> str | None:
        user = self.raw.get("user")
        return user.get("name") if user.__class__ is dict else None

    @property
    def credential_id(self) -> str | None:
        cred = self.raw.get("credential")
        value = cred.get("id") if cred.__class__ is dict else None
        return value if value.__class__ is str else None


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


def extract(event: dict[str, Any], ts: float | None = None) -> Ev | str:
    """A normalized event -> Ev, or a reason string when it cannot be used. `ts`: the caller's
    parse_ts(event["@timestamp"]), when it has it (watch's reorder buffer parsed it)."""
    if not isinstance(event, dict):
        return "not a JSON object"
    if ts is None:
        ts_str: Any = event.get("@timestamp")
        # parse_ts's fast path, inline, for its common case "...:SS.fffZ" in the same minute as
        # the previous event (input is time-ordered): the same sum as parse_ts, minute epoch +
        # float("SS.fff"), the seconds looked up when already seen, else checked as parse_ts
        # checks them and parsed (microsecond times, Vault's, rarely repeat: caching them cost
        # a miss and an insert per event). Anything else calls parse_ts.
        last = _LAST_MINUTE
        if ts_str.__class__ is str and ts_str.startswith(last[0]):
            suffix = ts_str[17:]
            sec = _SECS.get(suffix)
            if sec is None and suffix[2:3] == "." and suffix[-1:] == "Z" and suffix.isascii() \
                    and suffix[:2].isdigit() and suffix[3:-1].isdigit():
                sec = float(suffix[:-1])
                if len(suffix) <= 7:  # up to milliseconds: seconds that repeat, kept
                    if len(_SECS) > 100_000:
                        _SECS.clear()
                    _SECS[suffix] = sec
        else:
            sec = None
        if sec is not None:
            ts = last[1] + sec
        else:
            ts = parse_ts(ts_str)
            if ts is None:
                return f"bad or missing @timestamp: {ts_str!r}"
            if ts_str[19:20] == "." and (base := _MINUTES.get(ts_str[:17])) is not None:
                last[0], last[1] = ts_str[:17], base
                if (ts_str[-1] == "Z" and ts_str[20:-1].isdigit() and ts_str[17:19].isdigit()
                        and ts_str[17:-1].isascii()):
                    if len(_SECS) > 100_000:
                        _SECS.clear()
                    _SECS[ts_str[17:]] = float(ts_str[17:-1])
    ev: Any = event.get("event")
    dataset = ev.get("dataset") if ev.__class__ is dict else None
    if dataset.__class__ is not str:
        return "missing event.dataset"
    try:
        # Fast path: the fields normalizers always write are there, and a subscript costs about
        # half a .get() call. Anything missing or odd takes the general path below.
        outcome = ev["outcome"]
        category = event["secretsight"]["category"] or "other"
        uid = event["user"]["id"]
        secret = event["secret"]
        operation = secret["operation"]
        path = secret["path"]
    except (KeyError, TypeError):
        outcome = ev.get("outcome")
        category = (event.get("secretsight") or _EMPTY).get("category") or "other"
        uid = (event.get("user") or _EMPTY).get("id")
        secret = event.get("secret") or _EMPTY
        operation = secret.get("operation")
        path = secret.get("path")
    # (.get for the optional parts: a caught KeyError costs more than several .get calls)
    if dataset == "vault.audit":
        vault = event.get("vault")
        final = vault.get("entry_type") != "request" if vault.__class__ is dict else True
    elif dataset == "kubernetes.audit":
        k8s = event.get("kubernetes")
        stage = k8s.get("stage") if k8s.__class__ is dict else None
        final = stage is None or stage == "ResponseComplete" or stage == "Panic"
    else:
        final = True
    effective = final and outcome != "failure"
    # read_paths() here, once: three detectors use it for most events.
    if operation != "read" or not effective:
        paths = _NO_PATHS
    elif path is not None:
        paths = [path] if path.__class__ is str and "*" not in path else _NO_PATHS
    else:
        paths = _secret_ids(event)
    # Every field set here, without the dataclass __init__ (its call and arguments cost about
    # as much as the stores: ~2% of an event); test_routing checks that none is left unset.
    out = _new(Ev)
    out.ts = ts
    out.dataset = dataset
    out.category = category
    out.user_id = uid
    out.operation = operation
    out.path = path
    out.effective = effective
    out.final = final
    out.raw = event
    out.prev_first = out.prev_last = out.ident = None
    out.paths = paths
    return out


_new = object.__new__
_NO_PATHS: list[str] = []  # shared, never mutated


def _secret_ids(event: dict[str, Any]) -> list[str]:
    """BatchGetSecretValue: the secret ids it read (there is no single secret.path)."""
    ids = lookup(event, "aws.secret_ids")
    return [p for p in ids if isinstance(p, str)] if isinstance(ids, list) else _NO_PATHS


_EMPTY: dict[str, Any] = {}


def read_paths(ev: Ev) -> list[str]:
    """The concrete secret paths an effective read touched (BatchGetSecretValue: each id).
    `extract` fills it; computed here only for an Ev built by hand."""
    cached = ev.paths
    if cached is not None:
        return cached
    if ev.operation != "read" or not ev.effective:
        ev.paths = _NO_PATHS
    elif ev.path is not None:
        ev.paths = _NO_PATHS if "*" in ev.path else [ev.path]
    else:
        ev.paths = _secret_ids(ev.raw)
    return ev.paths
