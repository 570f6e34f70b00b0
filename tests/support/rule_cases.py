"""Per-rule positive and negative cases (loaded by tests/rules/test_rules.py).

The cases of rule `sigma/rules/<source>/<name>.yml` live in `tests/rules/cases/<source>/<name>.yml`,
a tree mirroring the rules (as SigmaHQ keeps its regression data apart): sigma-cli reads every
`.yml` under the directory it is given as a rule, so nothing but rules may sit in `sigma/rules`.
A case file:

    defaults:                 # flat dotted fields merged into every event of every case
      event.dataset: vault.audit
    cases:
      - id: harvest           # unique in the file; test id `<source>/<rule>::<id>`
        expect: 1             # findings of this rule (by name) the engine must report
        config: {...}         # optional Config overrides (deep-merged into the defaults)
        events:
          - {user.id: tok_a, secret.path: secret/a}            # one event, 1s after the last
          - {after: 10m, user.id: tok_a}                       # `after`: gap before it
          - repeat: 51                                         # 51 events, `every` apart
            every: 2s
            event: {user.id: tok_a, secret.path: "secret/app/{i%9}"}

Events are written flat (`secret.path`) and nested here; `{i}` / `{i%N}` in strings are the
repeat index; `field: null` drops a default. `@timestamp` and `event.id` are filled in when
absent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from secretsight.config import parse_duration
from support.event_builders import put_field

CASES_DIR = Path(__file__).resolve().parents[1] / "rules" / "cases"
START = datetime(2026, 5, 9, 10, 0, 0, tzinfo=UTC)
_INDEX = re.compile(r"\{i(?:%(\d+))?\}")

REQUIRED_DEFAULTS: dict[str, Any] = {
    "event.action": "read",
    "event.outcome": "success",
    "secretsight.category": "secret",
}


@dataclass(frozen=True)
class Case:
    rule: str
    source: str
    id: str
    expect: int
    events: list[dict[str, Any]]
    config: dict[str, Any]
    path: Path


def _subst(value: Any, i: int) -> Any:
    if isinstance(value, str):
        return _INDEX.sub(lambda m: str(i % int(m.group(1)) if m.group(1) else i), value)
    if isinstance(value, list):
        return [_subst(v, i) for v in value]
    return value


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """{"secret.path": x} -> {"secret": {"path": x}} (`@timestamp` stays as it is)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        put_field(out, key, value)
    return out


def expand_events(
    specs: list[dict[str, Any]], defaults: dict[str, Any], prefix: str
) -> list[dict[str, Any]]:
    now = START
    flat_events: list[dict[str, Any]] = []

    def emit(fields: dict[str, Any], gap: timedelta) -> None:
        nonlocal now
        now = now + gap if flat_events else now
        event = {**REQUIRED_DEFAULTS, **defaults, **fields}
        event = {k: v for k, v in event.items() if v is not None}  # `null` drops a default
        event.setdefault("@timestamp", now.strftime("%Y-%m-%dT%H:%M:%SZ"))
        event.setdefault("event.id", f"{prefix}-{len(flat_events)}")
        flat_events.append(event)

    for spec in specs:
        spec = dict(spec)
        gap = parse_duration(spec.pop("after", "1s"))
        if "repeat" in spec:
            every = parse_duration(spec.get("every", "1s"))
            template = spec["event"]
            for i in range(int(spec["repeat"])):
                emit({k: _subst(v, i) for k, v in template.items()}, gap if i == 0 else every)
        else:
            emit(spec, gap)
    return [nest(e) for e in flat_events]


def case_files() -> list[Path]:
    return sorted(CASES_DIR.rglob("*.yml"))


def rule_path_for(case_file: Path, rules_dir: Path) -> Path:
    """`tests/rules/cases/<source>/<name>.yml` -> `<rules_dir>/<source>/<name>.yml`."""
    return rules_dir / case_file.relative_to(CASES_DIR)


def load_cases(path: Path) -> list[Case]:
    data = yaml.safe_load(path.read_text("utf-8")) or {}
    rule = path.stem
    defaults = data.get("defaults", {}) or {}
    out = []
    for raw in data.get("cases", []):
        out.append(
            Case(
                rule=rule,
                source=path.parent.name,
                id=str(raw["id"]),
                expect=int(raw["expect"]),
                events=expand_events(raw.get("events", []), defaults, f"{rule}-{raw['id']}"),
                config=raw.get("config", {}) or {},
                path=path,
            )
        )
    return out


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
