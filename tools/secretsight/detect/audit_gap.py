"""audit_gap: a source that normally emits continuously goes silent, or its audit device is
disabled.

Sources are keyed by `event.dataset` (the schema carries no host field). "Normally emits
continuously" means: at least MIN_SAMPLES inter-arrival gaps observed, and the median of the last
TRAILING of them is at most a quarter of `stateful.audit_gap_max_silence`. A sparse source
(median gap of minutes) therefore never fires, whatever its silences.

Silence is seen three ways: in event time when the next event arrives more than max_silence
after the previous one (batch and stream alike); at `finish(now)` for a trailing silence; and in
`watch` by wall clock (`tick`): no event ARRIVED for max_silence. Each silence is reported once.
A Vault `delete sys/audit/<name>` (category `audit`, action delete), CloudTrail StopLogging /
DeleteTrail, or an EKS logging disable fires at once, without waiting for the silence, and the
silence that follows is not reported again. Findings name the last event seen.
"""

from __future__ import annotations

import statistics
from collections import deque
from typing import Any

from secretsight.detect.base import Detector
from secretsight.detect.events import Ev, iso
from secretsight.detect.state import KeyedState
from secretsight.findings import Finding

TRAILING = 101  # gaps kept per source (an odd count: a true median)
MIN_SAMPLES = 20
CONTINUITY_RATIO = 0.25
_DISABLE_ACTIONS = {"StopLogging", "DeleteTrail"}


class SourceState:
    __slots__ = ("_last", "disabled", "gaps", "last_ev", "last_ts", "reported")

    def __init__(self) -> None:
        self.last_ts: float | None = None
        self._last: dict[str, Any] = {}
        self.last_ev: Ev | None = None
        self.gaps: deque[float] = deque(maxlen=TRAILING)
        self.reported = False  # the current silence is already reported
        self.disabled = False

    @property
    def last(self) -> dict[str, Any]:
        ev = self.last_ev
        if ev is not None:
            self._last = {"time": ev.timestamp, "id": ev.event_id, "action": ev.action,
                          "path": ev.path if ev.path is not None else ev.get("vault.path")}
            self.last_ev = None
        return self._last

    def to_state(self) -> list[Any]:
        return [self.last_ts, self.last, list(self.gaps), self.reported, self.disabled]

    @classmethod
    def from_state(cls, data: list[Any]) -> SourceState:
        s = cls()
        s.last_ts, s._last, gaps, s.reported, s.disabled = data
        s.gaps.extend(gaps)
        return s


def disables_audit(ev: Ev) -> bool:
    if ev.category != "audit" or not ev.effective:
        return False
    if ev.dataset == "vault.audit":
        return ev.action == "delete"
    if ev.dataset == "aws.cloudtrail":
        return ev.action in _DISABLE_ACTIONS or ev.get("aws.logging_disabled") is True
    return False


class AuditGap(Detector):
    name = "audit_gap"
    anomaly = "audit_gap"
    severity = "high"
    title = "Audit log source went silent"

    def start(self) -> None:
        self.max_silence = self.config.stateful.audit_gap_max_silence.total_seconds()
        self.state = KeyedState(self.cache, "audit_gap", SourceState)
        for ds, raw in self.cache.store.scan_kv(f"{self.cache.ns}/audit_gap"):
            if raw is not None:
                self.state.items[ds] = SourceState.from_state(raw)
        self.sources: dict[str, SourceState] = self.state.items
        # Wall-clock arrival per source, at tick granularity: process() only notes that the
        # source was active (no clock call per event); tick() stamps the active ones.
        self.arrival: dict[str, float] = {}
        self.active: set[str] = set()

    def continuous(self, s: SourceState) -> bool:
        return (len(s.gaps) >= MIN_SAMPLES
                and statistics.median(s.gaps) <= self.max_silence * CONTINUITY_RATIO)

    def process(self, ev: Ev, out: list[Finding]) -> None:
        ds = ev.dataset
        ts = ev.ts
        s = self.sources.get(ds)
        if s is None:
            s = self.state.get(ds)
        self.active.add(ds)
        last_ts = s.last_ts
        if last_ts is None:
            s.last_ts = ts
            s.last_ev = ev
        elif ts >= last_ts:
            gap = ts - last_ts
            if gap > self.max_silence and not s.reported and not s.disabled and self.continuous(s):
                self._fire(ds, s, last_ts, ts, out, reason="silence",
                           extra={"next_event_time": ev.timestamp})
            s.gaps.append(gap)
            if s.reported:  # (tested before writing: the common case writes nothing)
                s.reported = False
            if s.disabled:
                s.disabled = False
            s.last_ts = ts
            s.last_ev = ev  # the evidence dict is built only when needed (to_state, a finding)
        if ev.category == "audit" and disables_audit(ev):
            s.disabled = True
            self._fire(ds, s, ev.ts, ev.ts, out, reason="audit_device_disabled",
                       extra={"disabled_by": ev.user_id}, user_id=ev.user_id,
                       user_name=ev.user_name)
        self.state.dirty.add(ds)

    def _fire(self, ds: str, s: SourceState, start: float, end: float, out: list[Finding], *,
              reason: str, extra: dict[str, Any], user_id: str | None = None,
              user_name: str | None = None) -> None:
        evidence = {"source": ds, "reason": reason, "last_event": dict(s.last),
                    "silence_seconds": round(end - start, 3), **extra}
        if s.gaps:
            evidence["median_gap_seconds"] = round(statistics.median(s.gaps), 3)
        self.emit(out, self.finding(
            user_id=user_id, user_name=user_name, start=start, end=end, dataset=ds,
            evidence=evidence,
            title="Audit device disabled" if reason == "audit_device_disabled" else None,
        ))

    def finish(self, now: float | None, out: list[Finding]) -> None:
        if now is None:
            return  # the end of a file is not a silence
        for ds, s in sorted(self.sources.items()):
            if (s.last_ts is not None and now - s.last_ts > self.max_silence
                    and not s.reported and not s.disabled and self.continuous(s)):
                s.reported = True
                self.state.dirty.add(ds)
                self._fire(ds, s, s.last_ts, now, out, reason="silence",
                           extra={"observed_at": iso(now)})

    def tick(self, wall: float, out: list[Finding]) -> None:
        for ds in self.active:
            self.arrival[ds] = wall
        self.active.clear()
        for ds, s in sorted(self.sources.items()):
            arrived = self.arrival.get(ds)
            if (arrived is None or s.last_ts is None or s.reported or s.disabled
                    or wall - arrived <= self.max_silence or not self.continuous(s)):
                continue
            s.reported = True
            self.state.dirty.add(ds)
            silence = wall - arrived
            self._fire(ds, s, s.last_ts, s.last_ts + silence, out, reason="silence",
                       extra={"wall_clock_silence_seconds": round(silence, 3)})
