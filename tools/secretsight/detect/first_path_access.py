"""first_path_access: an identity with an established baseline reads a path it never read.

Baseline: seen for at least `learning_period` (since its first event of any kind) and at least
`min_history` distinct paths known. Before that, paths are learned silently. History never
expires with time (a sleeping identity keeps it); memory is bounded by
`max_paths_per_identity` with least-recently-seen eviction, to within an hour (see
`state.StateCache.see_path`), so a path read again after being evicted looks new once: the
price of the bound.
"""

from __future__ import annotations

from collections.abc import Callable

from secretsight.detect.base import Detector
from secretsight.detect.events import Ev, iso, read_paths
from secretsight.detect.state import LAST_SEEN_STEP, IdentityState
from secretsight.findings import Finding


class FirstPathAccess(Detector):
    name = "first_path_access"
    anomaly = "first_path_access"
    uses_identity = True

    def start(self) -> None:
        cfg = self.config.stateful.first_path_access
        self.learning = cfg.learning_period.total_seconds()
        self.min_history = cfg.min_history
        # None: nothing is exempt (empty allowlist and system_identities), no check per event
        self.allowed = self.exemptions(self.config.allowlists.first_path_access)
        # uid -> (user_name, allowed): the name rarely changes, no tuple key per event
        self._allow_cache: dict[str, tuple[str | None, bool]] = {}

    def wants(self, category: str, operation: str | None, effective: bool, final: bool) -> bool:
        return operation == "read" and effective

    def _allowlisted(self, allowed: Callable[..., bool], uid: str, name: str | None,
                     rec: IdentityState | None) -> bool:
        hit = rec.fpa_allow if rec is not None else self._allow_cache.get(uid)
        if hit is None or hit[0] != name:
            hit = self._allow_cache[uid] = (name, allowed(uid, name))
            if rec is not None:
                rec.fpa_allow = hit
        return hit[1]

    def process(self, ev: Ev, out: list[Finding]) -> None:
        # Only effective reads get here (wants()).
        uid = ev.user_id
        if uid is None:
            return
        paths = ev.paths
        if paths is None:
            paths = read_paths(ev)
        if not paths:
            return
        rec = ev.ident
        ts = ev.ts
        cache = self.cache
        od = rec.paths if rec is not None else None
        if od is None:
            od = cache.paths.get(uid)
            if od is not None and rec is not None:
                rec.paths = od  # the same dict for good: StateCache never replaces it
        if len(paths) == 1 and od is not None:
            # The common case, inline: a known path read again within LAST_SEEN_STEP changes
            # nothing (what see_path does, without the call).
            old = od.get(paths[0])
            if old is not None and ts - old < LAST_SEEN_STEP:
                return
        # After the fast path: an exempt identity never has known paths (it returns here before
        # any is recorded), so its reads never take the fast path and are all checked.
        allowed = self.allowed
        if allowed is not None and self._allowlisted(allowed, uid, ev.user_name, rec):
            return
        first = ev.prev_first if ev.prev_first is not None else ts
        established = ts - first >= self.learning
        for path in paths:
            od = cache.paths.get(uid)
            known = len(od if od is not None else cache.known_paths(uid))
            if cache.see_path(uid, path, ts) and established and known >= self.min_history:
                self.emit(out, self.finding(
                    user_id=uid, user_name=ev.user_name, credential_id=ev.credential_id,
                    start=ev.ts, end=ev.ts,
                    dataset=ev.dataset,
                    evidence={"path": path, "known_paths": known, "first_seen": iso(first),
                              "event_id": ev.event_id, "action": ev.action},
                ), ("first_path", uid, path))
