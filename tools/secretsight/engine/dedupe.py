"""One event per audited request: the sources log the same request several times.

Vault writes a request and a response entry sharing `request.id`; Kubernetes writes up to four
stages sharing `auditID`; CloudTrail may deliver an event twice (S3 and CloudWatch). Counting
entries would double every threshold, so events are deduplicated on (`event.dataset`,
`event.id`), keeping the most informative entry: the Vault response (it carries the outcome and
error), the Kubernetes ResponseComplete (or Panic) stage, otherwise the first seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

_STAGE_RANK = {"ResponseComplete": 3, "Panic": 3, "ResponseStarted": 2, "RequestReceived": 1}


def _get(event: dict[str, Any], dotted: str) -> Any:
    if dotted in event:
        return event[dotted]
    node: Any = event
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def rank(event: dict[str, Any]) -> int:
    entry = _get(event, "vault.entry_type")
    if entry is not None:
        return 2 if entry == "response" else 1
    stage = _get(event, "kubernetes.stage")
    if stage is not None:
        return _STAGE_RANK.get(stage, 0)
    return 0


def dedupe(events: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Events without duplicates, in first-seen order, and how many entries were folded."""
    kept: dict[tuple[Any, Any], dict[str, Any]] = {}
    anonymous: list[tuple[int, dict[str, Any]]] = []
    order: dict[tuple[Any, Any], int] = {}
    folded = 0
    for position, event in enumerate(events):
        event_id = _get(event, "event.id")
        if event_id is None:
            anonymous.append((position, event))
            continue
        key = (_get(event, "event.dataset"), event_id)
        current = kept.get(key)
        if current is None:
            kept[key] = event
            order[key] = position
            continue
        folded += 1
        if rank(event) > rank(current):
            kept[key] = event
    merged = sorted([(order[k], e) for k, e in kept.items()] + anonymous, key=lambda p: p[0])
    return [e for _, e in merged], folded
