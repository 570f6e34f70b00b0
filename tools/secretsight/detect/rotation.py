"""Which events are secret rotations and which are workload rollouts (shared by the two
rotation detectors), and the pending-window bookkeeping they share."""

from __future__ import annotations

import heapq
from typing import Any

from secretsight.detect.base import Detector
from secretsight.detect.events import Ev, iso
from secretsight.findings import Finding

_AWS_ROTATIONS = {"PutSecretValue", "RotateSecret", "RotationSucceeded"}
_VAULT_WRITES = {"create", "update", "patch"}
_K8S_WRITES = {"update", "patch"}
_WORKLOADS = {"deployments", "statefulsets", "daemonsets"}


def rotated_path(ev: Ev) -> str | None:
    """The secret.path a successful write/rotation replaced the value of, else None."""
    if ev.operation == "read" or ev.operation == "list":  # the common case, decided at once
        return None
    return _rotated_path(ev)


def _rotated_path(ev: Ev) -> str | None:
    if ev.category != "secret" or not ev.effective or ev.path is None or "*" in ev.path:
        return None
    if ev.dataset == "vault.audit":
        if ev.operation != "write" or ev.action not in _VAULT_WRITES:
            return None
        # A write on a KV mount (v1 or v2); `undelete/` is a write that stores no new value.
        mount = ev.get("vault.mount_type")
        raw = ev.get("vault.path") or ""
        if mount not in (None, "kv") or "/undelete/" in raw:
            return None
        return ev.path
    if ev.dataset == "aws.cloudtrail":
        return ev.path if ev.action in _AWS_ROTATIONS else None
    if ev.dataset == "kubernetes.audit":
        return ev.path if ev.operation == "write" and ev.action in _K8S_WRITES else None
    return None


def rollout_workload(ev: Ev) -> str | None:
    """`namespace/name` of the workload a successful rollout event restarted, else None:
    a Deployment (StatefulSet, DaemonSet) patch/update carrying a restartedAt annotation, or the
    creation of a ReplicaSet (`<deployment>-<pod-template-hash>`)."""
    if ev.category != "workload" or not ev.effective or ev.dataset != "kubernetes.audit":
        return None
    resource = ev.get("kubernetes.object_ref.resource")
    ns = ev.get("kubernetes.object_ref.namespace")
    name = ev.get("kubernetes.object_ref.name")
    if not ns or not name:
        return None
    if resource in _WORKLOADS and ev.action in ("update", "patch"):
        return f"{ns}/{name}" if ev.get("kubernetes.restarted_at") else None
    if resource == "replicasets" and ev.action == "create":
        base, _, suffix = name.rpartition("-")
        return f"{ns}/{base}" if base and suffix else None
    return None


class PendingWindows(Detector):
    """Rotations waiting for their confirming event; they close when stream time passes their
    deadline (or at finish). One pending rotation per path: a new write restarts the window."""

    ns = ""

    def start(self) -> None:
        # Every pending rotation is in memory (loaded once here), so a read of a path with no
        # pending rotation costs one dict lookup and no store access.
        self.heap: list[tuple[float, str]] = []
        self.pending: dict[str, dict[str, Any]] = {}
        for path, rec in self.cache.scan(self.ns):
            if rec is not None:
                self.pending[path] = rec
                heapq.heappush(self.heap, (rec["deadline"], path))
                self.cache.due = min(self.cache.due, rec["deadline"])

    def open(self, path: str, ev: Ev, width: float, **extra: Any) -> None:
        prev = self.pending.get(path)
        rec = {
            "start": ev.ts, "deadline": ev.ts + width, "writer": ev.user_id,
            "writer_name": ev.user_name, "writer_credential": ev.credential_id,
            "event_id": ev.event_id, "action": ev.action,
            "dataset": ev.dataset, "writes": (prev["writes"] + 1) if prev else 1, **extra,
        }
        self.pending[path] = rec
        self.cache.put(self.ns, path, rec)
        heapq.heappush(self.heap, (rec["deadline"], path))
        self.cache.due = min(self.cache.due, rec["deadline"])

    def advance(self, now: float, out: list[Finding]) -> None:
        heap = self.heap
        while heap and heap[0][0] < now:
            self._close(heapq.heappop(heap), out)

    def finish(self, now: float | None, out: list[Finding]) -> None:
        heap = self.heap
        while heap and (now is None or heap[0][0] <= now):
            self._close(heapq.heappop(heap), out)

    def _close(self, item: tuple[float, str], out: list[Finding]) -> None:
        deadline, path = item
        rec = self.pending.get(path)
        if rec is None or rec["deadline"] != deadline:
            return  # satisfied, or superseded by a later write (lazy heap deletion)
        self.satisfied(path)
        self.fire(path, rec, out)

    def satisfied(self, path: str) -> None:
        del self.pending[path]
        self.cache.delete(self.ns, path)

    def fire(self, path: str, rec: dict[str, Any], out: list[Finding]) -> None:
        raise NotImplementedError

    def base_evidence(self, path: str, rec: dict[str, Any]) -> dict[str, Any]:
        return {"path": path, "rotation_time": iso(rec["start"]), "action": rec["action"],
                "event_id": rec["event_id"], "writes": rec["writes"],
                "window_seconds": int(rec["deadline"] - rec["start"])}
