"""admin_off_hours: an admin/root identity acts outside every configured maintenance window.

Admin: a Vault policy in `admin_identities.vault_policies` among `user.roles` (or
`vault.token_policies`); AWS `aws.identity_type` Root, or `user.id` / session issuer matching
`admin_identities.aws_arns`; a Kubernetes group in `admin_identities.kubernetes_groups`.
Windows follow Alertmanager `time_intervals` (see `maintenance.py`).

One finding per identity per contiguous off-hours burst: the burst ends when the identity acts
inside a window, or after BURST_GAP without off-hours admin activity.
"""

from __future__ import annotations

from secretsight.detect.base import Detector
from secretsight.detect.events import Ev, glob_matcher
from secretsight.detect.maintenance import MaintenanceCalendar
from secretsight.findings import Finding

BURST_GAP = 3600.0
_EMPTY: dict = {}


class AdminOffHours(Detector):
    name = "admin_off_hours"
    anomaly = "admin_off_hours"

    def start(self) -> None:
        adm = self.config.admin_identities
        self.vault_policies = set(adm.vault_policies)
        self.k8s_groups = set(adm.kubernetes_groups)
        self.aws_admin = glob_matcher(adm.aws_arns) if adm.aws_arns else None
        self.calendar = MaintenanceCalendar(self.config.maintenance_windows)
        self._arn_cache: dict[tuple[str | None, str | None], bool] = {}

    def admin_reason(self, ev: Ev) -> str | None:
        # Runs for every final event with an identity: cheap set tests first, and .get for the
        # optional parts (a caught KeyError costs more than several .get calls).
        ds = ev.dataset
        raw = ev.raw
        if ds == "vault.audit" or ds == "kubernetes.audit":
            user = raw.get("user")
            roles = user.get("roles") if user.__class__ is dict else None
            if ds == "kubernetes.audit":
                if roles and not self.k8s_groups.isdisjoint(roles):
                    return f"kubernetes group {min(self.k8s_groups.intersection(roles))}"
                return None
            if roles and not self.vault_policies.isdisjoint(roles):
                return f"vault policy {min(self.vault_policies.intersection(roles))}"
            vault = raw.get("vault")
            tokens = vault.get("token_policies") if vault.__class__ is dict else None
            if tokens and not self.vault_policies.isdisjoint(tokens):
                return f"vault policy {min(self.vault_policies.intersection(tokens))}"
            return None
        if ds == "aws.cloudtrail":
            aws = raw.get("aws") or _EMPTY
            if aws.get("identity_type") == "Root":
                return "aws root"
            if self.aws_admin is None:  # no ARN configured (the default)
                return None
            key = (ev.user_id, aws.get("session_issuer_arn"))
            hit = self._arn_cache.get(key)
            if hit is None:
                if len(self._arn_cache) > 100_000:
                    self._arn_cache.clear()
                hit = self._arn_cache[key] = self.aws_admin(*key)
            return "configured aws arn" if hit else None
        return None

    def wants(self, category: str, operation: str | None, effective: bool, final: bool) -> bool:
        return final

    def process(self, ev: Ev, out: list[Finding]) -> None:
        uid = ev.user_id
        if uid is None or not ev.final:
            return
        reason = self.admin_reason(ev)
        if reason is None:
            return
        if self.calendar.window_at(ev.ts) is not None:
            if self.cache.get("off_hours", uid) is not None:
                self.cache.delete("off_hours", uid)
            return
        last = self.cache.get("off_hours", uid)
        self.cache.put("off_hours", uid, ev.ts)
        if last is not None and ev.ts - last <= BURST_GAP:
            return
        self.emit(out, self.finding(
            user_id=uid, user_name=ev.user_name, credential_id=ev.credential_id, start=ev.ts,
            end=ev.ts, dataset=ev.dataset,
            evidence={"admin": reason, "action": ev.action, "path": ev.path,
                      "event_id": ev.event_id, "outcome": ev.outcome},
        ))
