"""Batch replay: normalized events -> every embedded Sigma rule + the batch stateful detectors.

What `secretsight scan` and the scenario harness both run, so they cannot drift apart:
1. the events stream into the engine's SQLite table (never all held in Python memory);
2. dedupe on (`event.dataset`, `event.id`), in SQL (see `engine.dedupe`);
3. the Sigma rules on the embedded engine (rules marked `embedded: false` skipped);
4. the stateful detectors of `secretsight.detect.BATCH_DETECTORS` over the deduplicated events
   in `@timestamp` order (the incremental bulk_read/path_diversity are left to the Sigma
   correlations; admin_off_hours comes only from its detector, its Sigma rule being target-only).
   When the input already arrives in time order without duplicates (one time-ordered log, the
   usual case) they run while it loads; otherwise (several files, out-of-order lines, a
   duplicate) that pass is discarded and they run over the events read back sorted from SQLite.
   Both give the same findings; the first avoids re-reading every event.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from secretsight.config import Config
from secretsight.engine import Engine
from secretsight.errors import SecretSightError
from secretsight.findings import Finding
from secretsight.incidents import report


@dataclass
class ReplayResult:
    findings: list[Finding]
    events: int  # after dedupe
    duplicates: int
    errors: list[SecretSightError] = field(default_factory=list)
    detectors: list[str] = field(default_factory=list)  # detectors that ran ([] if unavailable)
    rejected: dict[str, int] = field(default_factory=dict)  # events detectors refused, by reason
    # what is reported: `findings` grouped into incidents (secretsight.incidents); with a
    # store, only those new or changed since a previous scan on it
    incidents: list[Finding] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # phase -> seconds


def load_detectors(config: Config, store_url: str | None = None) -> Any | None:
    """`secretsight.detect.Detectors` over BATCH_DETECTORS, or None when not installed."""
    try:
        from secretsight.detect import BATCH_DETECTORS, Detectors, open_store
    except ImportError:
        return None
    return Detectors(config, open_store(store_url), only=BATCH_DETECTORS)


def replay(
    events: Iterable[dict[str, Any]],
    config: Config,
    ruleset: Any,
    *,
    store_url: str | None = None,
    detectors: bool = True,
    on_disk: bool = False,
) -> ReplayResult:
    """`on_disk`: keep the events table in a temporary file instead of memory (large scans:
    the OS page cache holds it, not the process)."""
    timings: dict[str, float] = {}
    window = config.stream.incident_window.total_seconds()
    reported = False
    tmpdir = tempfile.TemporaryDirectory(prefix="secretsight-") if on_disk else None
    database = os.path.join(tmpdir.name, "events.db") if tmpdir else ":memory:"
    try:
        engine = Engine(config, database=database)
        if tmpdir:
            engine.conn.execute("PRAGMA journal_mode=OFF")
            engine.conn.execute("PRAGMA synchronous=OFF")
        t = time.perf_counter()
        tap = _Tap(load_detectors(config) if detectors and store_url is None else None)
        engine.load(events, observe=tap.feed if tap.usable else None)  # pulls the input
        tap.close()
        timings["normalize+load"] = time.perf_counter() - t
        t = time.perf_counter()
        folded = engine.dedupe()
        timings["dedupe"] = time.perf_counter() - t
        t = time.perf_counter()
        findings = list(engine.run(ruleset))
        timings["rules"] = time.perf_counter() - t
        result = ReplayResult(findings=findings, events=engine.count, duplicates=folded,
                              errors=list(engine.errors), timings=timings)
        timings.update({f"rule:{k}": v for k, v in engine.timings.items()})
        if detectors:
            t = time.perf_counter()
            det = tap.detectors if tap.usable else load_detectors(config, store_url)
            if det is not None:
                result.detectors = list(det.names)
                if tap.usable:
                    findings.extend(tap.findings)
                else:
                    for event in engine.iter_events():
                        findings.extend(det.process(event))
                findings.extend(det.finish())
                commit = getattr(det, "commit", None)
                if store_url is not None and commit is not None:
                    # what this store has seen reported is recorded in the same commit
                    result.incidents = report(findings, window, det.cache)
                    reported = True
                    commit()
                result.rejected = dict(det.rejected)
            timings["detectors"] = time.perf_counter() - t
        engine.close()
    finally:
        if tmpdir:
            tmpdir.cleanup()
    findings.sort(key=lambda f: (f.start, f.rule_name or f.rule, f.user_id or ""))
    if not reported:
        result.incidents = report(findings, window)
    return result


class _Tap:
    """Runs the detectors on the input stream while it loads, through a reorder buffer.

    Logs are time-ordered only roughly (Vault writes a response when the request completes,
    so neighbouring entries can be a few milliseconds out of order): events are held for
    REORDER_LAG seconds of stream time and released in (`@timestamp`, arrival) order, the
    order the sorted replay uses. An event older than one already released, or a duplicate
    (`event.dataset`, `event.id`) that the SQL dedupe would fold, makes this pass unusable: its
    findings are dropped and the detectors run again over the sorted, deduplicated events.

    The buffer is a deque kept in (time, arrival) order: an event in time order (the usual
    case) is appended and later popped from the front, both O(1), with no heap comparisons; a
    slightly late one is inserted where it belongs, searching from the back (it is near it)."""

    REORDER_LAG = 60.0

    def __init__(self, detectors: Any | None):
        self.detectors = detectors
        self.usable = detectors is not None
        self.findings: list[Finding] = []
        self._released: float | None = None
        self._newest: float | None = None
        self._held: deque[tuple[float, dict[str, Any]]] = deque()
        self._seen: set[int] = set()
        self._untimed: list[dict[str, Any]] = []

    def close(self) -> None:
        """End of input: release everything held."""
        if self.usable:
            self._release(None)
            assert self.detectors is not None
            for event in self._untimed:  # the sorted replay puts unparsable times last
                self.findings.extend(self.detectors.process(event))
            self._untimed.clear()
        self._seen.clear()

    def _abandon(self) -> None:
        self.usable = False
        self.findings.clear()
        self._seen.clear()
        self._held.clear()
        self._untimed.clear()

    def feed(self, event: dict[str, Any], ts: float | None, key: int | None) -> None:
        """`key`: the hash of (`event.dataset`, `event.id`), None without an id."""
        if not self.usable:
            return
        if key is not None:
            if key in self._seen:
                self._abandon()
                return
            self._seen.add(key)
        if ts is None:
            self._untimed.append(event)
            return
        newest = self._newest
        if newest is None or ts >= newest:
            self._held.append((ts, event))
            if newest is None or ts > newest:
                self._newest = ts
                if self._held[0][0] <= ts - self.REORDER_LAG:
                    self._release(ts - self.REORDER_LAG)
            return
        if self._released is not None and ts < self._released:
            self._abandon()
            return
        held = self._held
        at = len(held)
        while at and held[at - 1][0] > ts:  # after every held event of the same or an earlier time
            at -= 1
        held.insert(at, (ts, event))

    def _release(self, upto: float | None) -> None:
        assert self.detectors is not None
        held, process, extend = self._held, self.detectors.process, self.findings.extend
        while held and (upto is None or held[0][0] <= upto):
            ts, event = held.popleft()
            self._released = ts
            extend(process(event))
