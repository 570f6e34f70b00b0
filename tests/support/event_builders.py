"""Compact builders of normalized events (detector, stream and watch tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

BASE = datetime(2026, 1, 5, 10, 0, 0, tzinfo=UTC)  # a Monday, in business hours


def at(seconds: float = 0, *, days: float = 0, minutes: float = 0) -> str:
    t = BASE + timedelta(days=days, minutes=minutes, seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


_counter = [0]


def ev(ts: str, *, user: str | None = "u1", op: str | None = "read", path: str | None = None,
       dataset: str = "vault.audit", action: str | None = None, category: str = "secret",
       outcome: str = "success", roles: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """A normalized event; `extra` keys are dotted field names."""
    _counter[0] += 1
    e: dict[str, Any] = {
        "@timestamp": ts,
        "event": {"dataset": dataset, "action": action or op or "read", "outcome": outcome,
                  "id": f"ev-{_counter[0]}"},
        "secretsight": {"category": category},
    }
    if user is not None:
        e["user"] = {"id": user, "name": user}
        if roles is not None:
            e["user"]["roles"] = roles
    if category == "secret":
        e["secret"] = {"operation": op}
        if path is not None:
            e["secret"]["path"] = path
    for dotted, value in extra.items():
        put_field(e, dotted, value)
    return e


def put_field(event: dict[str, Any], name: str, value: Any) -> None:
    """Set a field of a nested event by its dotted name (`secret.path`), or with `__` for `.`
    where the name is a Python keyword argument (`secret__path`)."""
    parts = name.split("__") if "__" in name else name.split(".")
    node = event
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def vault_write(ts: str, path: str, user: str = "writer") -> dict[str, Any]:
    return ev(ts, user=user, op="write", action="update", path=path,
              vault__mount_type="kv", vault__entry_type="response")


def reads(start_s: float, n: int, *, every: float = 1.0, user: str = "u1",
          paths: list[str] | None = None, dataset: str = "vault.audit",
          day: float = 0) -> list[dict[str, Any]]:
    paths = paths or ["secret/app/db"]
    return [ev(at(start_s + i * every, days=day), user=user, path=paths[i % len(paths)],
               dataset=dataset, action="GetSecretValue" if dataset == "aws.cloudtrail" else None)
            for i in range(n)]


def baseline_events(user: str = "u1") -> list[dict[str, Any]]:
    return [ev(at(i), user=user, path=p) for i, p in enumerate(("secret/a", "secret/b",
                                                               "secret/c"))]
