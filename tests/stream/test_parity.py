"""`watch` (the stream) and `scan` (the embedded engine) give identical findings on every
generated scenario: in time order, shuffled within the allowed lateness, and through the
`watch --exit-at-eof` command on the scenario's raw files. Both per rule (what the scenario
expectations judge) and per incident (what both report; watch's last revision of each)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from support.delivery_orders import in_time_order, jittered, reversed_chunks

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


@dataclass
class Scenario:
    generated: Any
    config: Config
    rules: Any
    events: list[dict[str, Any]]
    findings: list[str]  # scan's, per rule, as JSON lines
    incidents: list[str]  # scan's incidents


_CACHE: dict[str, Scenario] = {}


def _scenario(name: str) -> Scenario:
    """Generated, normalized and scanned once per scenario."""
    if name not in _CACHE:
        generated = generate(name, Path(tempfile.mkdtemp(prefix=f"stream-{name}-")))
        config = scenario_config(name)
        rules = load_rules(config=config)
        events = list(iter_files(generated.files))
        scanned = replay(events, config, rules)
        _CACHE[name] = Scenario(generated, config, rules, events, _lines(scanned.findings),
                                _lines(scanned.incidents))
    return _CACHE[name]


def _lines(findings: list[Any]) -> list[str]:
    return sorted(json.dumps(finding_json(f) if isinstance(f, Finding) else f, sort_keys=True)
                  for f in findings)


def last_revisions(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each incident's last revision, without the revision number (scan reports each once)."""
    last: dict[str, dict[str, Any]] = {}
    for r in reports:
        inc = r["incident"]
        if inc["id"] not in last or inc["revision"] > last[inc["id"]]["incident"]["revision"]:
            last[inc["id"]] = r
    # (the output line's `id` hashes the content, revision included: left out too)
    return [{**{k: v for k, v in r.items() if k != "id"}, "incident": {"id": r["incident"]["id"]}}
            for r in last.values()]


def _stream(events: list[dict[str, Any]], config: Config, rules: Any, *,
            incidents: bool) -> list[str]:
    det = open_detectors(config, open_store(None), ruleset=rules, incidents=incidents,
                         log=lambda m: None)
    found = det.run(events)
    assert det.buffer.late == 0, "the delivery stayed within the allowed lateness"
    if not incidents:
        return _lines(found)
    return _lines(last_revisions([finding_json(f) for f in found]))


def _delivered(s: Scenario, delivery: str, seed: int) -> list[dict[str, Any]]:
    lateness = s.config.stream.lateness.total_seconds()
    if delivery == "time_order":
        return in_time_order(s.events)
    if delivery == "jittered":
        return jittered(s.events, lateness, seed=seed)
    return reversed_chunks(s.events, lateness)


DELIVERIES = ["time_order", "jittered", "reversed_chunks"]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("delivery", DELIVERIES)
def test_stream_equals_scan_per_rule(name: str, delivery: str) -> None:
    s = _scenario(name)
    got = _stream(_delivered(s, delivery, len(name)), s.config, s.rules, incidents=False)
    assert got == s.findings


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("delivery", DELIVERIES)
def test_stream_equals_scan_per_incident(name: str, delivery: str) -> None:
    s = _scenario(name)
    got = _stream(_delivered(s, delivery, len(name)), s.config, s.rules, incidents=True)
    assert got == _lines(last_revisions([json.loads(x) for x in s.incidents]))


# The raw files of a scenario are separate sources, each in time order but weeks apart from
# one another: a historical replay through `watch` needs a lateness covering that skew.
_REPLAY_LATENESS = "3650d"
_REPLAY_SKEW = 3650 * 86400


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_watch_command_equals_scan_command(name: str, tmp_path: Path) -> None:
    generated = _scenario(name).generated
    cfg = tmp_path / "config.yml"
    overrides = dict(yaml.safe_load(generated.config.read_text()) or {}) if generated.config else {}
    overrides["stream"] = {"lateness": _REPLAY_LATENESS}
    # ... and a time guard that accepts events that far behind the newest (docs/watch.md)
    overrides["limits"] = {"time": {"max_skew_seconds": _REPLAY_SKEW}}
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
    scan_reports = [json.loads(x) for x in scanned.stdout.splitlines() if x.startswith("{")]
    assert all(r["incident"]["revision"] == 1 for r in scan_reports)
    watch_reports = [{k: v for k, v in json.loads(x).items() if k != "id"}
                     for x in out.read_text().splitlines()]
    assert _lines(last_revisions(watch_reports)) == _lines(last_revisions(scan_reports))


def test_watch_no_rules_runs_every_detector_and_no_rule(tmp_path: Path) -> None:
    """`--no-rules`: the detectors alone, all of them (the bulk_read detector stands in for the
    Sigma correlation), and no Sigma-only class (vault_root_token is a plain rule)."""
    def anomalies(scenario: str, *flags: str) -> set[str]:
        generated = _scenario(scenario).generated
        cfg = tmp_path / f"{scenario}.yml"
        overrides = (dict(yaml.safe_load(generated.config.read_text()) or {})
                     if generated.config else {})
        overrides["stream"] = {"lateness": _REPLAY_LATENESS}
        overrides["limits"] = {"time": {"max_skew_seconds": _REPLAY_SKEW}}
        cfg.write_text(yaml.safe_dump(overrides))
        out = tmp_path / f"{scenario}{'-'.join(flags)}.ndjson"
        inputs = [a for f in generated.files for a in ("-i", str(f))]
        watched = CliRunner().invoke(cli, ["watch", *inputs, "-o", str(out), "--config", str(cfg),
                                           "--state", f"sqlite:///{out}.db", "--exit-at-eof",
                                           *flags])
        assert watched.exit_code == 0, watched.output
        return {json.loads(x)["anomaly"] for x in out.read_text().splitlines()}

    assert "root_token" in anomalies("vault_root_token")
    assert "root_token" not in anomalies("vault_root_token", "--no-rules")
    assert "bulk_read" in anomalies("vault_harvest", "--no-rules")
