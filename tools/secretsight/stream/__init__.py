"""Streaming evaluation of every embedded Sigma rule, for `watch`.

`open_detectors(config, store, ...)` returns `StreamingDetectors`: the stateful detectors
plus every rule `scan` evaluates (plain and correlation, see `rules.py` for the semantics),
behind one reorder buffer with a watermark (`reorder.py`, `stream.lateness` in the config),
so the detectors and the rules see the events in the order `scan` replays them. It has the
`Detectors` interface the watch loop drives (process, finish, tick, commit, ...): the loop
needs no change, and the rules' window state is committed in the same store transaction as
the detectors' state and the input offsets.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

from secretsight.config import Config
from secretsight.detect import BATCH_DETECTORS, Detectors
from secretsight.detect.events import parse_ts
from secretsight.detect.stores.base import Store
from secretsight.detect.timeguard import OUT_OF_RANGE
from secretsight.engine.table import parse_zoned_ts
from secretsight.findings import Finding
from secretsight.incidents import IncidentTracker
from secretsight.stream.evaluator import StreamEvaluator
from secretsight.stream.reorder import Reorder
from secretsight.stream.rules import StreamRules

__all__ = ["StreamRules", "StreamingDetectors", "open_detectors"]


def _zoned(stamp: Any) -> bool:
    return isinstance(stamp, str) and (stamp[-1:] == "Z" or parse_zoned_ts(stamp) is not None)


class StreamingDetectors(Detectors):
    """`Detectors` with the Sigma rules, both fed through the watermark. A `Detectors` for the
    watch loop; every call not overridden here goes to the wrapped instance."""

    def __init__(self, detectors: Detectors, rules: StreamRules | None,  # noqa: PLW0231
                 lateness: float, *, incidents: IncidentTracker | None = None) -> None:
        # No super().__init__(): the wrapped instance holds the detectors and their state.
        self.inner = detectors
        self.rules = rules
        self.evaluator = StreamEvaluator(rules, detectors.cache) if rules is not None else None
        self.buffer = Reorder(lateness, detectors.cache)
        self.incidents = incidents  # None: emit the rules' and detectors' findings themselves
        self.events = 0
        self.last_ts: float | None = None
        self.arrived: float | None = None  # wall clock of the last event taken (idle flush)

    def __getattr__(self, name: str) -> Any:  # cache, store, now, detectors, ...
        return getattr(self.inner, name)

    @property  # type: ignore[override]
    def rejected(self) -> Any:  # type: ignore[override]
        return self.inner.rejected

    @property
    def names(self) -> list[str]:
        return self.inner.names

    def claim_ids(self) -> dict[int, int]:
        claims = self.inner.claim_ids()
        if self.incidents is None:
            return claims
        # An incident revision stands or falls with the provisional finding that caused it.
        return {rid: claims[id(f)] for rid, (_, f) in self.incidents.source.items()
                if id(f) in claims}

    def _grouped(self, found: list[Finding], *, closing: bool = False) -> list[Finding]:
        tracker = self.incidents
        if tracker is None:
            return found
        out: list[Finding] = []
        for f in found:
            out.extend(tracker.add(f))
        ev = self.evaluator
        bound = self.buffer.bound
        if closing:
            out.extend(tracker.finish())
        elif bound is not None and tracker.might_close(bound):
            out.extend(tracker.advance(bound, ev.open_since if ev else float("inf")))
        return out

    def state_offsets(self) -> dict[str, Any]:
        return self.inner.state_offsets()

    def advance_to(self, now: float) -> list[Finding]:
        return self.inner.advance_to(now)

    def process(self, event: dict[str, Any]) -> list[Finding]:
        out: list[Finding] = []
        self.process_many((event,), out, [], [])
        return out

    def process_many(self, events: Iterable[Any], out: list[Finding],
                     accepted: list[tuple[dict[str, Any], float]], refused: list[str]) -> None:
        """process() of each event in turn, for a whole read of the watch loop: the findings
        are appended to `out`, each event taken to `accepted` as (event, timestamp), and for
        each event refused (no time, out of range, late) the detectors' `last_rejected` at
        that moment to `refused`. A duplicate in the buffer is taken (counted under
        rejected["duplicate"]). One call per read, not per event: the buffer, the guard and
        the incident tracker are looked up once, and `events` may be a generator (the loop's
        dedupe), pulled one event at a time."""
        inner = self.inner
        buffer = self.buffer
        guard = inner.time_guard
        floor, skew = guard.floor, guard.skew  # (fixed; the horizon moves: read each time)
        tracker = self.incidents
        add = buffer.add
        run = self._run
        take = accepted.append
        refuse = refused.append
        # (the counters of the events past the time guard are written once, at the end)
        passed = taken = 0
        last_ts = 0.0
        try:
            for event in events:
                ts = parse_ts(event.get("@timestamp")) if isinstance(event, dict) else None
                if ts is None:
                    # No time, no place in the stream: the detectors reject and count it.
                    if isinstance(event, dict):
                        found = inner.process(event)
                        if found:
                            out.extend(found)
                    refuse(inner.last_rejected)
                    continue
                newest = buffer.newest
                # (TimeGuard.accepts' common case inline, as Detectors.process_at has it)
                if (ts < floor or ts > guard.horizon
                        or (newest is not None and ts < newest - skew)
                        ) and not guard.accepts(ts, newest):
                    # A forged or skewed time must not move the watermark (timeguard.py): it
                    # is refused before the buffer, so neither the detectors nor the rules see it.
                    inner.last_rejected = OUT_OF_RANGE
                    inner.rejected[OUT_OF_RANGE] += 1
                    refuse(OUT_OF_RANGE)
                    continue
                passed += 1
                taken += 1
                last_ts = ts
                late, dups = buffer.late, buffer.duplicates
                batches = add(event, ts)
                found = run(batches) if batches else []
                # _grouped when it has anything to do: findings to group, or episodes to close
                if tracker is not None and (found or (buffer.bound is not None
                                                      and tracker.might_close(buffer.bound))):
                    found = self._grouped(found)
                if found:
                    out.extend(found)
                if buffer.late != late:
                    inner.last_rejected = "late"
                    inner.rejected["late"] += 1  # older than the watermark (stream.lateness)
                    taken -= 1
                    refuse("late")
                    continue
                if buffer.duplicates != dups:
                    inner.rejected["duplicate"] += 1
                take((event, ts))
        finally:
            if passed:
                self.events += taken
                self.last_ts = last_ts
                self.arrived = inner.clock()

    def _run(self, batches: list[tuple[float, list[dict[str, Any]]]]) -> list[Finding]:
        out: list[Finding] = []
        ev = self.evaluator
        process_at = self.inner.process_at
        for ts, events in batches:
            for e in events:
                found = process_at(e, ts)
                if found:
                    out.extend(found)
            if ev is not None:
                # The engine's table drops a time without a zone (detectors read it as UTC);
                # a `Z` time (what the normalizers write) is zoned without a call, and when
                # every one is (the usual case) the batch goes as it is, not copied
                zoned = events
                for e in events:
                    if not (((stamp := e.get("@timestamp")).__class__ is str
                             and stamp[-1:] == "Z") or _zoned(stamp)):
                        zoned = [e for e in events if _zoned(e.get("@timestamp"))]
                        break
                if zoned:
                    out.extend(ev.process(ts, zoned))
        if ev is not None and batches and self.buffer.bound is not None:
            out.extend(ev.advance(self.buffer.bound))
        return out

    def finish(self, now: str | None = None) -> list[Finding]:
        out = self._run(self.buffer.release(None))
        if self.evaluator is not None:
            out.extend(self.evaluator.finish())
        out.extend(self.inner.finish(now))
        return self._grouped(out, closing=now is None)

    def tick(self, wall: float | None = None) -> list[Finding]:
        wall = self.inner.clock() if wall is None else wall
        return self._grouped(self._idle_flush(wall) + self.inner.tick(wall))

    def _idle_flush(self, wall: float) -> list[Finding]:
        """A live input that sent nothing for `lateness` seconds of wall time releases what
        the buffer holds: no later event is waited for to move the watermark, so the last
        events before a pause (a harvest that stops) reach the detectors and rules now, not
        when traffic resumes. The watermark moves to the newest timestamp seen: an event older
        than that arriving afterwards is late, as it would be after the newer ones' release."""
        buffer = self.buffer
        if (not buffer.holding() or self.arrived is None or buffer.newest is None
                or wall - self.arrived < buffer.lateness):
            return []
        batches = buffer.release(None)
        buffer.bound = buffer.newest
        return self._run(batches)

    def commit(self, offsets: dict[str, Any] | None = None) -> list[Finding]:
        if self.evaluator is not None:
            self.evaluator.flush()
        self.buffer.flush()
        lost = self.inner.commit(offsets)
        if self.incidents is None:
            return lost
        # the incident revisions whose provisional finding lost its claim
        gone = {id(f) for f in lost}
        dropped = [rev for rev, f in self.incidents.source.values() if id(f) in gone]
        self.incidents.flush()
        return dropped


def open_detectors(config: Config, store: Store, *, only: Iterable[str] | None = None,
                   instance: str = "default", ruleset: Any = None, rules: bool = True,
                   incidents: bool = True,
                   log: Callable[[str], None] | None = None) -> StreamingDetectors:
    """What `watch` runs: the detectors (by default those `scan` runs: the Sigma correlations
    cover bulk_read and path_diversity) and every embedded rule. Each rule that cannot
    stream is named through `log`, once, at start."""
    log = log or (lambda m: print(f"secretsight watch: {m}", file=sys.stderr, flush=True))
    if only is None and rules:
        only = BATCH_DETECTORS
    detectors = Detectors(config, store, only=only, instance=instance)
    compiled = None
    if rules:
        owned = ruleset is None  # (loaded here for the stream alone: used without a copy)
        if ruleset is None:
            from secretsight.rules import load_rules

            ruleset = load_rules(config=config)
        compiled = StreamRules(config, ruleset, owned=owned)
        for err in compiled.compiled.errors:
            log(f"rule not loaded: {err}")
        # (`embedded: false` rules are skipped silently, as scan skips them: by design)
        for name, why in compiled.skipped:
            log(f"rule {name} cannot stream: {why}")
    tracker = None
    if incidents:
        st = config.stateful
        delay = max(st.rotation_read_window, st.rotation_deploy_window).total_seconds()
        tracker = IncidentTracker(config.stream.incident_window.total_seconds(), delay,
                                  detectors.cache)
    return StreamingDetectors(detectors, compiled, config.stream.lateness.total_seconds(),
                              incidents=tracker)
