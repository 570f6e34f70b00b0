"""Session state of the replay harness: generated scenarios, rule sets, replay results (shared
by the scenario tests, the EQL cross-check and the coverage report written at session end)."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from expectations import load_expectation, observed
from harness_normalizers import RUNNERS, Unavailable

from secretsight.config import Config
from secretsight.engine import dedupe
from secretsight.engine.replay import ReplayResult, replay
from secretsight.scenarios import SCENARIOS, Generated, generate, scenario_config

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


@pytest.fixture(scope="session")
def harness(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Harness:
    h = Harness(tmp_path_factory.mktemp("scenarios"))
    request.config._secretsight_harness = h  # type: ignore[attr-defined]
    return h


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the coverage report (Markdown + HTML) from what this session replayed."""
    h: Harness | None = getattr(session.config, "_secretsight_harness", None)
    if h is None or not h.outcomes:
        return
    from secretsight.report import write_coverage

    try:
        rules = h.ruleset(Config())
    except Exception:  # noqa: BLE001 - the report must never turn a passing run into an error
        rules = None
    from harness_normalizers import IMPLEMENTATIONS

    write_coverage(COVERAGE_DIR, [o.__dict__ for o in h.outcomes], SCENARIOS, rules,
                   build_dir=REPO / "build", total_cases=len(SCENARIOS) * len(IMPLEMENTATIONS))


__all__ = ["Harness", "Outcome", "Unavailable", "load_expectation", "observed"]
