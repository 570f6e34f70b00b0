"""first_path_access: an identity with an established baseline reads a path it never read.

Baseline: seen for at least `learning_period` (since its first event of any kind) and at least
`min_history` distinct paths known. Before that, paths are learned silently. History never
expires with time (a sleeping identity keeps it); memory is bounded by
`max_paths_per_identity` with least-recently-seen eviction (see `state.StateCache.see_path`),
so a path read again after being evicted looks new once: the price of the bound.
"""

from __future__ import annotations

from secretsight.detect.base import Detector
from secretsight.detect.events import Ev, glob_matcher, iso, read_paths
from secretsight.findings import Finding


class FirstPathAccess(Detector):
    name = "first_path_access"
    anomaly = "first_path_access"
    severity = "medium"
    title = "Identity read a secret path it has never read before"
    uses_identity = True

    def start(self) -> None:
        cfg = self.config.stateful.first_path_access
        self.learning = cfg.learning_period.total_seconds()
        self.min_history = cfg.min_history
        self.allowed = glob_matcher(self.config.allowlists.first_path_access)
        self._allow_cache: dict[tuple[str, str | None], bool] = {}

    def process(self, ev: Ev, out: list[Finding]) -> None:
        uid = ev.user_id
        if uid is None or ev.operation != "read" or not ev.effective:
            return
        paths = read_paths(ev)
        if not paths:
            return
        key = (uid, ev.user_name)
        allowed = self._allow_cache.get(key)
        if allowed is None:
            allowed = self._allow_cache[key] = self.allowed(uid, ev.user_name)
        if allowed:
            return
        first = ev.prev_first if ev.prev_first is not None else ev.ts
        established = ev.ts - first >= self.learning
        cache = self.cache
        for path in paths:
            od = cache.paths.get(uid)
            known = len(od if od is not None else cache.known_paths(uid))
            if cache.see_path(uid, path, ev.ts) and established and known >= self.min_history:
                self.emit(out, self.finding(
                    user_id=uid, user_name=ev.user_name, start=ev.ts, end=ev.ts,
                    dataset=ev.dataset,
                    evidence={"path": path, "known_paths": known, "first_seen": iso(first),
                              "event_id": ev.event_id, "action": ev.action},
                ), ("first_path", uid, path))
