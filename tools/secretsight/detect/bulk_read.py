"""bulk_read (incremental, for `watch`): more than `thresholds.bulk_read.count` read/list
operations by one identity within `thresholds.bulk_read.window`. One finding per burst
(`windows.py`)."""

from __future__ import annotations

from secretsight.detect.base import Detector
from secretsight.detect.events import Ev
from secretsight.detect.state import KeyedState
from secretsight.detect.windows import CountWindow
from secretsight.findings import Finding


class BulkRead(Detector):
    name = "bulk_read"
    anomaly = "bulk_read"

    def start(self) -> None:
        t = self.config.thresholds.bulk_read
        self.count = t.count
        self.width = t.window.total_seconds()
        self.allowed = self.exemptions(self.config.allowlists.bulk_read)
        self._allow_cache: dict[str, bool] = {}
        self.windows = KeyedState(self.cache, "bulk_read", CountWindow)

    def wants(self, category: str, operation: str | None, effective: bool, final: bool) -> bool:
        return effective and operation in ("read", "list")

    def process(self, ev: Ev, out: list[Finding]) -> None:
        # Routing sends only effective reads/lists (wants()); the check is repeated because a
        # denied read must never count, whoever calls (unrouted drivers, tests).
        uid = ev.user_id
        if uid is None or not ev.effective or (ev.operation != "read"
                                               and ev.operation != "list"):
            return
        windows = self.windows
        rec = ev.ident
        w = rec.bulk if rec is not None else None
        if w is None:
            w = windows.items.get(uid)
            if w is None:
                # The allowlist verdict is cached per identity for good, so an identity that
                # has a window is not allowlisted: the check is only needed without one.
                allowed = self._allow_cache.get(uid)
                if allowed is None:
                    allowed = self._allow_cache[uid] = (
                        self.allowed is not None and self.allowed(uid, ev.user_name))
                if allowed:
                    return
                w = windows.get(uid)
            if rec is not None:
                rec.bulk = w
        n = w.add(ev.ts, self.width)
        windows.dirty.add(uid)
        if n <= self.count:
            if w.fired:
                w.fired = False
        elif not w.fired:
            self.fire(ev, w, n, out)

    def fire(self, ev: Ev, w: CountWindow, n: int, out: list[Finding]) -> None:
        """A burst starts: `n` reads in the window (also called by `fused.read_route`)."""
        w.fired = True
        self.emit(out, self.finding(
            user_id=ev.user_id, user_name=ev.user_name, start=w.first(), end=ev.ts,
            credential_id=ev.credential_id,
            dataset=ev.dataset,
            evidence={"reads": n, "threshold": self.count, "window_seconds": int(self.width),
                      "last_path": ev.path},
        ))

    def prune(self, now: float) -> None:
        windows = self.windows
        for uid in [u for u, w in windows.items.items()
                    if (newest := w.newest()) is None or newest < now - self.width]:
            windows.drop(uid)
            rec = self.cache.identities.get(uid)
            if rec is not None:
                rec.bulk = None
