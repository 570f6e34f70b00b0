"""audit_gap: a source that normally emits continuously goes silent, or its audit device is
disabled.

Sources are keyed by `event.dataset` (the schema carries no host field). "Normally emits
continuously" means: the source has emitted for at least `stateful.audit_gap_baseline` (10 min)
without any gap over `stateful.audit_gap_max_silence` (60 s); any longer gap starts that run
again. A sparse or bursty source (a renewal every 5 minutes, an hourly sync in bursts) is
therefore never continuous, whatever its pauses: a statistic over recent gaps (such as their
median) is fooled by bursts, a run of continuity is not.

Silence is seen three ways: in event time when the next event arrives more than max_silence
after the previous one (batch and stream alike); at `finish(now)` for a trailing silence; and in
`watch` by wall clock (`tick`): no event ARRIVED for max_silence. Each silence is reported once.
A Vault `delete sys/audit/<name>` (category `audit`, action delete; usually logged only as a
request entry, since the device is gone before the response), CloudTrail StopLogging /
DeleteTrail, or an EKS logging disable fires at once, without waiting for the silence, and the
silence that follows is not reported again. Findings name the last event seen.
"""

from __future__ import annotations

from typing import Any

from secretsight.detect.base import Detector
from secretsight.detect.events import Ev, iso
from secretsight.detect.state import KeyedState
from secretsight.findings import Finding

_DISABLE_ACTIONS = {"StopLogging", "DeleteTrail"}


class SourceState:
    __slots__ = ("_last", "arrived", "changed", "disabled", "disabled_by_event", "last_ev",
                 "last_ts", "reported", "run_start")

    def __init__(self) -> None:
        # Set by every event (two attribute stores, not two set insertions per event): an
        # event arrived since the last tick / the state changed since the last commit.
        self.arrived = False
        self.changed = False
        self.last_ts: float | None = None
        self._last: dict[str, Any] = {}
        self.last_ev: Ev | None = None
        # Start of the current run of events with no gap over max_silence.
        self.run_start: float | None = None
        self.reported = False  # the current silence is already reported
        self.disabled = False
        # event.id of the disable already reported (its request and response entries both come)
        self.disabled_by_event: str | None = None

    @property
    def last(self) -> dict[str, Any]:
        ev = self.last_ev
        if ev is not None:
            self._last = {"time": ev.timestamp, "id": ev.event_id, "action": ev.action,
                          "path": ev.path if ev.path is not None else ev.get("vault.path")}
            self.last_ev = None
        return self._last

    def to_state(self) -> list[Any]:
        return [self.last_ts, self.last, self.run_start, self.reported, self.disabled,
                self.disabled_by_event]

    @classmethod
    def from_state(cls, data: list[Any]) -> SourceState:
        s = cls()
        s.last_ts, s._last, run_start, s.reported, s.disabled = data[:5]
        # State written before continuity runs kept a list of recent gaps here: start afresh.
        s.run_start = run_start if isinstance(run_start, (int, float)) else s.last_ts
        s.disabled_by_event = data[5] if len(data) > 5 else None
        return s


def disables_audit(ev: Ev) -> bool:
    # Not `ev.effective`: a Vault device disable is typically logged only as a request entry
    # (outcome unknown); only a recorded failure says it did not happen.
    if ev.category != "audit" or ev.outcome == "failure":
        return False
    if ev.dataset == "vault.audit":
        return ev.action == "delete"
    if ev.dataset == "aws.cloudtrail":
        return ev.action in _DISABLE_ACTIONS or ev.get("aws.logging_disabled") is True
    return False


class SourceStates(KeyedState):
    """The sources' states, written back at commit when an event changed them."""

    def collect(self, out: dict[tuple[str, str], Any]) -> None:
        for ds, s in self.items.items():
            if s.changed:
                s.changed = False
                self.dirty.add(ds)
        super().collect(out)


class AuditGap(Detector):
    name = "audit_gap"
    anomaly = "audit_gap"

    def start(self) -> None:
        self.max_silence = self.config.stateful.audit_gap_max_silence.total_seconds()
        self.baseline = self.config.stateful.audit_gap_baseline.total_seconds()
        self.state = SourceStates(self.cache, "audit_gap", SourceState)
        for ds, raw in self.cache.store.scan_kv(f"{self.cache.ns}/audit_gap"):
            if raw is not None:
                self.state.items[ds] = SourceState.from_state(raw)
        self.sources: dict[str, SourceState] = self.state.items
        # Wall-clock arrival per source, at tick granularity: process() only notes that an
        # event arrived (no clock call per event); tick() stamps those sources.
        self.arrival: dict[str, float] = {}

    def continuous(self, s: SourceState) -> bool:
        return (s.run_start is not None and s.last_ts is not None
                and s.last_ts - s.run_start >= self.baseline)

    def process(self, ev: Ev, out: list[Finding]) -> None:
        ds = ev.dataset
        ts = ev.ts
        s = self.sources.get(ds)
        if s is None:
            s = self.state.get(ds)
        s.arrived = s.changed = True
        last_ts = s.last_ts
        if last_ts is None:
            s.last_ts = ts
            s.run_start = ts
            s.last_ev = ev
        elif ts >= last_ts:
            gap = ts - last_ts
            if gap > self.max_silence:
                if not s.reported and not s.disabled and self.continuous(s):
                    self._fire(ds, s, last_ts, ts, out, reason="silence",
                               extra={"next_event_time": ev.timestamp})
                s.run_start = ts  # the run of continuity starts again
            if s.reported:  # (tested before writing: the common case writes nothing)
                s.reported = False
            if s.disabled:
                s.disabled = False
            s.last_ts = ts
            s.last_ev = ev  # the evidence dict is built only when needed (to_state, a finding)
        if (ev.category == "audit" and disables_audit(ev)
                and not (s.disabled_by_event is not None and s.disabled_by_event == ev.event_id)):
            s.disabled = True
            s.disabled_by_event = ev.event_id
            self._fire(ds, s, ev.ts, ev.ts, out, reason="audit_device_disabled",
                       extra={"disabled_by": ev.user_id}, user_id=ev.user_id,
                       user_name=ev.user_name, credential_id=ev.credential_id)

    def _fire(self, ds: str, s: SourceState, start: float, end: float, out: list[Finding], *,
              reason: str, extra: dict[str, Any], user_id: str | None = None,
              user_name: str | None = None, credential_id: str | None = None) -> None:
        evidence = {"source": ds, "reason": reason, "last_event": dict(s.last),
                    "silence_seconds": round(end - start, 3), **extra}
        if s.run_start is not None:
            evidence["continuous_for_seconds"] = round(start - s.run_start, 3)
        self.emit(out, self.finding(
            user_id=user_id, user_name=user_name, start=start, end=end, dataset=ds,
            evidence=evidence, credential_id=credential_id,
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
        for ds, s in self.sources.items():
            if s.arrived:
                s.arrived = False
                self.arrival[ds] = wall
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
