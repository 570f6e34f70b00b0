"""A deterministic event stream with findings spread all along it."""

from __future__ import annotations

import json
from pathlib import Path

from detect.helpers import at, ev


def stream(identities: int = 40, days: int = 30, reads_per_day: int = 40) -> list[dict]:
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


def write_ndjson(path: Path, events: list[dict]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path
