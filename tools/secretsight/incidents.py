"""Incidents: findings grouped per (anomaly, principal `user.id`, episode).

Rules and detectors report per rule and per burst: one slow harvest of N new paths is N
`first_path_access` findings, a tampering session two `audit_disabled` rules. What a person
handles is the incident, so `scan` and `watch` emit incidents: one per (anomaly, `user.id`)
and episode, an episode being findings whose windows lie within `stream.incident_window` of one
another (session windows: sorted by start, a finding starting more than `window` after the
episode's end opens the next one). An incident is a `Finding` (same outputs, same targets)
carrying `incident` (a stable id) and `revision`, with the members' hull as its window and in
its evidence the member count per rule, the events, and the paths and addresses they name
(the members' samples, capped; `distinct_paths` is at least the largest member's count).

- The id is a hash of (anomaly, user.id, start of the episode's first finding): the same in
  `scan` and `watch` and across runs on the same input.
- The content is a pure function of the member set (sums, unions, extremes; the head is the
  member with the smallest (start, rule)), so `watch`'s last revision equals `scan`'s incident.
- `watch` emits revision 1 as soon as the first finding arrives, an update (same id, next
  revision) when the member count reaches a power of two, and the last revision when the
  episode closes (stream time past its end + window + the detectors' longest delay, with no
  open rule burst that could still join it), if it changed since.
- `scan --store`: the store remembers what it reported (id -> content digest, revision); a
  second scan re-reports an incident only when it changed, as its next revision.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from secretsight.detect.events import parse_ts
from secretsight.findings import SEVERITIES, Finding

NS = "incidents"  # store namespace: open episodes (watch) and reported incidents (scan --store)
SAMPLE = 10
MAX_DISTINCT = 10_000  # paths / addresses kept per incident
_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def _ts(value: str) -> float | None:
    return parse_ts(value) if value else None


class Episode:
    """One incident's members, folded (bounded: counts, unions capped at MAX_DISTINCT)."""

    def __init__(self, anomaly: str, user_id: str | None) -> None:
        self.anomaly = anomaly
        self.user_id = user_id
        self.id: str | None = None
        self.start = self.end = 0.0
        self.start_s = self.end_s = ""
        # the first member: [start, rule_name, rule, title, user_name, dataset, credential_id]
        self.head: list[Any] | None = None
        self.severity = SEVERITIES[0]
        self.rules: Counter[str] = Counter()
        self.events = 0
        self.paths: set[str] = set()
        self.ips: set[str] = set()
        self.most_paths = 0  # the largest distinct-path count a member reports
        self.datasets: set[str | None] = set()
        self.revision = 0
        self.digest = ""  # of the last emitted content
        self.emitted_at = 0  # member count at the last emission

    @property
    def members(self) -> int:
        return sum(self.rules.values())

    def add(self, f: Finding, start: float, end: float) -> None:
        if not self.rules or start < self.start:
            self.start, self.start_s = start, f.start
        if not self.rules or end > self.end:
            self.end, self.end_s = end, f.end
        head = [f.start, f.rule_name or f.rule, f.rule, f.title, f.user_name, f.dataset,
                f.credential_id]
        if self.head is None or (start, head[1]) < (_ts(self.head[0]) or 0.0, self.head[1]):
            self.head = head
        if _RANK[f.severity] > _RANK[self.severity]:
            self.severity = f.severity
        self.rules[f.rule_name or f.rule] += 1
        ev = f.evidence
        self.events += int(ev.get("events", 1) or 1)
        self.most_paths = max(self.most_paths, int(ev.get("distinct_paths", 0) or 0))
        paths = ev.get("paths") or ([ev["path"]] if isinstance(ev.get("path"), str) else [])
        ips = ev.get("source_ips") or ([ev["source_ip"]] if isinstance(ev.get("source_ip"), str)
                                       else [])
        for target, values in ((self.paths, paths), (self.ips, ips)):
            for v in values:
                if isinstance(v, str) and len(target) < MAX_DISTINCT:
                    target.add(v)
        self.datasets.add(f.dataset)

    def merge(self, other: Episode) -> None:
        if other.start < self.start:
            self.start, self.start_s = other.start, other.start_s
        if other.end > self.end:
            self.end, self.end_s = other.end, other.end_s
        if self.head is None or (other.head is not None and (
                (other.start, other.head[1]) < (_ts(self.head[0]) or 0.0, self.head[1]))):
            self.head = other.head
        if _RANK[other.severity] > _RANK[self.severity]:
            self.severity = other.severity
        self.rules.update(other.rules)
        self.events += other.events
        self.most_paths = max(self.most_paths, other.most_paths)
        self.paths |= other.paths
        self.ips |= other.ips
        self.datasets |= other.datasets

    def incident_id(self) -> str:
        key = json.dumps([self.anomaly, self.user_id, self.start_s])
        return hashlib.sha256(key.encode()).hexdigest()[:24]

    def finding(self) -> Finding:
        assert self.head is not None
        _, rule_name, rule, title, user_name, _, credential = self.head
        datasets = self.datasets
        return Finding(
            anomaly=self.anomaly, rule=rule, rule_name=rule_name, title=title,
            severity=self.severity, user_id=self.user_id, user_name=user_name,
            start=self.start_s, end=self.end_s,
            dataset=next(iter(datasets)) if len(datasets) == 1 else None,
            evidence={
                "findings": self.members,
                "rules": dict(sorted(self.rules.items())),
                "events": self.events,
                # at least: the paths the members name (samples), or a member's own count
                "distinct_paths": max(len(self.paths), self.most_paths),
                "paths": sorted(self.paths)[:SAMPLE],
                "source_ips": sorted(self.ips)[:SAMPLE],
            },
            incident=self.id or self.incident_id(),
            revision=self.revision,
            credential_id=credential,
        )

    def content_digest(self) -> str:
        body = replace(self.finding(), revision=0).to_json()
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]

    # ---- persistence (watch: open episodes live in the store with the offsets)
    def to_state(self) -> dict[str, Any]:
        return {"a": self.anomaly, "u": self.user_id, "id": self.id, "s": [self.start, self.start_s],
                "e": [self.end, self.end_s], "h": self.head, "sev": self.severity,
                "r": list(self.rules.items()), "n": self.events, "mp": self.most_paths, "p": sorted(self.paths),
                "ip": sorted(self.ips), "d": sorted(self.datasets, key=str),
                "rev": self.revision, "dg": self.digest, "at": self.emitted_at}

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> Episode:
        ep = cls(d["a"], d["u"])
        ep.id = d["id"]
        ep.start, ep.start_s = d["s"]
        ep.end, ep.end_s = d["e"]
        ep.head, ep.severity = d["h"], d["sev"]
        ep.rules = Counter(dict(d["r"]))
        ep.events, ep.most_paths = d["n"], d["mp"]
        ep.paths, ep.ips = set(d["p"]), set(d["ip"])
        ep.datasets = set(d["d"])
        ep.revision, ep.digest, ep.emitted_at = d["rev"], d["dg"], d["at"]
        return ep


def _times(f: Finding) -> tuple[float, float] | None:
    start, end = _ts(f.start), _ts(f.end)
    if start is None:
        return None
    return start, end if end is not None and end >= start else start


def group(findings: Iterable[Finding], window: float) -> list[Episode]:
    """Batch grouping (scan): findings -> episodes, deterministic whatever the input order."""
    keyed: dict[tuple[str, str | None], list[tuple[float, float, str, Finding]]] = {}
    loose: list[Episode] = []
    for f in findings:
        times = _times(f)
        if times is None:  # no usable time: an incident of its own
            alone = Episode(f.anomaly, f.user_id)
            alone.add(f, 0.0, 0.0)
            loose.append(alone)
            continue
        keyed.setdefault((f.anomaly, f.user_id), []).append(
            (times[0], times[1], json.dumps(f.to_json(), sort_keys=True), f))
    out: list[Episode] = []
    for (anomaly, user), members in keyed.items():
        members.sort(key=lambda m: (m[0], m[1], m[2]))
        ep: Episode | None = None
        for start, end, _, f in members:
            if ep is None or start > ep.end + window:
                ep = Episode(anomaly, user)
                out.append(ep)
            ep.add(f, start, end)
    for ep in out + loose:
        ep.id = ep.incident_id()
        ep.revision = 1
    return sorted(out + loose, key=lambda e: (e.start_s, e.anomaly, e.user_id or ""))


def report(findings: list[Finding], window: float, cache: Any = None) -> list[Finding]:
    """Scan's incidents. With a store (`cache`: the detectors' StateCache), only those not
    reported before, or changed since (as their next revision); the store records them."""
    out = []
    for ep in group(findings, window):
        digest = ep.content_digest()
        if cache is not None:
            seen = cache.get(NS, f"r:{ep.id}")
            if seen is not None:
                if seen["digest"] == digest:
                    continue
                ep.revision = seen["revision"] + 1
            cache.put(NS, f"r:{ep.id}", {"digest": digest, "revision": ep.revision})
        out.append(ep.finding())
    return out


class IncidentTracker:
    """`watch`'s incidents over a stream of findings (see the module docstring)."""

    def __init__(self, window: float, delay: float, cache: Any = None) -> None:
        self.window = window
        self.delay = delay  # the longest a detector holds a finding back (rotation windows)
        self.cache = cache
        self.open: dict[tuple[str, str | None], list[Episode]] = {}
        self.dirty: set[tuple[str, str | None]] = set()
        # id(incident revision) -> (the revision, the finding behind it), until the commit
        self.source: dict[int, tuple[Finding, Finding]] = {}
        # no episode can close before stream time passes this (recomputed by advance)
        self.next_check = float("-inf")
        if cache is not None:
            for key, value in cache.scan(NS):
                if key.startswith("o:") and value:
                    eps = [Episode.from_state(d) for d in value]
                    self.open[(eps[0].anomaly, eps[0].user_id)] = eps

    def add(self, f: Finding) -> list[Finding]:
        times = _times(f)
        if times is None:
            ep = Episode(f.anomaly, f.user_id)
            ep.add(f, 0.0, 0.0)
            return [self._emit(ep, f)]
        start, end = times
        key = (f.anomaly, f.user_id)
        eps = self.open.setdefault(key, [])
        w = self.window
        joined = [ep for ep in eps if start <= ep.end + w and end >= ep.start - w]
        if joined:
            # The first emitted (earliest) keeps its id; bridged episodes fold into it.
            joined.sort(key=lambda ep: (ep.id is None, ep.start))
            ep = joined[0]
            for other in joined[1:]:
                ep.merge(other)
                eps.remove(other)
        else:
            ep = Episode(*key)
            eps.append(ep)
        ep.add(f, start, end)
        self.dirty.add(key)
        self.next_check = min(self.next_check, ep.end + w)
        n = ep.members
        if ep.revision == 0 or n & (n - 1) == 0:  # first, then at 2, 4, 8, ... members
            return [self._emit(ep, f)]
        return []

    def _emit(self, ep: Episode, f: Finding | None) -> Finding:
        if ep.id is None:
            ep.id = ep.incident_id()
        ep.revision += 1
        ep.emitted_at = ep.members
        ep.digest = ep.content_digest()
        out = ep.finding()
        if f is not None:
            self.source[id(out)] = (out, f)
        return out

    def might_close(self, bound: float) -> bool:
        return bool(self.open) and bound - self.delay > self.next_check

    def advance(self, bound: float, open_since: float) -> list[Finding]:
        """Close episodes that nothing can join any more: stream time (`bound`) past their
        end + window + delay, and no open rule burst started before that (`open_since`)."""
        out = []
        for key in sorted(self.open, key=lambda k: (k[0], k[1] or "")):
            eps = self.open[key]
            keep = []
            for ep in eps:
                horizon = ep.end + self.window
                if bound - self.delay > horizon and open_since > horizon:
                    if ep.content_digest() != ep.digest:
                        out.append(self._emit(ep, None))
                    self.dirty.add(key)
                else:
                    keep.append(ep)
            if keep:
                self.open[key] = keep
            else:
                del self.open[key]
        horizons = [ep.end + self.window for eps in self.open.values() for ep in eps]
        # blocked by an open burst: look again once stream time passes that burst's start too
        self.next_check = max(min(horizons, default=float("inf")),
                              open_since if open_since < float("inf") else float("-inf"))
        return out

    def finish(self) -> list[Finding]:
        return self.advance(float("inf"), float("inf"))

    def flush(self) -> None:
        if self.cache is None:
            return
        for key in self.dirty:
            eps = self.open.get(key)
            self.cache.put(NS, "o:" + json.dumps(list(key)),
                           [ep.to_state() for ep in eps] if eps else None)
        self.dirty.clear()
        self.source.clear()
