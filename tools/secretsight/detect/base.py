"""What every detector shares: its identity (name, anomaly class; title and severity from the
anomaly catalogue) and the hooks the `Detectors` driver calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from secretsight import anomalies
from secretsight.config import Config
from secretsight.detect.events import Ev, glob_matcher, iso
from secretsight.detect.state import StateCache
from secretsight.findings import Finding


class Detector:
    name: str = ""
    anomaly: str = ""

    # Seconds of silence of an identity that this detector is about (dormant_identity), set by
    # start(). The driver, which looks the identity up for every event anyway, then calls it
    # only for events that end at least that long a silence, not by kind of event.
    after_silence: float | None = None

    def __init__(self, config: Config, cache: StateCache, claims: dict[int, Finding]) -> None:
        self.config = config
        self.cache = cache
        self._claims = claims

    @property
    def title(self) -> str:
        return anomalies.anomaly(self.anomaly).title

    @property
    def severity(self) -> str:
        return anomalies.anomaly(self.anomaly).severity

    def start(self) -> None:
        """Load whatever must be in memory from the start (pending windows)."""

    def exemptions(self, allowlist: list[str]) -> Callable[[str, str | None], bool] | None:
        """(user.id, user.name) -> exempt? for one anomaly class: its allowlist (on the id or the
        name) or a platform controller (`system_identities`, on the id), as the Sigma rules
        match them. None when both lists are empty (no check per event)."""
        system = self.config.system_identities.kubernetes
        if not allowlist and not system:
            return None
        allowed = glob_matcher(allowlist)
        controller = glob_matcher(system)

        def exempt(uid: str, name: str | None) -> bool:
            return controller(uid) or allowed(uid, name)

        return exempt

    def wants(self, category: str, operation: str | None, effective: bool, final: bool) -> bool:
        """Can `process` do anything for an event of this kind? The driver routes each kind of
        event only to the detectors that want it (most events concern a few detectors), so
        this must be conservative: False only when `process` would surely be a no-op."""
        return True

    def process(self, ev: Ev, out: list[Finding]) -> None:
        """Called only for events whose kind `wants` accepted."""
        raise NotImplementedError

    def advance(self, now: float, out: list[Finding]) -> None:
        """Stream time reached `now`: close the windows that ended before it."""

    def finish(self, now: float | None, out: list[Finding]) -> None:
        """End of a batch (now None: close everything) or a flush at `now`."""

    def tick(self, wall: float, out: list[Finding]) -> None:
        """Wall-clock heartbeat from `watch` (audit_gap only)."""

    def prune(self, now: float) -> None:
        """Forget state that can no longer matter at stream time `now` (bounded memory)."""

    def finding(self, *, user_id: str | None, start: float, end: float,
                evidence: dict[str, Any], user_name: str | None = None,
                dataset: str | None = None, title: str | None = None,
                severity: str | None = None, credential_id: str | None = None) -> Finding:
        return Finding(
            anomaly=self.anomaly,
            rule=f"detector/{self.name}",
            rule_name=self.name,
            title=title or self.title,
            severity=severity or self.severity,
            user_id=user_id,
            user_name=user_name,
            start=iso(start),
            end=iso(end),
            dataset=dataset,
            evidence=evidence,
            credential_id=credential_id,
        )

    def emit(self, out: list[Finding], finding: Finding, claim: tuple[Any, ...] | None = None
             ) -> None:
        """Append a finding; with a claim, it is provisional until the shared store agrees."""
        if claim is not None:
            cid = self.cache.claim(*claim)
            if cid is not None:
                self._claims[cid] = finding
        out.append(finding)
