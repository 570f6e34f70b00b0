"""Prometheus metrics in the text exposition format (0.0.4), written by hand: no dependency.

Cardinality is bounded: sources are the three datasets, anomaly classes a fixed list, parse
errors a few reasons per input, and reads per identity are exported for the top N identities
only, the rest summed as identity="other" (an identity may enter or leave the top N between
scrapes; the sum over all series is the true total).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from secretsight.findings import ANOMALY_CLASSES

TOP_IDENTITIES = 20
MAX_TRACKED_IDENTITIES = 50_000  # past this, new identities count only in "other"


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    def __init__(self, clock=time.time) -> None:
        self.lock = threading.Lock()
        self.clock = clock
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

    def record_event(self, dataset: str, ts: float, reads: bool, identity: str | None) -> None:
        # called from the processing thread only; the lock guards the scrape
        with self.lock:
            self.events_by_source[dataset] += 1
            if ts > self.last_event_time.get(dataset, 0.0):
                self.last_event_time[dataset] = ts
            lag = self.clock() - ts
            self.lag_seconds = lag
            self.lag_max_seconds = max(self.lag_max_seconds, lag)
            if reads and identity is not None:
                if (identity in self.reads_by_identity
                        or len(self.reads_by_identity) < MAX_TRACKED_IDENTITIES):
                    self.reads_by_identity[identity] += 1
                else:
                    self.reads_untracked += 1

    def count(self, attr: str, key: Any, n: int = 1) -> None:
        with self.lock:
            getattr(self, attr)[key] += n

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
            family("secretsight_findings_dropped_total", "counter",
                   "Provisional findings dropped because another replica reported them first.",
                   [({}, self.findings_dropped)])
            family("secretsight_last_event_timestamp_seconds", "gauge",
                   "@timestamp of the newest event seen, by source.",
                   [({"source": s}, f"{t:.3f}") for s, t in sorted(self.last_event_time.items())])
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
            family("secretsight_state_commit_seconds_total", "counter",
                   "Time spent committing state.", [({}, f"{self.commit_seconds:.6f}")])
            return "\n".join(out) + "\n"
