"""`Detectors`: runs the stateful detectors over normalized events in time order.

`@timestamp` is the clock (stream time = the latest timestamp seen), so a batch `scan` and a
`watch` stream over the same events produce the same findings. Only `audit_gap` also looks at
the wall clock, through `tick()` (the clock is injectable for tests).

Before any detector, `timeguard.TimeGuard` refuses events whose @timestamp is out of range
(forged or skewed: `out_of_range`). A late event inside the allowed skew is processed AT stream
time: the detectors only ever see time move forward, so no window can end before it starts.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from secretsight.config import Config
from secretsight.detect.admin_off_hours import AdminOffHours
from secretsight.detect.audit_gap import AuditGap
from secretsight.detect.base import Detector
from secretsight.detect.bulk_read import BulkRead
from secretsight.detect.dormant_identity import DormantIdentity
from secretsight.detect.events import Ev, extract, parse_ts
from secretsight.detect.first_path_access import FirstPathAccess
from secretsight.detect.first_seen_principal import FirstSeenPrincipal
from secretsight.detect.fused import read_route
from secretsight.detect.new_user_agent import NewUserAgent
from secretsight.detect.path_diversity import PathDiversity
from secretsight.detect.rotation import PendingWindows
from secretsight.detect.rotation_without_deploy import RotationWithoutDeploy
from secretsight.detect.rotation_without_read import RotationWithoutRead
from secretsight.detect.state import StateCache
from secretsight.detect.stores.base import Store
from secretsight.detect.timeguard import OUT_OF_RANGE, TimeGuard
from secretsight.errors import SecretSightError
from secretsight.findings import Finding

RouteKey = tuple[Any, Any, bool, bool]
Route = tuple[Callable[[Ev, list[Finding]], None], ...]

PRUNE_EVERY = 60  # commits between sweeps of expired sliding windows (memory bound)

DETECTORS: dict[str, type[Detector]] = {
    d.name: d for d in (
        FirstPathAccess, DormantIdentity, RotationWithoutRead, RotationWithoutDeploy,
        AuditGap, AdminOffHours, BulkRead, PathDiversity, FirstSeenPrincipal, NewUserAgent,
    )
}
# What `scan` runs: Sigma correlations cover bulk_read/path_diversity in batch.
BATCH_DETECTORS: tuple[str, ...] = tuple(n for n in DETECTORS if n not in ("bulk_read",
                                                                          "path_diversity"))


def _wrong_type(exc: Exception) -> str:
    # The reason names the exception's type only: its message may carry input values, and
    # reasons are counter keys (bounded cardinality).
    return f"field of a wrong type ({type(exc).__name__})"


class Detectors:
    """The stateful detectors over one store.

    `process(event)` returns the findings the event completes (and those of windows that the
    event's timestamp closed); `finish(now)` closes windows at the end of a batch (now=None:
    all of them) or up to `now`. With a shared store (Redis) findings are provisional until
    `commit()`, which returns those another replica already reported (drop them).
    """

    def __init__(self, config: Config, store: Store, *, only: Iterable[str] | None = None,
                 instance: str = "default", clock: Callable[[], float] | None = None) -> None:
        names = list(only) if only is not None else list(DETECTORS)
        unknown = sorted(set(names) - set(DETECTORS))
        if unknown:
            raise SecretSightError(
                f"unknown detector(s) {', '.join(unknown)}; known: {', '.join(DETECTORS)}")
        self.config = config
        self.store = store
        self.clock = clock or time.time
        self.cache = StateCache(
            store, namespace=instance,
            max_paths=config.stateful.first_path_access.max_paths_per_identity,
            reads_keep=2 * max(config.stateful.rotation_read_window,
                               config.stateful.rotation_deploy_window).total_seconds())
        self._claims: dict[int, Finding] = {}
        self.detectors: list[Detector] = []
        for name, cls in DETECTORS.items():  # fixed order: deterministic output
            if name not in names:
                continue
            det = cls(config, self.cache, self._claims)
            det.start()
            self.detectors.append(det)
        self._deadlines: list[PendingWindows] = [
            d for d in self.detectors if isinstance(d, PendingWindows)]
        self._uses_identity = any(getattr(d, "uses_identity", False) for d in self.detectors)
        # Detectors about an identity's return after a silence: called from the identity
        # lookup, only when the event ends such a silence (see Detector.after_silence).
        silent = [d for d in self.detectors if d.after_silence is not None]
        self._after_silence: Route = tuple(d.process for d in silent)
        self._silence = min((d.after_silence for d in silent if d.after_silence is not None),
                            default=math.inf)
        routed = [d for d in self.detectors if d.after_silence is None]
        # (category, operation, effective, final) -> the process methods that want that kind
        # of event; built on first sight of each kind (a handful in practice).
        self._routes: dict[RouteKey, Route] = {}
        self._routed = routed
        self._all: Route = tuple(d.process for d in routed)
        self._commits = 0
        self.last_ts: float | None = None  # @timestamp of the last accepted event
        self.now: float | None = None  # stream time
        self.events = 0
        self.rejected: Counter[str] = Counter()  # reason -> count (bad events are counted)
        self.last_rejected = ""  # reason of the latest refused event (watch counts it)
        self.time_guard = TimeGuard(config.limits.time)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.detectors]

    def _route(self, key: RouteKey) -> Route:
        """The process methods of the detectors that want this kind of event, in order."""
        return tuple(d.process for d in self._routed if d.wants(*key))

    def _compile(self, key: RouteKey) -> Route:
        """The route stored for a kind of event: a read's is one fused call (fused.py)."""
        if len(self._routes) > 1000:  # operation/category come from input: bound the table
            self._routes.clear()
        route = self._route(key)
        fused = read_route(route)
        route = self._routes[key] = (fused,) if fused is not None else route
        return route

    def process(self, event: dict[str, Any]) -> list[Finding]:
        return self.process_at(event, None)

    def process_at(self, event: dict[str, Any], ts: float | None) -> list[Finding]:
        """process(event), given `ts` = parse_ts(event["@timestamp"]) when the caller has it
        (watch's reorder buffer parsed it: extract does not parse it again)."""
        try:
            ev = extract(event, ts)
        except (TypeError, AttributeError, ValueError) as exc:  # e.g. "user": "bob"
            ev = _wrong_type(exc)
        if isinstance(ev, str):  # a rejection reason
            self.last_rejected = ev.split(":")[0]
            self.rejected[self.last_rejected] += 1
            return []
        now = self.now
        guard = self.time_guard
        t = ev.ts
        # the common case inline (this runs for every event); accepts() decides the rest
        if (t < guard.floor or t > guard.horizon or (now is not None and t < now - guard.skew)
                ) and not guard.accepts(t, now):
            self.last_rejected = OUT_OF_RANGE
            self.rejected[OUT_OF_RANGE] += 1
            return []
        self.events += 1
        out: list[Finding] = []
        try:
            ts = self.last_ts = ev.ts
            if now is None or ts > now:
                self.now = ts
                if ts > self.cache.due:
                    self._advance(ts, out)
            elif ts < now:  # late (inside the skew): at stream time, so windows stay ordered
                ev.ts = ts = now
            uid = ev.user_id
            if uid is not None and self._uses_identity:
                # The ONE lookup of the identity's record per event; detectors reach their
                # per-identity state through ev.ident.
                cache = self.cache
                prev: float | None  # the identity's last event before this one
                rec = cache.identities.get(uid)
                if rec is not None and rec.first <= ts:  # the common case, inline
                    ev.prev_first = rec.first
                    ev.prev_last = prev = rec.last
                    if ts > prev:
                        rec.last = ts
                        cache._dirty_ids.add(uid)
                else:
                    old = cache.identity(uid)
                    if old is not None:
                        ev.prev_first, ev.prev_last = old.first, old.last
                    prev = ev.prev_last
                    rec = cache.touch_identity(uid, ts)
                ev.ident = rec
                if prev is not None and ts - prev >= self._silence:
                    for fn in self._after_silence:
                        fn(ev, out)
            key = (ev.category, ev.operation, ev.effective, ev.final)
            try:
                route = self._routes.get(key)
            except TypeError:  # an unhashable operation/category (bad input): every detector
                route = self._all
            if route is None:
                route = self._compile(key)
            for fn in route:
                fn(ev, out)
            return out
        except (TypeError, AttributeError, ValueError) as exc:
            # A field of a wrong type that extract() does not check (bad input is normal
            # input: a list where a string belongs makes a dict key unhashable, ...). The
            # event counts as rejected; the findings it completed are kept.
            self.events -= 1
            self.last_rejected = _wrong_type(exc)
            self.rejected[self.last_rejected] += 1
            return out

    def finish(self, now: str | None = None) -> list[Finding]:
        """Close windows: all of them (end of a batch), or those ended by `now` (RFC 3339)."""
        at = None
        if now is not None:
            at = parse_ts(now)
            if at is None:
                raise SecretSightError(f"finish(now=): not an RFC 3339 time: {now!r}")
        out: list[Finding] = []
        for d in self.detectors:
            d.finish(at, out)
        return out

    def tick(self, wall: float | None = None) -> list[Finding]:
        """Wall-clock heartbeat (watch): lets audit_gap see a source that stopped sending."""
        out: list[Finding] = []
        wall = self.clock() if wall is None else wall
        for d in self.detectors:
            d.tick(wall, out)
        return out

    def advance_to(self, now: float) -> list[Finding]:
        """Stream time moved to `now` without an event (closes rotation windows)."""
        out: list[Finding] = []
        if self.now is None or now > self.now:
            self.now = now
            self._advance(now, out)
        return out

    def _advance(self, now: float, out: list[Finding]) -> None:
        """Close the pending windows whose deadline is before `now`; recompute `cache.due`."""
        due = math.inf
        for pw in self._deadlines:
            heap = pw.heap  # (deadline, key) min-heap
            if heap and heap[0][0] < now:
                pw.advance(now, out)
            if heap and heap[0][0] < due:
                due = heap[0][0]
        self.cache.due = due

    def commit(self, offsets: dict[str, Any] | None = None) -> list[Finding]:
        """Persist state and `offsets` in ONE store transaction. Returns the provisional
        findings whose claim lost (a shared store already had the fact): do not emit those."""
        self._commits += 1
        if self.now is not None and self._commits % PRUNE_EVERY == 0:
            for d in self.detectors:
                d.prune(self.now)
        lost = self.cache.flush(offsets)
        claims = dict(self._claims)
        self._claims.clear()
        return [claims[c] for c in sorted(lost) if c in claims]

    def claim_ids(self) -> dict[int, int]:
        """id(finding) -> claim id, for the provisional findings since the last commit."""
        return {id(f): cid for cid, f in self._claims.items()}

    def state_offsets(self) -> dict[str, Any]:
        return self.store.load_offsets(self.cache.ns)

    def run(self, events: Iterable[dict[str, Any]], now: str | None = None) -> list[Finding]:
        """Batch helper: process every event (time-ordered), then finish."""
        out: list[Finding] = []
        for e in events:
            out.extend(self.process(e))
        out.extend(self.finish(now))
        return out
