"""new_user_agent: a principal with an established baseline reads, lists or describes secrets
with a user agent it never used.

Compared by FAMILY, not the raw string: the product names of the first tokens, versions and
build ids dropped (`aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0` -> `aws-cli python linux`), so an
SDK or kubectl upgrade is not news while a workload that always used its SDK suddenly calling
with curl, python-requests or another tool is. Baseline: the principal (`user.id`) was first
seen at least `stateful.user_agent_learning_period` (14d) ago and has at least one known
family. Memory: at most `stateful.max_user_agents_per_principal` families per principal, least
recently seen dropped (refreshed hourly). Events without a user agent (Vault audit devices that
HMAC the header) are ignored.
"""

from __future__ import annotations

import re

from secretsight.detect.base import Detector
from secretsight.detect.events import Ev, iso
from secretsight.detect.state import LAST_SEEN_STEP
from secretsight.findings import Finding

NS = "user_agents"
_TOKENS = 4  # product tokens that make a family (the rest are platform details)
_NOT_NAME = re.compile(r"[^a-z_-]+")


def ua_family(user_agent: str) -> str:
    """The product names of a user agent's first tokens, lower-cased, versions dropped."""
    names = []
    for token in user_agent.split()[:_TOKENS]:
        name = _NOT_NAME.sub("", token.split("/", 1)[0].lower()).strip("-_")
        if name:
            names.append(name)
    return " ".join(names) or user_agent.strip().lower()[:64]


class NewUserAgent(Detector):
    name = "new_user_agent"
    anomaly = "new_user_agent"
    uses_identity = True

    def start(self) -> None:
        s = self.config.stateful
        self.learning = s.user_agent_learning_period.total_seconds()
        self.keep = s.max_user_agents_per_principal
        self.exempt = self.exemptions(self.config.allowlists.new_user_agent)
        # principal -> {family: last seen}, least recently seen first (loaded on first touch)
        self.known: dict[str, dict[str, float]] = {}
        self._families: dict[str, str] = {}  # raw user agent -> family (bounded below)
        # principal -> (the raw agent it used last, when its family was last refreshed)
        self._last: dict[str, tuple[str, float]] = {}

    def wants(self, category: str, operation: str | None, effective: bool, final: bool) -> bool:
        return category == "secret" and effective and operation in ("read", "list", "describe")

    def process(self, ev: Ev, out: list[Finding]) -> None:
        uid = ev.user_id
        if uid is None or not ev.effective or ev.category != "secret" or ev.operation not in (
                "read", "list", "describe"):  # what wants() routes; checked for direct callers
            return
        ua = ev.raw.get("user_agent")
        agent = ua.get("original") if ua.__class__ is dict else None
        if agent.__class__ is not str or not agent:
            return
        ts = ev.ts
        # The common case, without a lookup of the family: the principal uses the agent it used
        # last, seen less than LAST_SEEN_STEP ago (nothing to refresh).
        last = self._last.get(uid)
        if last is not None and last[0] == agent and ts - last[1] < LAST_SEEN_STEP:
            return
        family = self._families.get(agent)
        if family is None:
            if len(self._families) > 10_000:
                self._families.clear()
            family = self._families[agent] = ua_family(agent)
        known = self.known.get(uid)
        if known is None:
            stored = self.cache.get(NS, uid)
            # stored as [family, last seen] pairs: the LRU order survives a restart
            known = self.known[uid] = {str(f): float(t) for f, t in stored or ()}
        seen = known.get(family)
        if seen is not None:
            if ts - seen >= LAST_SEEN_STEP:  # LRU order refreshed hourly
                del known[family]
                known[family] = seen = ts
                self._store(uid, known)
            self._last[uid] = (agent, seen)
            return
        first = ev.prev_first if ev.prev_first is not None else ts
        established = bool(known) and ts - first >= self.learning
        known[family] = ts
        self._last[uid] = (agent, ts)
        while len(known) > self.keep:
            del known[next(iter(known))]
        self._store(uid, known)
        if not established:
            return
        if self.exempt is not None and self.exempt(uid, ev.user_name):
            return
        self.emit(out, self.finding(
            user_id=uid, user_name=ev.user_name, credential_id=ev.credential_id, start=ts,
            end=ts, dataset=ev.dataset,
            evidence={"user_agent": agent, "family": family,
                      "known_families": sorted(f for f in known if f != family)[:5],
                      "first_seen": iso(first), "event_id": ev.event_id, "action": ev.action,
                      "path": ev.path},
        ), ("new_user_agent", uid, family))

    def _store(self, uid: str, known: dict[str, float]) -> None:
        self.cache.put(NS, uid, [[f, t] for f, t in known.items()])
