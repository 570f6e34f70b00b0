"""rotation_without_deploy: a secret with KNOWN consumers was rotated and none of them rolled
out within `stateful.rotation_deploy_window`.

Consumers of a secret.path come from `config.secret_consumers` (path -> ["ns/deployment"]) and
from what workloads declare: a Deployment update/patch carrying the `secretsight.io/secret-paths`
annotation (normalized to `kubernetes.secret_paths`) is remembered as a consumer of each path.
Rotations of secrets with no known consumer are ignored: without the convention every rotation
would fire (the false-positive trap the design warns about).

A rollout is a Deployment/StatefulSet/DaemonSet update/patch with `kubernetes.restarted_at`, or a
ReplicaSet creation (`<deployment>-<hash>`), in Kubernetes audit events of category `workload`.
"""

from __future__ import annotations

from typing import Any

from secretsight.detect.events import Ev
from secretsight.detect.rotation import PendingWindows, rollout_workload, rotated_path
from secretsight.findings import Finding


class RotationWithoutDeploy(PendingWindows):
    name = "rotation_without_deploy"
    anomaly = "rotation_without_deploy"
    ns = "rotation_deploy"

    def start(self) -> None:
        super().start()
        self.width = self.config.stateful.rotation_deploy_window.total_seconds()
        self.configured = {p: set(ws) for p, ws in self.config.secret_consumers.items()}
        # Learned consumers are few (one entry per annotated path): all in memory.
        self.learned: dict[str, list[str]] = {
            p: ws for p, ws in self.cache.scan("consumers") if ws is not None}

    def consumers(self, path: str) -> set[str]:
        return self.configured.get(path, set()) | set(self.learned.get(path, ()))

    def wants(self, category: str, operation: str | None, effective: bool, final: bool) -> bool:
        return effective and (category == "workload" or (
            category == "secret" and operation != "read" and operation != "list"))

    def process(self, ev: Ev, out: list[Finding]) -> None:
        if ev.category == "secret":
            path = rotated_path(ev)
            if path is not None:
                consumers = self.consumers(path)
                if consumers:
                    self.open(path, ev, self.width, consumers=sorted(consumers))
            return
        workload = rollout_workload(ev)
        if workload is None:
            if ev.category == "workload" and ev.effective:
                self._learn(ev)
            return
        self._learn(ev)
        self.cache.fact_rollout(workload, ev.ts)
        for path, rec in list(self.pending.items()):
            if workload in rec["consumers"] and rec["start"] <= ev.ts <= rec["deadline"]:
                self.satisfied(path)

    def _learn(self, ev: Ev) -> None:
        paths = ev.get("kubernetes.secret_paths")
        ns = ev.get("kubernetes.object_ref.namespace")
        name = ev.get("kubernetes.object_ref.name")
        if not isinstance(paths, list) or not ns or not name:
            return
        if ev.get("kubernetes.object_ref.resource") == "replicasets":
            return
        workload = f"{ns}/{name}"
        for p in paths:
            known = self.learned.get(p, [])
            if workload not in known:
                self.learned[p] = sorted([*known, workload])
                self.cache.put("consumers", p, self.learned[p])

    def fire(self, path: str, rec: dict[str, Any], out: list[Finding]) -> None:
        evidence = self.base_evidence(path, rec)
        evidence["consumers"] = rec["consumers"]
        self.emit(out, self.finding(
            user_id=rec["writer"], user_name=rec["writer_name"],
            credential_id=rec.get("writer_credential"), start=rec["start"],
            end=rec["deadline"], dataset=rec["dataset"], evidence=evidence,
        ), ("rotation_deploy", path, rec["consumers"], rec["start"], rec["deadline"]))
