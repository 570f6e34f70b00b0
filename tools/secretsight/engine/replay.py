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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from secretsight.config import Config
from secretsight.engine import Engine
from secretsight.engine.table import Celled
from secretsight.engine.tap import LoadProcess, Tap, load_detectors
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


def replay(
    events: Iterable[dict[str, Any] | Celled],
    config: Config,
    ruleset: Any,
    *,
    store_url: str | None = None,
    detectors: bool = True,
    on_disk: bool = False,
    jobs: int = 1,
) -> ReplayResult:
    """`on_disk`: keep the events table in a temporary file instead of memory (large scans:
    the OS page cache holds it, not the process). `jobs` >= 2: a second process runs the
    detectors that run while the events load (`engine.tap.LoadProcess`), on the other
    core, and inserts the rows this one builds into the database file (in memory, this one
    inserts them); a database file's rules run in two halves, one in a forked process
    (`evaluate.RuleEvaluator`). The rows, findings and every count are the same. `jobs` 1
    forks nothing.

    `events`: normalized events, or some given with their cells (`table.Celled`, from
    `normalize.iter_files(cells=True)`), which are not walked again for their rows."""
    timings: dict[str, float] = {}
    window = config.stream.incident_window.total_seconds()
    reported = False
    tmpdir = tempfile.TemporaryDirectory(prefix="secretsight-") if on_disk else None
    database = os.path.join(tmpdir.name, "events.db") if tmpdir else ":memory:"
    tap: Tap | LoadProcess | None = None
    streaming = detectors and store_url is None  # detectors fed while loading
    try:
        if jobs > 1 and (streaming or tmpdir):
            # forked before the engine exists: the worker holds no SQLite connection; on a
            # file, it inserts the rows this process builds
            tap = LoadProcess(config, detectors=streaming, database=database if tmpdir else None)
        elif streaming:
            tap = Tap(load_detectors(config))
        t = time.perf_counter()
        if isinstance(tap, LoadProcess) and tap.database is not None:
            state = tap.load(events)  # the file is loaded, committed and closed
            engine = _engine(config, database, True, create=False)
            engine.adopt(state)
        else:
            engine = _engine(config, database, tmpdir is not None)
            engine.load(events, observe=tap.feed if tap is not None and tap.usable else None)
            if tap is not None:
                tap.close()
        timings["normalize+load"] = time.perf_counter() - t
        t = time.perf_counter()
        folded = engine.dedupe()
        timings["dedupe"] = time.perf_counter() - t
        t = time.perf_counter()
        findings = list(engine.run(ruleset, jobs=jobs))
        timings["rules"] = time.perf_counter() - t
        result = ReplayResult(findings=findings, events=engine.count, duplicates=folded,
                              errors=list(engine.errors), timings=timings)
        timings.update({f"rule:{k}": v for k, v in engine.timings.items()})
        if detectors:
            t = time.perf_counter()
            streamed = tap.result() if tap is not None else None  # None: unusable
            if streamed is not None:
                result.detectors = streamed.names
                findings.extend(streamed.findings)
                result.rejected = streamed.rejected
            elif (det := load_detectors(config, store_url)) is not None:
                result.detectors = list(det.names)
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
        if isinstance(tap, LoadProcess):
            tap.stop()
        if tmpdir:
            tmpdir.cleanup()
    findings.sort(key=lambda f: (f.start, f.rule_name or f.rule, f.user_id or ""))
    if not reported:
        result.incidents = report(findings, window)
    return result


def _engine(config: Config, database: str, on_disk: bool, *, create: bool = True) -> Engine:
    engine = Engine(config, database=database, create=create)
    if on_disk:  # a temporary file: nothing to recover after a crash
        engine.conn.execute("PRAGMA journal_mode=OFF")
        engine.conn.execute("PRAGMA synchronous=OFF")
    return engine
