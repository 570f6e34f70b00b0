"""Deterministic event streams for the long-running paths (watch, streaming rules), and their
NDJSON files.

- `detector_stream`: first_path_access findings spread all along (tests/watch);
- `rule_stream`: the Sigma rules fire all along (plain rules and every kind of correlation),
  delivered slightly out of order, within the default lateness (tests/stream).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from support.delivery_orders import jittered
from support.event_builders import at, ev


def detector_stream(identities: int = 40, days: int = 30,
                    reads_per_day: int = 40) -> list[dict[str, Any]]:
    """Each identity reads a few known paths every day and a brand-new one every few days
    (first_path_access once the baseline is established), so findings appear all along."""
    events = []
    for day in range(days):
        for i in range(identities):
            for k in range(reads_per_day):
                path = f"secret/{i}/p{k % 4}"
                if k == 0 and day % 3 == i % 3:
                    path = f"secret/{i}/new-{day}"
                events.append(ev(at(i * 60 + k, days=day), user=f"id-{i}", path=path))
    events.sort(key=lambda e: e["@timestamp"])
    return events


def rule_stream(days: int = 12, identities: int = 12) -> list[dict[str, Any]]:
    rng = random.Random(7)
    events: list[dict[str, Any]] = []
    for day in range(days):
        for i in range(identities):  # steady readers from an internal address
            for k in range(20):
                events.append(ev(at(i * 300 + k * 60, days=day), user=f"app-{i}",
                                 path=f"secret/app-{i}/p{k % 3}", source__ip="10.0.1.5"))
        h = day % identities
        base = 6 * 3600 + rng.randrange(3600)
        for k in range(80):  # a harvest: bulk_read + path_diversity
            events.append(ev(at(base + k * 1.5, days=day), user=f"app-{h}",
                             path=f"secret/other-{k % 40}", source__ip="10.0.1.5"))
        for k in range(12):  # denied burst
            events.append(ev(at(base + 4000 + k * 5, days=day), user=f"app-{(h + 1) % identities}",
                             path=f"secret/x-{k}", outcome="failure",
                             vault__error="1 error occurred: permission denied"))
        events.append(ev(at(base + 5000, days=day), user=f"app-{(h + 2) % identities}",
                         path="secret/app/db", user_agent__original="curl/8.4.0",
                         source__ip="10.0.1.9"))
        dual = f"app-{(h + 3) % identities}"  # the same identity from two networks
        events.append(ev(at(base + 6000, days=day), user=dual, path="secret/a",
                         source__ip="10.0.2.2"))
        events.append(ev(at(base + 6600, days=day), user=dual, path="secret/a",
                         source__ip="203.0.113.7"))
        events.append(ev(at(base + 9000, days=day), user="root-token", path="secret/a",
                         roles=["root"]))
    # Open all along, so a kill at any point cuts through them: a root token used every 20
    # minutes (one plain burst) and a token alternating networks every 30 minutes (one
    # dual_source_ip burst).
    for m in range(0, days * 24 * 60, 20):
        events.append(ev(at(m * 60 + 7), user="break-glass", path="secret/a", roles=["root"]))
        if m % 30 == 0:
            ip = "10.0.3.3" if m % 60 else "198.51.100.4"
            events.append(ev(at(m * 60 + 11), user="roaming", path="secret/r", source__ip=ip))
    return jittered(events, lateness=20.0, seed=3)



def write_ndjson(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path
