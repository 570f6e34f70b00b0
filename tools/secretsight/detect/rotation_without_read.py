"""rotation_without_read: a secret that has consumers had its value replaced (Vault KV write,
PutSecretValue, RotateSecret/RotationSucceeded, Kubernetes Secret update/patch) and no principal
other than the writer read that secret.path within `stateful.rotation_read_window`. Fires when
the window closes: stream time passes it, or `finish()`.

A secret has consumers when a principal other than the writer read it BEFORE the write: a path
a workload writes for itself (a cache, a lease, CI state), or a new secret nobody reads yet, is
not a rotation anyone waits for. Principals are `user.id` (the entity / role / user, not the
token), so a consumer that re-authenticated still counts. The detector remembers the first two
distinct readers of each path (two are enough: one of them is not the writer), at most MAX_PATHS
paths (the oldest forgotten first), in the instance's state.
"""

from __future__ import annotations

from typing import Any

from secretsight.detect.events import Ev, read_paths
from secretsight.detect.rotation import PendingWindows, rotated_path
from secretsight.findings import Finding

MAX_PATHS = 200_000  # bounded memory: paths with known readers


class RotationWithoutRead(PendingWindows):
    name = "rotation_without_read"
    anomaly = "rotation_without_read"
    ns = "rotation_read"
    readers_ns = "rotation_readers"

    def start(self) -> None:
        super().start()
        self.width = self.config.stateful.rotation_read_window.total_seconds()
        self.shared = self.cache.store.shared
        # path -> its one reader (a str) or its first two distinct readers (a list, final); all
        # in memory, loaded once. Stored as a list of one or two.
        self.readers: dict[str, str | list[str]] = {
            p: rs[0] if len(rs) == 1 else list(rs)
            for p, rs in self.cache.scan(self.readers_ns) if rs}

    def wants(self, category: str, operation: str | None, effective: bool, final: bool) -> bool:
        # an effective read may satisfy a window; a secret write may be a rotation
        return effective and (operation == "read" or (category == "secret"
                                                       and operation != "list"))

    def process(self, ev: Ev, out: list[Finding]) -> None:
        if ev.operation != "read":  # a read is never a rotation (rotated_path)
            path = rotated_path(ev)
            if path is not None:
                known = self.readers.get(path)
                both = [known] if known.__class__ is str else known or []
                consumers = [r for r in both if r != ev.user_id]
                if consumers:
                    self.open(path, ev, self.width, consumers=consumers)
            return
        uid = ev.user_id
        paths = ev.paths
        readers, pending = self.readers, self.pending
        for p in paths if paths is not None else read_paths(ev):
            if uid is not None:
                known = readers.get(p)
                # the common cases: two readers known already, or the one known reads again
                if known.__class__ is not list and known != uid:
                    self._remember(p, uid, known)
                if self.shared:
                    self.cache.fact_read(p, uid, ev.ts)
            if pending:
                rec = pending.get(p)
                if (rec is not None and uid != rec["writer"]
                        and rec["start"] <= ev.ts <= rec["deadline"]):
                    self.satisfied(p)

    def _remember(self, path: str, uid: str, known: Any) -> None:
        """A new reader of `path`: its first (`known` None), or its second."""
        if known is None:
            if len(self.readers) >= MAX_PATHS:
                gone = next(iter(self.readers))
                del self.readers[gone]
                self.cache.delete(self.readers_ns, gone)
            self.readers[path] = uid
            self.cache.put(self.readers_ns, path, [uid])
        else:
            both = self.readers[path] = [known, uid]
            self.cache.put(self.readers_ns, path, list(both))

    def fire(self, path: str, rec: dict[str, Any], out: list[Finding]) -> None:
        evidence = self.base_evidence(path, rec)
        evidence["consumers"] = rec.get("consumers", [])  # known when the window opened
        self.emit(out, self.finding(
            user_id=rec["writer"], user_name=rec["writer_name"],
            credential_id=rec.get("writer_credential"), start=rec["start"],
            end=rec["deadline"], dataset=rec["dataset"], evidence=evidence,
        ), ("rotation_read", path, rec["writer"], rec["start"], rec["deadline"]))
