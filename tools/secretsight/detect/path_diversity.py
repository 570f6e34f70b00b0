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

AWS_SUFFIX = "\x1faws"  # window key of an identity's Secrets Manager reads: uid + this


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
        rec = ev.ident
        aws = ev.dataset == "aws.cloudtrail"
        if aws:
            key = f"{uid}{AWS_SUFFIX}"
            width = self.sm_width
            w = rec.pd_aws if rec is not None else None
        else:
            key = uid
            width = self.pd_width
            w = rec.pd if rec is not None else None
        if w is None:
            w = windows.items.get(key)
            if w is None:
                # The allowlist verdict is cached per identity for good, so an identity that
                # has a window is not allowlisted: the check is only needed without one.
                allowed = self._allow_cache.get(uid)
                if allowed is None:
                    allowed = self._allow_cache[uid] = self.allowed(uid, ev.user_name)
                if allowed or not paths:
                    return
                w = windows.get(key)
            if rec is not None:
                if aws:
                    rec.pd_aws = w
                else:
                    rec.pd = w
        if not paths:
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
            self._forget_shortcuts(key)

    def _forget_shortcuts(self, key: str) -> None:
        """A dropped window must not stay reachable from an identity record (its updates
        would never be committed). A key may be a uid (Vault/Kubernetes window) and, when it
        ends with AWS_SUFFIX, also another uid's Secrets Manager window: clear both."""
        identities = self.cache.identities
        rec = identities.get(key)
        if rec is not None:
            rec.pd = None
        if key.endswith(AWS_SUFFIX):
            rec = identities.get(key[:-len(AWS_SUFFIX)])
            if rec is not None:
                rec.pd_aws = None
