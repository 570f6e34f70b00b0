"""What a finding says about its events, accumulated one event at a time.

The engine builds a finding from the rows of a burst (`engine/evaluate.py` `_finding`): counts,
distinct paths, sorted samples, actions, the first event ids, the most common user name and
the identity as the events spell it. `Evidence` folds the same rows in the same order
(`@timestamp`, then arrival) and gives the same `Finding`, without keeping the rows: a burst
that lasts all day costs its distinct paths and addresses, not its events.

Bound: distinct paths and addresses are kept up to MAX_DISTINCT each (the engine reports a
count and the 10 smallest); past it `distinct_paths` saturates and `evidence.truncated` says so.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from secretsight.findings import Finding

SAMPLE = 10  # = engine.evaluate._SAMPLE (a test keeps them equal)
MAX_DISTINCT = 50_000

# One event's evidence columns (engine.evaluate._EVIDENCE_COLUMNS, as text like the table).
Row = tuple[Any, ...]  # (@timestamp, user.id, user.name, credential.id, event.dataset,
#                        event.id, event.action, secret.path, source.ip)


class Evidence:
    __slots__ = ("actions", "credentials", "datasets", "end", "events", "ids", "ips", "names",
                 "paths", "principals", "spelled", "start", "truncated")

    def __init__(self) -> None:
        self.events = 0
        self.start: str | None = None
        self.end: str | None = None
        self.paths: set[str] = set()
        self.ips: set[str] = set()
        self.actions: Counter[str] = Counter()
        self.ids: list[str] = []
        self.names: Counter[str] = Counter()
        self.credentials: Counter[str] = Counter()
        self.principals: Counter[str] = Counter()  # user.id (a finding grouped by credential)
        self.datasets: set[str] = set()
        # spellings of each group-by value: field -> Counter (see engine `_original_case`)
        self.spelled: dict[str, Counter[str]] = {}
        self.truncated = False

    def add(self, row: Row, spell: tuple[tuple[str, int, str], ...] = ()) -> None:
        stamp, uid, name, credential, dataset, eid, action, path, ip = row
        self.events += 1
        if stamp is not None:
            if self.start is None:
                self.start = stamp
            self.end = stamp
        if path is not None and path not in self.paths:
            if len(self.paths) < MAX_DISTINCT:
                self.paths.add(path)
            else:
                self.truncated = True
        if ip is not None and ip not in self.ips:
            if len(self.ips) < MAX_DISTINCT:
                self.ips.add(ip)
            else:
                self.truncated = True
        if action is not None:
            self.actions[action] += 1
        if eid is not None and len(self.ids) < 5:
            self.ids.append(eid)
        if name is not None:
            self.names[name] += 1
        if credential is not None:
            self.credentials[credential] += 1
        if uid is not None:
            self.principals[uid] += 1
        if dataset is not None:
            self.datasets.add(dataset)
        for field, col, value in spell:
            spelled = row[col]
            if isinstance(spelled, str) and spelled.lower() == value:
                self.spelled.setdefault(field, Counter())[spelled] += 1

    def finding(self, meta: Any, user: Any, extra: dict[str, Any],
                credential: str | None = None) -> Finding:
        """`credential`: the group's (grouped by credential.id), else the most named one."""
        evidence: dict[str, Any] = {
            "events": self.events,
            "distinct_paths": len(self.paths),
            "paths": sorted(self.paths)[:SAMPLE],
            "source_ips": sorted(self.ips)[:SAMPLE],
            "actions": dict(sorted(self.actions.items())),
            "event_ids": list(self.ids),
            **extra,
        }
        if self.truncated:
            evidence["truncated"] = True
        datasets = sorted(self.datasets)
        return Finding(
            anomaly=meta.anomaly, rule=meta.id, rule_name=meta.name, title=meta.title,
            severity=meta.severity, user_id=user,
            user_name=self.names.most_common(1)[0][0] if self.names else None,
            start=self.start or "", end=self.end or "",
            dataset=datasets[0] if len(datasets) == 1 else None, evidence=evidence,
            credential_id=credential or (
                self.credentials.most_common(1)[0][0] if self.credentials else None),
        )

    def principal(self) -> str | None:
        """The user.id most of the events name (a finding grouped by credential names it)."""
        return self.principals.most_common(1)[0][0] if self.principals else None

    def original_case(self, group: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for name, value in group.items():
            spelled = self.spelled.get(name)
            if spelled:
                value = spelled.most_common(1)[0][0]
            out[name] = value
        return out

    # ---- persistence (JSON; Counter order kept: it breaks most_common ties as the engine)
    def to_state(self) -> list[Any]:
        return [self.events, self.start, self.end, sorted(self.paths), sorted(self.ips),
                list(self.actions.items()), self.ids, list(self.names.items()),
                sorted(self.datasets),
                {k: list(v.items()) for k, v in self.spelled.items()}, self.truncated,
                list(self.credentials.items()), list(self.principals.items())]

    @classmethod
    def from_state(cls, data: list[Any]) -> Evidence:
        ev = cls()
        (ev.events, ev.start, ev.end, paths, ips, actions, ev.ids, names, datasets, spelled,
         ev.truncated, credentials, principals) = data
        ev.credentials = Counter(dict(credentials))
        ev.principals = Counter(dict(principals))
        ev.paths, ev.ips, ev.datasets = set(paths), set(ips), set(datasets)
        ev.actions = Counter(dict(actions))
        ev.names = Counter(dict(names))
        ev.spelled = {k: Counter(dict(v)) for k, v in spelled.items()}
        return ev
