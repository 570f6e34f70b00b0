"""path_diversity (incremental, for `watch`): one identity reads many distinct secret paths in
a short window. Vault/Kubernetes: at least `thresholds.path_diversity.distinct_paths` distinct
paths AND at least `.reads` reads within `.window`; Secrets Manager: more than
`thresholds.path_diversity_secretsmanager.distinct` distinct secrets within its window. One
finding per burst (`windows.py`)."""

from __future__ import annotations

from secretsight.detect.base import Detector
from secretsight.detect.events import Ev, glob_matcher, read_paths
from secretsight.detect.state import KeyedState
from secretsight.detect.windows import DistinctWindow
from secretsight.findings import Finding


class PathDiversity(Detector):
    name = "path_diversity"
    anomaly = "path_diversity"
    severity = "high"
    title = "One identity read many distinct secrets"

    def start(self) -> None:
        t = self.config.thresholds
        self.pd = t.path_diversity
        self.sm = t.path_diversity_secretsmanager
        self.allowed = glob_matcher(self.config.allowlists.path_diversity)
        self._allow_cache: dict[str, bool] = {}
        self.windows = KeyedState(self.cache, "path_diversity", DistinctWindow)
        self.pd_width = self.pd.window.total_seconds()
        self.sm_width = self.sm.window.total_seconds()
        # Thresholds as plain attributes: read on every event.
        self.pd_distinct, self.pd_reads = self.pd.distinct_paths, self.pd.reads
        self.sm_distinct = self.sm.distinct

    def wants(self, category: str, operation: str | None, effective: bool, final: bool) -> bool:
        return operation == "read" and effective

    def process(self, ev: Ev, out: list[Finding]) -> None:
        # Only effective reads get here (wants()).
        uid = ev.user_id
        if uid is None:
            return
        paths = ev.paths
        if paths is None:
            paths = read_paths(ev)
        windows = self.windows
        if ev.dataset == "aws.cloudtrail":
            aws = True
            key = f"{uid}\x1faws"
            width = self.sm_width
        else:
            aws = False
            key = uid
            width = self.pd_width
        w = windows.items.get(key)
        if w is None:
            # The allowlist verdict is cached per identity for good, so an identity that has
            # a window is not allowlisted: the check is only needed without one.
            allowed = self._allow_cache.get(uid)
            if allowed is None:
                allowed = self._allow_cache[uid] = self.allowed(uid, ev.user_name)
            if allowed or not paths:
                return
            w = windows.get(key)
        elif not paths:
            return
        windows.dirty.add(key)
        ts = ev.ts
        for path in paths:
            distinct = w.add(ts, path, width)
            hit = (distinct > self.sm_distinct if aws
                   else distinct >= self.pd_distinct and len(w.times) >= self.pd_reads)
            if not hit:
                if w.fired:
                    w.fired = False
            elif not w.fired:
                reads = len(w.times)
                w.fired = True
                self.emit(out, self.finding(
                    user_id=uid, user_name=ev.user_name, start=w.times[0], end=ev.ts,
                    dataset=ev.dataset,
                    evidence={"reads": reads, "distinct_paths": distinct,
                              "window_seconds": int(width),
                              "sample_paths": sorted(w.counts)[:5]},
                ))

    def prune(self, now: float) -> None:
        windows = self.windows
        width = max(self.pd_width, self.sm_width)
        for key in [k for k, w in windows.items.items()
                    if not w.times or w.times[-1] < now - width]:
            windows.drop(key)
