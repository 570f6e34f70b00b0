"""`secretsight compile --target alerting` and `--target all`: the alerting files are written,
listed in the support matrix, deterministic, and a change of `maintenance_windows` changes the
generated time intervals and nothing else, in any target's output."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from secretsight.alerting.alertmanager import CONFIG_FILE
from secretsight.alerting.grafana import DASHBOARD_FILE
from secretsight.alerting.prometheus import RULES_FILE
from secretsight.cli import cli
from secretsight.compile import TARGETS, compile_targets
from secretsight.config import Config, MaintenanceWindow, TimeInterval, TimeRange

FILES = (CONFIG_FILE, RULES_FILE, DASHBOARD_FILE)


def _compile(tmp_path: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["compile", *args, "-o", str(tmp_path), "-q"],
                                standalone_mode=False)
    assert result.exception is None, result.output
    assert result.return_value in (0, None), result.output
    return result.output


def test_target_alerting_writes_the_alerting_pieces(tmp_path: Path) -> None:
    output = _compile(tmp_path, "--target", "alerting")
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")
                     if p.is_file())
    assert written == sorted([*FILES, "support-matrix.json", "support-matrix.md"])
    assert "alerting: 11 compiled, 0 with workaround, 0 unsupported" in output
    matrix = (tmp_path / "support-matrix.md").read_text("utf-8")
    assert "| SecretSightBulkRead | compiled |" in matrix


def test_target_all_includes_alerting(tmp_path: Path) -> None:
    _compile(tmp_path, "--target", "all")
    for rel in FILES:
        assert (tmp_path / rel).is_file()
    assert (tmp_path / "loki" / "secretsight-rules.yaml").is_file()
    assert "| alerting |" in (tmp_path / "support-matrix.md").read_text("utf-8")


def test_alerting_output_is_byte_identical_across_compiles(tmp_path: Path) -> None:
    _compile(tmp_path / "a", "--target", "alerting")
    _compile(tmp_path / "b", "--target", "alerting")
    for rel in FILES:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


WINDOWS = [MaintenanceWindow(name="business_hours", location="Europe/Paris", time_intervals=[
    TimeInterval(weekdays=["monday:thursday"],
                 times=[TimeRange(start_time="07:30", end_time="19:00")]),
    TimeInterval(weekdays=["saturday"], months=["december"])])]


def test_maintenance_windows_change_only_the_time_intervals() -> None:
    before = compile_targets(TARGETS, config=Config())
    after = compile_targets(TARGETS, config=Config(maintenance_windows=WINDOWS))
    assert before.files.keys() == after.files.keys()
    changed = sorted(rel for rel in before.files if before.files[rel] != after.files[rel])
    assert changed == [CONFIG_FILE]
    old, new = (yaml.safe_load(o.files[CONFIG_FILE]) for o in (before, after))
    assert old["time_intervals"] != new["time_intervals"]
    assert new["time_intervals"][0]["time_intervals"][0]["location"] == "Europe/Paris"
    del old["time_intervals"], new["time_intervals"]
    assert old == new


def test_a_new_window_also_joins_the_admin_mute_list() -> None:
    extra = [*Config().maintenance_windows,
             MaintenanceWindow(name="patching", time_intervals=[TimeInterval(weekdays=["sunday"])])]
    doc = yaml.safe_load(compile_targets(["alerting"], config=Config(
        maintenance_windows=extra)).files[CONFIG_FILE])
    assert [w["name"] for w in doc["time_intervals"]] == ["business_hours", "patching"]
    assert "patching" in yaml.safe_dump(doc["route"])


def test_a_partial_alerting_config_merges_over_the_defaults(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text("alerting:\n  team: payments-sec\n  receivers:\n    page: pd\n", "utf-8")
    _compile(tmp_path / "out", "--target", "alerting", "--config", str(config))
    doc = yaml.safe_load((tmp_path / "out" / CONFIG_FILE).read_text("utf-8"))
    assert [r["name"] for r in doc["receivers"]] == ["pd", "secretsight-oncall-chat",
                                                    "secretsight-tickets"]
    assert doc["route"]["routes"][0]["matchers"] == ['team="payments-sec"']
