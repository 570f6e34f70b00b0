"""`watch` (the stream) and `scan` (the embedded engine) give identical findings on every
generated scenario: in time order, shuffled within the allowed lateness, and through the
`watch --exit-at-eof` command on the scenario's raw files."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from secretsight.cli import cli
from secretsight.config import Config
from secretsight.detect import open_store
from secretsight.engine.replay import replay
from secretsight.findings import Finding
from secretsight.normalize import iter_files
from secretsight.rules import load_rules
from secretsight.scenarios import SCENARIOS, generate, scenario_config
from secretsight.stream import open_detectors
from secretsight.watch.outputs import finding_json
from stream.delivery import in_time_order, jittered, reversed_chunks

_CACHE: dict[str, tuple[Any, Config, Any, list[str]]] = {}


def _scenario(name: str) -> tuple[Any, Config, Any, list[str]]:
    """(generated, config, rule set, scan's findings as JSON lines), once per scenario."""
    if name not in _CACHE:
        generated = generate(name, Path(tempfile.mkdtemp(prefix=f"stream-{name}-")))
        config = scenario_config(name)
        rules = load_rules(config=config)
        events = list(iter_files(generated.files))
        scanned = replay(events, config, rules)
        _CACHE[name] = (generated, config, rules, _lines(scanned.findings))
        _CACHE[name + "/events"] = events  # type: ignore[assignment]
    return _CACHE[name]


def _lines(findings: list[Finding]) -> list[str]:
    return sorted(json.dumps(finding_json(f), sort_keys=True) for f in findings)


def _stream(events: list[dict[str, Any]], config: Config, rules: Any) -> list[str]:
    det = open_detectors(config, open_store(None), ruleset=rules, log=lambda m: None)
    found = det.run(events)
    assert det.buffer.late == 0, "the delivery stayed within the allowed lateness"
    return _lines(found)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("delivery", ["time_order", "jittered", "reversed_chunks"])
def test_stream_equals_scan(name: str, delivery: str) -> None:
    _, config, rules, expected = _scenario(name)
    events = _CACHE[name + "/events"]
    lateness = config.stream.lateness.total_seconds()
    order = {
        "time_order": lambda: in_time_order(events),  # type: ignore[arg-type]
        "jittered": lambda: jittered(events, lateness, seed=len(name)),  # type: ignore[arg-type]
        "reversed_chunks": lambda: reversed_chunks(events, lateness),  # type: ignore[arg-type]
    }[delivery]()
    assert _stream(order, config, rules) == expected


# The raw files of a scenario are separate sources, each in time order but weeks apart from
# one another: a historical replay through `watch` needs a lateness covering that skew.
_REPLAY_LATENESS = "3650d"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_watch_command_equals_scan_command(name: str, tmp_path: Path) -> None:
    generated, _, _, _ = _scenario(name)
    cfg = tmp_path / "config.yml"
    overrides = dict(yaml.safe_load(generated.config.read_text()) or {}) if generated.config else {}
    overrides["stream"] = {"lateness": _REPLAY_LATENESS}
    cfg.write_text(yaml.safe_dump(overrides))
    files = [str(f) for f in generated.files]
    runner = CliRunner()
    scanned = runner.invoke(cli, ["scan", *files, "--config", str(cfg), "--format", "json"])
    assert scanned.exit_code in (0, 1), scanned.output
    out = tmp_path / "findings.ndjson"
    inputs = [a for f in files for a in ("-i", f)]
    watched = runner.invoke(cli, ["watch", *inputs, "-o", str(out), "--config", str(cfg),
                                   "--state", f"sqlite:///{tmp_path}/state.db", "--exit-at-eof"])
    assert watched.exit_code == 0, watched.output
    scan_lines = sorted(json.dumps(json.loads(x), sort_keys=True)
                        for x in scanned.stdout.splitlines() if x.startswith("{"))
    watch_lines = sorted(
        json.dumps({k: v for k, v in json.loads(x).items() if k != "id"}, sort_keys=True)
        for x in out.read_text().splitlines())
    assert watch_lines == scan_lines
