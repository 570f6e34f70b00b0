"""path_diversity (incremental, for `watch`): one identity reads many distinct secret paths in
a short window. Vault/Kubernetes: at least `thresholds.path_diversity.distinct_paths` distinct
paths AND at least `.reads` reads within `.window`; Secrets Manager: more than
`thresholds.path_diversity_secretsmanager.distinct` distinct secrets within its window. One
finding per burst (`windows.py`)."""

from __future__ import annotations

from secretsight.detect.base import Detector
from secretsight.detect.events import Ev, read_paths
from secretsight.detect.state import IdentityState, KeyedState
from secretsight.detect.windows import DistinctWindow
from secretsight.findings import Finding

AWS_SUFFIX = "\x1faws"  # window key of an identity's Secrets Manager reads: uid + this


class PathDiversity(Detector):
    name = "path_diversity"
    anomaly = "path_diversity"

    def start(self) -> None:
        t = self.config.thresholds
        pd, sm = t.path_diversity, t.path_diversity_secretsmanager
        self.allowed = self.exemptions(self.config.allowlists.path_diversity)
        self._allow_cache: dict[str, bool] = {}
        self.windows = KeyedState(self.cache, "path_diversity", DistinctWindow)
        self.pd_width = pd.window.total_seconds()
        self.sm_width = sm.window.total_seconds()
        # (width, reads needed, distinct paths needed) per kind, unpacked on every read.
        # Secrets Manager: "more than N distinct" needs N + 1 of each (a distinct path is read).
        self.vault_rule = (self.pd_width, pd.reads, pd.distinct_paths)
        self.aws_rule = (self.sm_width, sm.distinct + 1, sm.distinct + 1)

    def wants(self, category: str, operation: str | None, effective: bool, final: bool) -> bool:
        return operation == "read" and effective

    def process(self, ev: Ev, out: list[Finding]) -> None:
        # Only effective reads get here (wants()).
        uid = ev.user_id
        paths = ev.paths
        if paths is None:
            paths = read_paths(ev)
        if uid is None or not paths:
            return
        rec = ev.ident
        if ev.dataset == "aws.cloudtrail":
            key = f"{uid}{AWS_SUFFIX}"
            w = rec.pd_aws if rec is not None else None
            width, need_reads, need_distinct = self.aws_rule
        else:
            key = uid
            w = rec.pd if rec is not None else None
            width, need_reads, need_distinct = self.vault_rule
        if w is None:
            w = self._window(key, uid, ev.user_name, rec)
            if w is None:
                return  # allowlisted
        self.windows.dirty.add(key)
        ts = ev.ts
        for path in paths:
            reads = w.add_path(ts, path, width)
            # The read count and the paths remembered (stale ones included) bound the distinct
            # count: distinct paths (the costlier figure) are counted only once both are enough
            # for a burst.
            if (reads >= need_reads and len(w.last) >= need_distinct
                    and w.distinct(ts - width) >= need_distinct):
                if not w.fired:
                    self.fire(ev, w, reads, width, out)
            elif w.fired:
                w.fired = False

    def fire(self, ev: Ev, w: DistinctWindow, reads: int, width: float,
             out: list[Finding]) -> None:
        """A burst starts (also called by `fused.read_route`)."""
        w.fired = True
        self.emit(out, self.finding(
            user_id=ev.user_id, user_name=ev.user_name, start=w.first(), end=ev.ts,
            credential_id=ev.credential_id,
            dataset=ev.dataset,
            evidence={"reads": reads, "distinct_paths": len(w.last),
                      "window_seconds": int(width), "sample_paths": sorted(w.last)[:5]},
        ))

    def _window(self, key: str, uid: str, name: str | None,
                rec: IdentityState | None) -> DistinctWindow | None:
        """The window of `key` when the identity's record has no shortcut to it yet; None
        when the identity is allowlisted."""
        windows = self.windows
        w = windows.items.get(key)
        if w is None:
            # The allowlist verdict is cached per identity for good, so an identity that has a
            # window is not allowlisted: the check is only needed without one.
            allowed = self._allow_cache.get(uid)
            if allowed is None:
                allowed = self._allow_cache[uid] = (
                    self.allowed is not None and self.allowed(uid, name))
            if allowed:
                return None
            w = windows.get(key)
        if rec is not None:
            if key is uid:
                rec.pd = w
            else:
                rec.pd_aws = w
        return w

    def prune(self, now: float) -> None:
        windows = self.windows
        width = max(self.pd_width, self.sm_width)
        for key in [k for k, w in windows.items.items()
                    if (newest := w.newest()) is None or newest < now - width]:
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
