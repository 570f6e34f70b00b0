"""rotation_without_read: a secret's value was replaced (Vault KV write, PutSecretValue,
RotateSecret/RotationSucceeded, Kubernetes Secret update/patch) and no identity other than the
writer read that secret.path within `stateful.rotation_read_window`. Fires when the window
closes: stream time passes it, or `finish()`."""

from __future__ import annotations

from typing import Any

from secretsight.detect.events import Ev, read_paths
from secretsight.detect.rotation import PendingWindows, rotated_path
from secretsight.findings import Finding


class RotationWithoutRead(PendingWindows):
    name = "rotation_without_read"
    anomaly = "rotation_without_read"
    ns = "rotation_read"

    def start(self) -> None:
        super().start()
        self.width = self.config.stateful.rotation_read_window.total_seconds()
        self.shared = self.cache.store.shared

    def wants(self, category: str, operation: str | None, effective: bool, final: bool) -> bool:
        # an effective read may satisfy a window; a secret write may be a rotation
        return effective and (operation == "read" or (category == "secret"
                                                       and operation != "list"))

    def process(self, ev: Ev, out: list[Finding]) -> None:
        if ev.operation != "read":  # a read is never a rotation (rotated_path)
            path = rotated_path(ev)
            if path is not None:
                self.open(path, ev, self.width)
            return
        if not self.pending and not self.shared:  # nothing a read could satisfy or record
            return
        paths = ev.paths
        for p in paths if paths is not None else read_paths(ev):
            if self.shared and ev.user_id is not None:
                self.cache.fact_read(p, ev.user_id, ev.ts)
            rec = self.pending.get(p)
            if (rec is not None and ev.user_id != rec["writer"]
                    and rec["start"] <= ev.ts <= rec["deadline"]):
                self.satisfied(p)

    def fire(self, path: str, rec: dict[str, Any], out: list[Finding]) -> None:
        self.emit(out, self.finding(
            user_id=rec["writer"], user_name=rec["writer_name"], start=rec["start"],
            end=rec["deadline"], dataset=rec["dataset"], evidence=self.base_evidence(path, rec),
        ), ("rotation_read", path, rec["writer"], rec["start"], rec["deadline"]))
