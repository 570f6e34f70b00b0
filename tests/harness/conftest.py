"""Session state of the replay harness (shared by the scenario tests, the EQL cross-check and the
coverage report written at session end). The pieces live in tests/support/harness.py."""

from __future__ import annotations

import pytest
from support.harness import COVERAGE_DIR, Harness

from secretsight.config import Config
from secretsight.scenarios import SCENARIOS


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
    from support.normalizers import IMPLEMENTATIONS

    write_coverage(COVERAGE_DIR, [o.__dict__ for o in h.outcomes], SCENARIOS, rules,
                   total_cases=len(SCENARIOS) * len(IMPLEMENTATIONS))
