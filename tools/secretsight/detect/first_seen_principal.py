"""first_seen_principal: a principal (user.id) that was never seen reading a secret reads one.

New principals appear when a workload, role or person is added: worth a look, and the first
use of a stolen or newly minted identity looks the same. The detector judges only once it has
watched the stream for `stateful.first_seen_principal_history` (14d): before that, every
principal is new to it and reads are learned silently. Principals are `user.id` (a Vault
entity, an IAM user or the role behind its sessions, a Kubernetes user), so renewed tokens and
new sessions are not new principals. A principal's memory never expires (one timestamp per
principal); the Elastic and Splunk forms approximate it with their history window.
"""

from __future__ import annotations

from secretsight.detect.base import Detector
from secretsight.detect.events import Ev, iso, read_paths
from secretsight.detect.state import LAST_SEEN_STEP
from secretsight.findings import Finding

NS = "first_seen_principal"
_SINCE = "\x1fsince"  # the key holding when the detector started watching (not a principal)
_UNKNOWN = float("nan")  # not looked up yet (None: looked up, never read)


class FirstSeenPrincipal(Detector):
    name = "first_seen_principal"
    anomaly = "first_seen_principal"

    def start(self) -> None:
        self.history = self.config.stateful.first_seen_principal_history.total_seconds()
        self.exempt = self.exemptions(self.config.allowlists.first_seen_principal)
        since = self.cache.get(NS, _SINCE)
        self.since: float | None = float(since) if since is not None else None
        # principal -> when it last read (to within LAST_SEEN_STEP); None: not looked up yet
        self.last: dict[str, float | None] = {}

    def wants(self, category: str, operation: str | None, effective: bool, final: bool) -> bool:
        return operation == "read" and effective

    def process(self, ev: Ev, out: list[Finding]) -> None:
        uid = ev.user_id
        if uid is None:
            return
        ts = ev.ts
        last = self.last.get(uid, _UNKNOWN)
        if last is not None and last is not _UNKNOWN and ts - last < LAST_SEEN_STEP:
            return  # the common case: a known reader, refreshed less than an hour ago
        if not read_paths(ev):
            return
        if self.since is None:
            self.since = ts
            self.cache.put(NS, _SINCE, ts)
        if last is _UNKNOWN:
            stored = self.cache.get(NS, uid)
            last = self.last[uid] = float(stored) if stored is not None else None
        if last is not None:
            if ts - last >= LAST_SEEN_STEP:  # refreshed hourly, not per read
                self.last[uid] = ts
                self.cache.put(NS, uid, ts)
            return
        self.last[uid] = ts
        self.cache.put(NS, uid, ts)
        if ts - self.since < self.history:
            return  # still learning who reads
        if self.exempt is not None and self.exempt(uid, ev.user_name):
            return
        self.emit(out, self.finding(
            user_id=uid, user_name=ev.user_name, credential_id=ev.credential_id, start=ts,
            end=ts, dataset=ev.dataset,
            evidence={"path": read_paths(ev)[0], "watching_since": iso(self.since),
                      "event_id": ev.event_id, "action": ev.action},
        ), ("first_seen_principal", uid))
