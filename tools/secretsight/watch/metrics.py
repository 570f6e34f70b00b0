"""Prometheus metrics in the text exposition format (0.0.4), written by hand: no dependency.

Cardinality is bounded: sources are the three datasets, anomaly classes a fixed list, parse
errors a few reasons per input, and reads per identity are exported for the top N identities
only, the rest summed as identity="other" (an identity may enter or leave the top N between
scrapes; the sum over all series is the true total).

Window gauges (for the Prometheus rules in secretsight.alerting.prometheus): reads and distinct
secret paths per identity over the config's bulk_read / path_diversity windows, ending at the
newest event time, kept in BUCKET_SECONDS buckets (a window is covered to within one bucket).
Only the top `alerting.metrics_top_identities` identities by reads and by distinct paths are
exported (at most 2N series): ranking by the very value the alerts compare means no identity
over a threshold is hidden while fewer than N are. Memory: identities active in the widest
window (at most MAX_WINDOW_IDENTITIES), at most MAX_BUCKET_PATHS paths per identity and bucket
(past it the distinct count saturates, still far above any threshold).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from secretsight.config import Config
from secretsight.findings import ANOMALY_CLASSES

TOP_IDENTITIES = 20
MAX_TRACKED_IDENTITIES = 50_000  # past this, new identities count only in "other"
BUCKET_SECONDS = 15
MAX_WINDOW_IDENTITIES = 50_000  # identities active in the window; past it new ones are skipped
MAX_BUCKET_PATHS = 1_000
_EMPTY: dict[str, Any] = {}


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    def __init__(self, clock=time.time, config: Config | None = None) -> None:
        self.lock = threading.Lock()
        self.clock = clock
        self.start_time = clock()  # a restart shows as a change (alerting: crash loops)
        config = config or Config()
        self.reads_window = config.thresholds.bulk_read.window.total_seconds()
        self.paths_window = config.thresholds.path_diversity.window.total_seconds()
        self.top_identities = config.alerting.metrics_top_identities
        self.max_silence = config.stateful.audit_gap_max_silence.total_seconds()
        # identity -> bucket index -> [reads, paths], buckets of the widest window only; paths
        # None, one path (a str: most buckets of an identity hold one read), or a set
        self.window_activity: dict[str, dict[int, list[Any]]] = {}
        self.window_untracked = 0  # reads of identities past MAX_WINDOW_IDENTITIES
        self._keep_buckets = int(max(self.reads_window, self.paths_window) // BUCKET_SECONDS) + 1
        # source -> @timestamp since which it has emitted with no gap over max_silence (the
        # audit_gap detector's continuity: only a continuous source's silence is news)
        self.continuous_since: dict[str, float] = {}
        self.findings_by_severity: Counter[tuple[str, str]] = Counter()  # (anomaly, severity)
        self.state_commit_failures = 0
        self.events_by_source: Counter[str] = Counter()
        self.lines_by_input: Counter[str] = Counter()
        self.parse_errors: Counter[tuple[str, str]] = Counter()  # (input, reason)
        self.skipped: Counter[tuple[str, str]] = Counter()  # deliberate normalizer skips
        self.duplicates: Counter[str] = Counter()  # by input: the same audit record again
        self.reads_by_identity: Counter[str] = Counter()
        self.reads_untracked = 0
        self.findings: Counter[str] = Counter({a: 0 for a in ANOMALY_CLASSES})
        self.findings_dropped = 0  # provisional findings another replica already reported
        self.first_path_accesses = 0
        self.last_event_time: dict[str, float] = {}
        self.lag_seconds: float | None = None
        self.lag_max_seconds = 0.0
        self.http_requests: Counter[tuple[str, int]] = Counter()  # (path, code)
        self.output_errors: Counter[str] = Counter()
        # refused at the HTTP edge before any event was read, by reason (connections,
        # inflight_bytes, header_timeout, body_timeout, queue_full)
        self.http_refused: Counter[str] = Counter()
        # HTTP output spool: (output, spooled|retried|delivered|dropped|failed_posts) -> count
        self.spool: Counter[tuple[str, str]] = Counter()
        self.spool_depth: Any = None  # () -> {output: findings waiting}, set by the side-car
        self.commits = 0
        self.commit_seconds = 0.0

    def observe(self, event: dict[str, Any], ts: float) -> None:
        """One normalized event the detectors accepted, at stream time `ts` (observe_many)."""
        self.observe_many([(event, ts)])

    def observe_many(self, accepted: list[tuple[dict[str, Any], float]]) -> None:
        """The normalized events the detectors accepted, each at its stream time, in order:
        one lock and one clock reading for a whole read of the watch loop, not per event (the
        lag is the wall clock minus each event's time). The window gauges count what the
        bulk_read detector counts (successful reads and lists) and the paths path_diversity
        counts (successful reads of one concrete path: a wildcard list or a
        BatchGetSecretValue adds no path)."""
        if not accepted:
            return
        with self.lock:
            self._record(accepted, self.clock())

    def record_event(self, dataset: str, ts: float, reads: bool, identity: str | None,
                     path: str | None = None, windowed: bool | None = None) -> None:
        """observe() of the event these describe: `reads` a read (counted in
        secretsight_identity_reads_total), `windowed` (default: `reads`) counted in the window
        gauges (a failed read is not; a list is, with no path), `path` the path it read."""
        windowed = reads if windowed is None else windowed
        op = "read" if reads else "list" if windowed else "write"
        self.observe({"event": {"dataset": dataset,
                                "outcome": "success" if windowed else "failure"},
                      "secret": {"operation": op, "path": path}, "user": {"id": identity}}, ts)

    def _record(self, accepted: list[tuple[dict[str, Any], float]], now: float) -> None:
        """observe_many's bookkeeping, under the lock, `now` the wall clock. One call and one
        pass for a whole read of the watch loop: a call per event cost as much as its
        bookkeeping, and so did a row built per event for a second pass."""
        by_source = self.events_by_source
        last_times = self.last_event_time
        continuous = self.continuous_since
        max_silence = self.max_silence
        counts = self.reads_by_identity
        activity = self.window_activity
        lag_max = self.lag_max_seconds
        keep = self._keep_buckets
        empty = _EMPTY
        for event, ts in accepted:
            meta = event["event"]
            dataset = meta["dataset"]
            by_source[dataset] += 1
            last = last_times.get(dataset)
            if last is None or ts - last > max_silence:
                continuous[dataset] = ts
            if last is None or ts > last:
                last_times[dataset] = ts
            if now - ts > lag_max:
                lag_max = now - ts
            secret = event.get("secret")
            if not secret:  # no secret operation (the category is not secret): no read
                continue
            identity = (event.get("user") or empty).get("id")
            if identity is None:
                continue
            op = secret.get("operation")
            read = op == "read"
            if read:  # (failed reads too)
                if identity in counts or len(counts) < MAX_TRACKED_IDENTITIES:
                    counts[identity] += 1
                else:
                    self.reads_untracked += 1
            elif op != "list":
                continue
            if meta.get("outcome") == "failure":  # windowed: successful reads and lists
                continue
            bucket = int(ts // BUCKET_SECONDS)
            per = activity.get(identity)
            cell: list[Any] | None
            if per is None or (cell := per.get(bucket)) is None:
                if per is not None and len(per) < keep:
                    cell = per[bucket] = [0, None]  # _new_bucket's usual case: nothing to drop
                else:
                    cell = self._new_bucket(identity, per, bucket)
                    if cell is None:
                        continue
            cell[0] += 1
            if read:
                path = secret.get("path")  # one concrete path (a wildcard is none)
                if path.__class__ is str and "*" not in path:
                    paths = cell[1]
                    if paths is None:
                        cell[1] = path
                    elif paths.__class__ is str:
                        if paths != path:
                            cell[1] = {paths, path}
                    elif len(paths) < MAX_BUCKET_PATHS:
                        paths.add(path)
        self.lag_seconds = now - accepted[-1][1]
        self.lag_max_seconds = lag_max

    def _new_bucket(self, identity: str, per: dict[int, list[Any]] | None,
                    bucket: int) -> list[Any] | None:
        """The [reads, paths] cell of a new bucket (or of a new identity), None past the
        identity bound; an identity keeps the buckets of the widest window only."""
        if per is None:
            if len(self.window_activity) >= MAX_WINDOW_IDENTITIES:
                self._prune_windows()
                if len(self.window_activity) >= MAX_WINDOW_IDENTITIES:
                    self.window_untracked += 1
                    return None
            per = self.window_activity[identity] = {}
        cell: list[Any] = [0, None]
        per[bucket] = cell
        if len(per) > self._keep_buckets:
            for old in [b for b in per if b <= bucket - self._keep_buckets]:
                del per[old]
        return cell

    def _newest(self) -> float:
        return max(self.last_event_time.values(), default=0.0)

    def _prune_windows(self) -> None:
        oldest = int(self._newest() // BUCKET_SECONDS) - self._keep_buckets
        for identity in [i for i, per in self.window_activity.items() if max(per) <= oldest]:
            del self.window_activity[identity]

    def window_values(self) -> list[tuple[str, int, int]]:
        """(identity, reads in the bulk_read window, distinct paths in the path_diversity
        window), for the exported identities: the top N by each value, sorted by identity."""
        self._prune_windows()
        now_bucket = int(self._newest() // BUCKET_SECONDS)
        reads_from = now_bucket - int(self.reads_window // BUCKET_SECONDS)
        paths_from = now_bucket - int(self.paths_window // BUCKET_SECONDS)
        rows = []
        for identity, per in self.window_activity.items():
            reads = sum(c[0] for b, c in per.items() if b >= reads_from)
            paths: set[str] = set()
            for b, c in per.items():
                if b >= paths_from:
                    p = c[1]
                    if p.__class__ is str:
                        paths.add(p)
                    elif p is not None:
                        paths |= p
            if reads or paths:
                rows.append((identity, reads, len(paths)))
        n = self.top_identities
        keep = {r[0] for r in sorted(rows, key=lambda r: (-r[1], r[0]))[:n]}
        keep |= {r[0] for r in sorted(rows, key=lambda r: (-r[2], r[0]))[:n]}
        return sorted(r for r in rows if r[0] in keep)

    def count(self, attr: str, key: Any, n: int = 1) -> None:
        with self.lock:
            getattr(self, attr)[key] += n

    def count_commit_failure(self) -> None:
        with self.lock:
            self.state_commit_failures += 1

    def render(self) -> str:
        with self.lock:
            out: list[str] = []

            def family(name: str, kind: str, help_: str, rows: list[tuple[dict[str, Any], Any]]
                       ) -> None:
                out.append(f"# HELP {name} {help_}")
                out.append(f"# TYPE {name} {kind}")
                for labels, value in rows:
                    lab = ",".join(f'{k}="{_esc(str(v))}"' for k, v in labels.items())
                    out.append(f"{name}{{{lab}}} {value}" if lab else f"{name} {value}")

            family("secretsight_events_processed_total", "counter",
                   "Normalized events processed, by source (event.dataset).",
                   [({"source": s}, n) for s, n in sorted(self.events_by_source.items())])
            family("secretsight_input_lines_total", "counter", "Lines read, by input.",
                   [({"input": i}, n) for i, n in sorted(self.lines_by_input.items())])
            family("secretsight_parse_errors_total", "counter",
                   "Input lines or events that could not be used, by input and reason.",
                   [({"input": i, "reason": r}, n)
                    for (i, r), n in sorted(self.parse_errors.items())])
            family("secretsight_skipped_total", "counter",
                   "Lines the normalizer skips on purpose (e.g. Vault request entries), by reason.",
                   [({"input": i, "reason": r}, n) for (i, r), n in sorted(self.skipped.items())])
            family("secretsight_duplicates_total", "counter",
                   "Events dropped as repeats of a recent audit record (CloudTrail eventID "
                   "redelivered, a Vault request.id or Kubernetes auditID+stage seen again), by input.",
                   [({"input": i}, n) for i, n in sorted(self.duplicates.items())])
            top = self.reads_by_identity.most_common(TOP_IDENTITIES)
            other = sum(self.reads_by_identity.values()) - sum(n for _, n in top)
            family("secretsight_identity_reads_total", "counter",
                   f"Secret reads per identity: the top {TOP_IDENTITIES}, the rest as other.",
                   [({"identity": i}, n) for i, n in sorted(top)]
                   + [({"identity": "other"}, other + self.reads_untracked)])
            family("secretsight_first_path_accesses_total", "counter",
                   "first_path_access findings emitted.", [({}, self.first_path_accesses)])
            family("secretsight_findings_total", "counter", "Findings emitted, by anomaly class.",
                   [({"anomaly": a}, n) for a, n in sorted(self.findings.items())])
            family("secretsight_findings_by_severity_total", "counter",
                   "Findings emitted, by anomaly class and severity (pairs seen so far).",
                   [({"anomaly": a, "severity": v}, n)
                    for (a, v), n in sorted(self.findings_by_severity.items())])
            window = self.window_values()
            family("secretsight_identity_window_reads", "gauge",
                   f"Secret reads per identity in the bulk_read window ({self.reads_window:g}s "
                   f"up to the newest event); the top {self.top_identities} identities by this "
                   "and by distinct paths.",
                   [({"identity": i}, r) for i, r, _ in window])
            family("secretsight_identity_window_distinct_paths", "gauge",
                   f"Distinct secret paths read per identity in the path_diversity window "
                   f"({self.paths_window:g}s up to the newest event); same identities as "
                   "secretsight_identity_window_reads.",
                   [({"identity": i}, p) for i, _, p in window])
            family("secretsight_window_identities", "gauge",
                   "Identities with reads in the window (exported or not), and reads of "
                   "identities past the tracking bound.",
                   [({"kind": "active"}, len(self.window_activity)),
                    ({"kind": "untracked_reads"}, self.window_untracked)])
            family("secretsight_findings_dropped_total", "counter",
                   "Provisional findings dropped because another replica reported them first.",
                   [({}, self.findings_dropped)])
            family("secretsight_last_event_timestamp_seconds", "gauge",
                   "@timestamp of the newest event seen, by source.",
                   [({"source": s}, f"{t:.3f}") for s, t in sorted(self.last_event_time.items())])
            family("secretsight_source_continuous_since_timestamp_seconds", "gauge",
                   "@timestamp since which the source has emitted with no gap longer than "
                   "stateful.audit_gap_max_silence, by source.",
                   [({"source": s}, f"{t:.3f}") for s, t in sorted(self.continuous_since.items())])
            if self.lag_seconds is not None:
                family("secretsight_end_to_end_lag_seconds", "gauge",
                       "Wall clock minus @timestamp of the last event processed.",
                       [({}, f"{self.lag_seconds:.3f}")])
                family("secretsight_end_to_end_lag_max_seconds", "gauge",
                       "Largest end-to-end lag seen since start.",
                       [({}, f"{self.lag_max_seconds:.3f}")])
            family("secretsight_http_requests_total", "counter", "HTTP requests, by path and code.",
                   [({"path": p, "code": c}, n) for (p, c), n in sorted(self.http_requests.items())])
            family("secretsight_http_refused_total", "counter",
                   "HTTP requests or connections refused to protect the side-car, by reason.",
                   [({"reason": r}, n) for r, n in sorted(self.http_refused.items())])
            family("secretsight_spool_findings_total", "counter",
                   "Findings through an HTTP output's spool, by output and event (spooled, "
                   "retried, delivered, dropped when the spool is full).",
                   [({"output": o, "event": e}, n) for (o, e), n in sorted(self.spool.items())
                    if e != "failed_posts"])
            family("secretsight_spool_depth", "gauge",
                   "Findings waiting in an HTTP output's spool.",
                   [({"output": o}, n) for o, n in sorted((self.spool_depth or dict)().items())])
            family("secretsight_output_errors_total", "counter", "Failed finding deliveries.",
                   [({"output": o}, n) for o, n in sorted(self.output_errors.items())])
            family("secretsight_state_commits_total", "counter",
                   "State + offsets commits.", [({}, self.commits)])
            family("secretsight_start_time_seconds", "gauge",
                   "When this side-car process started (Unix time).",
                   [({}, f"{self.start_time:.3f}")])
            family("secretsight_state_commit_failures_total", "counter",
                   "State + offsets commits that failed (store unreachable, disk full, ...).",
                   [({}, self.state_commit_failures)])
            family("secretsight_state_commit_seconds_total", "counter",
                   "Time spent committing state.", [({}, f"{self.commit_seconds:.6f}")])
            return "\n".join(out) + "\n"
