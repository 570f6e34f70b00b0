"""Labelled scenario logs: seeded, deterministic raw audit logs in each source's native format.

    from secretsight.scenarios import SCENARIOS, generate
    generated = generate("vault_harvest", Path("out"), seed=1)
    generated.files      # raw logs (vault-audit.log, cloudtrail-s3.json, cloudtrail-cwl.ndjson,
                         # kube-audit.log), to be read by the real normalizers
    generated.config     # config.yml (the scenario's Config overrides; absent when none)

CLI: `secretsight generate SCENARIO --out DIR [--seed N]` (`--list` shows them all).
Expectations (exactly the findings each must produce) are in `tests/scenarios/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from secretsight.config import Config
from secretsight.errors import SecretSightError
from secretsight.scenarios.catalog import SCENARIOS, Scenario
from secretsight.scenarios.world import Timeline

__all__ = ["SCENARIOS", "Generated", "Scenario", "generate", "scenario_config"]

DEFAULT_SEED = 20260302


@dataclass(frozen=True)
class Generated:
    scenario: Scenario
    files: list[Path]
    config: Path | None


def scenario_config(name: str) -> Config:
    """The Config a scenario is judged with: defaults plus its overrides."""
    return Config.model_validate(_get(name).config)


def _get(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise SecretSightError(
            f"unknown scenario {name!r}; known: {', '.join(sorted(SCENARIOS))}"
        ) from None


def generate(name: str, out: str | Path, *, seed: int = DEFAULT_SEED) -> Generated:
    scenario = _get(name)
    timeline = Timeline(seed, scenario.start)
    scenario.build(timeline)
    out = Path(out)
    files = timeline.write(out)
    config_path = None
    if scenario.config:
        config_path = out / "config.yml"
        header = f"# SecretSight config for scenario {name} (generated)\n"
        config_path.write_text(header + yaml.safe_dump(_plain(scenario.config), sort_keys=True))
    return Generated(scenario, files, config_path)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
