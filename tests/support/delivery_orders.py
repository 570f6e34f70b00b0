"""Ways of delivering one event set to the stream: in time order, and shuffled within the
allowed lateness (each event overtaken only by events at most `lateness` newer)."""

from __future__ import annotations

import random
from typing import Any

from secretsight.engine.table import parse_zoned_ts as parse_ts


def in_time_order(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=lambda e: parse_ts(e.get("@timestamp")) or 0.0)


def jittered(events: list[dict[str, Any]], lateness: float, seed: int) -> list[dict[str, Any]]:
    """Every event delayed by a random fraction of `lateness`: when it arrives, no event seen
    before it is more than 0.9 x lateness newer (inside the watermark's allowance)."""
    rng = random.Random(seed)
    keyed = [((parse_ts(e.get("@timestamp")) or 0.0) + rng.uniform(0, 0.9 * lateness), i, e)
             for i, e in enumerate(in_time_order(events))]
    return [e for _, _, e in sorted(keyed, key=lambda k: (k[0], k[1]))]


def reversed_chunks(events: list[dict[str, Any]], lateness: float) -> list[dict[str, Any]]:
    """Time-ordered events cut into chunks spanning less than `lateness`, each delivered
    newest first (the worst order a chunk can arrive in)."""
    out: list[dict[str, Any]] = []
    chunk: list[dict[str, Any]] = []
    first = None
    for e in in_time_order(events):
        ts = parse_ts(e.get("@timestamp")) or 0.0
        if first is not None and ts - first >= 0.9 * lateness:
            out.extend(reversed(chunk))
            chunk, first = [], None
        if first is None:
            first = ts
        chunk.append(e)
    out.extend(reversed(chunk))
    return out
