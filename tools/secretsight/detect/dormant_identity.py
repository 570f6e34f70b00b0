"""dormant_identity: an identity acts again after at least `stateful.dormant_after` of silence
(its previous event of any kind, in event time)."""

from __future__ import annotations

from secretsight.detect.base import Detector
from secretsight.detect.events import Ev, iso
from secretsight.findings import Finding


class DormantIdentity(Detector):
    name = "dormant_identity"
    anomaly = "dormant_identity"
    uses_identity = True

    def start(self) -> None:
        self.after = self.after_silence = self.config.stateful.dormant_after.total_seconds()

    def process(self, ev: Ev, out: list[Finding]) -> None:
        # The driver calls this only after a silence of at least after_silence (see Detector);
        # the check stays for direct callers.
        last = ev.prev_last
        if last is None or ev.ts - last < self.after:
            return
        self.emit(out, self.finding(
            user_id=ev.user_id, user_name=ev.user_name, credential_id=ev.credential_id,
            start=last, end=ev.ts, dataset=ev.dataset,
            evidence={"last_seen": iso(last), "silent_days": round((ev.ts - last) / 86400, 1),
                      "event_id": ev.event_id, "action": ev.action, "path": ev.path},
        ), ("dormant", ev.user_id, ev.ts - self.after))
