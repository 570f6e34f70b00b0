"""`secretsight compile` end to end, in-process with click's CliRunner: outputs, the printed
and written support matrix, determinism, and collected rule errors with file:line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from secretsight.cli import cli
from secretsight.rules import RULES_DIR

EXAMPLE_RULES = Path(__file__).with_name("example_rules")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["compile", *args], standalone_mode=False)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.return_value, result.stdout, result.stderr


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("target", ["loki", "elastic", "splunk"])
def test_two_compiles_are_byte_identical(tmp_path: Path, target: str) -> None:
    assert run("-t", target, "--out", str(tmp_path / "a"))[0] == 0
    assert run("-t", target, "--out", str(tmp_path / "b"))[0] == 0
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert a and a == b


def test_outputs_and_matrix_written(tmp_path: Path) -> None:
    code, stdout, _ = run("-t", "all", "--out", str(tmp_path))
    assert code == 0
    files = tree(tmp_path)
    for expected in ("loki/secretsight-rules.yaml", "elastic/secretsight-rules.ndjson",
                     "splunk/secretsight/default/savedsearches.conf", "support-matrix.md", "support-matrix.json"):
        assert expected in files
    assert "| rule | alerting | elastic | loki | splunk |" in stdout  # the matrix is printed
    # the alerting target's rows are its Prometheus alerts (tests/alerting)
    cells = [c for c in json.loads(files["support-matrix.json"])["cells"]
             if c["target"] != "alerting"]
    rules = {c["rule"] for c in cells}
    # every emitted rule has one cell per SIEM target
    assert len(cells) == 3 * len(rules)
    assert "bulk_read" in rules


def test_stale_files_removed(tmp_path: Path) -> None:
    stale = tmp_path / "loki" / "queries" / "vault" / "removed_rule.logql"
    stale.parent.mkdir(parents=True)
    stale.write_text("old\n")
    assert run("-t", "loki", "--out", str(tmp_path), str(EXAMPLE_RULES))[0] == 0
    assert not stale.exists()


def bad_rules(tmp_path: Path) -> Path:
    root = tmp_path / "rules"
    shutil.copytree(EXAMPLE_RULES, root)
    (root / "vault" / "broken_yaml.yml").write_text("title: x\ndetection: [unclosed\n")
    text = (root / "vault" / "example_root_policy.yml").read_text()
    (root / "vault" / "bad_field.yml").write_text(
        text.replace("name: example_root_policy", "name: bad_field")
        .replace("0b7c6f0e-0000-4000-8000-000000000001", "0b7c6f0e-0000-4000-8000-0000000000ff")
        .replace("user.roles: root", "user.rolez: root"))
    return root


def test_errors_collected_with_file_and_line(tmp_path: Path) -> None:
    code, _, stderr = run("-t", "loki", "--out", str(tmp_path / "out"), str(bad_rules(tmp_path)))
    assert code == 2
    assert "2 error(s)" in stderr
    assert "broken_yaml.yml:3" in stderr  # the YAML error, with its line
    assert "bad_field.yml:" in stderr and "user.rolez" in stderr
    # the good rules still compiled
    assert (tmp_path / "out" / "loki" / "queries" / "vault" / "example_root_policy.logql").is_file()


def test_pass_on_error(tmp_path: Path) -> None:
    code, _, stderr = run("-t", "loki", "--pass-on-error", "--out", str(tmp_path / "out"),
                          str(bad_rules(tmp_path)))
    assert code == 0 and "2 error(s)" in stderr


def test_cli_exit_code_2_via_main(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The installed entry point turns the command's 2 into the process exit status."""
    import sys

    from secretsight.cli import main

    monkeypatch.setattr(sys, "argv", ["secretsight", "compile", "-t", "splunk", "--out",
                                      str(tmp_path / "out"), str(bad_rules(tmp_path))])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2


def test_config_changes_thresholds(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("thresholds:\n  bulk_read: {count: 7, window: 2m}\n")
    assert run("-t", "splunk", "-c", str(config), "--out", str(tmp_path / "out"),
               str(RULES_DIR))[0] == 0
    search = (tmp_path / "out" / "splunk" / "searches" / "cross" / "bulk_read.spl").read_text()
    assert "streamstats time_window=2m count as event_count by user.id" in search
    assert "| where event_count > 7" in search
