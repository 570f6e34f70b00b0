"""The replay harness's shared pieces: generated scenarios, rule sets and replay results, cached
for the session. A plain module (not conftest) so tests import it by a name no other test
directory uses."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secretsight.config import Config
from secretsight.engine import dedupe
from secretsight.engine.replay import ReplayResult, replay
from secretsight.scenarios import Generated, generate, scenario_config
from support.expectations import load_expectation, observed
from support.normalizers import RUNNERS, Unavailable

REPO = Path(__file__).resolve().parents[2]
COVERAGE_DIR = REPO / "build" / "coverage"


@dataclass
class Outcome:
    scenario: str
    normalizer: str
    status: str  # pass | fail | skip
    reason: str = ""
    expected: dict[str, int] = field(default_factory=dict)
    observed: dict[str, int] = field(default_factory=dict)
    # anomaly -> sources whose events produced it (None dataset: a multi-source finding)
    sources: dict[str, list[str]] = field(default_factory=dict)


class Harness:
    def __init__(self, root: Path):
        self.root = root
        self._generated: dict[str, Generated] = {}
        self._rulesets: dict[str, Any] = {}
        self._events: dict[tuple[str, str], tuple[list[dict[str, Any]], int]] = {}
        self._replays: dict[str, ReplayResult] = {}
        self.outcomes: list[Outcome] = []

    def generated(self, name: str) -> Generated:
        if name not in self._generated:
            self._generated[name] = generate(name, self.root / name)
        return self._generated[name]

    def config(self, name: str) -> Config:
        return scenario_config(name)

    def ruleset(self, config: Config) -> Any:
        from secretsight.rules import load_rules

        key = config.model_dump_json()
        if key not in self._rulesets:
            rules = load_rules(config=config)
            self._rulesets[key] = rules
        return self._rulesets[key]

    def events(self, name: str, normalizer: str) -> tuple[list[dict[str, Any]], int]:
        key = (name, normalizer)
        if key not in self._events:
            self._events[key] = RUNNERS[normalizer](self.generated(name).files)
        return self._events[key]

    def replay(self, name: str, normalizer: str) -> ReplayResult:
        events, _ = self.events(name, normalizer)
        config = self.config(name)
        unique, _ = dedupe(events)
        # Identical normalized input gives identical findings (the replay is deterministic):
        # replay each distinct event set once, whichever implementation produced it.
        digest = hashlib.sha256(
            json.dumps(sorted(json.dumps(e, sort_keys=True) for e in unique)).encode()
            + config.model_dump_json().encode()
        ).hexdigest()
        if digest not in self._replays:
            self._replays[digest] = replay(unique, config, self.ruleset(config))
        return self._replays[digest]


__all__ = ["COVERAGE_DIR", "REPO", "Harness", "Outcome", "Unavailable", "load_expectation",
           "observed"]
