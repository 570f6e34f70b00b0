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

    def process(self, ev: Ev, out: list[Finding]) -> None:
        uid = ev.user_id
        if uid is None or ev.operation != "read" or not ev.effective:
            return
        allowed = self._allow_cache.get(uid)
        if allowed is None:
            allowed = self._allow_cache[uid] = self.allowed(uid, ev.user_name)
        if allowed:
            return
        paths = read_paths(ev)
        if not paths:
            return
        aws = ev.dataset == "aws.cloudtrail"
        key = f"{uid}\x1faws" if aws else uid
        width = self.sm_width if aws else self.pd_width
        windows = self.windows
        w = windows.items.get(key) or windows.get(key)
        windows.dirty.add(key)
        for path in paths:
            reads, distinct = w.add(ev.ts, path, width)
            hit = (distinct > self.sm.distinct if aws
                   else distinct >= self.pd.distinct_paths and reads >= self.pd.reads)
            if not hit:
                w.fired = False
            elif not w.fired:
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
