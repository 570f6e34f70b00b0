"""The CLI shell: lazy sub-commands, version, exit code 2 for usage errors."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from click.testing import CliRunner

from secretsight import __version__
from secretsight.cli import COMMANDS, cli


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_every_registered_command_module_exists_and_loads() -> None:
    for name in COMMANDS:
        assert cli.get_command(None, name) is not None, f"secretsight {name} has no module"  # type: ignore[arg-type]


def test_unknown_command_exits_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from secretsight.cli import main; main()", "no-such-command"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "No such command" in proc.stderr


def test_a_secretsight_error_exits_2_with_its_message(tmp_path: Path) -> None:
    """One mechanism for every command: SecretSightError -> `error: <file>: <message>`, exit 2
    (under CliRunner as under `main()`)."""
    missing = tmp_path / "nope.log"
    result = CliRunner().invoke(cli, ["scan", str(missing)])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {missing}: no such file"
    bad = tmp_path / "bad.yml"
    bad.write_text("thresholds: {bulk_read: {count: 0}}\n")
    result = CliRunner().invoke(cli, ["compile", "-t", "loki", "-c", str(bad), "-o",
                                      str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {bad}: invalid config: thresholds.bulk_read.count")


def test_main_maps_the_error_the_same_way(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from secretsight.cli import main; main()", "scan",
         str(tmp_path / "nope.log")], capture_output=True, text=True)
    assert (proc.returncode, proc.stderr.strip()) == (2, f"error: {tmp_path / 'nope.log'}: no such file")


REPO = Path(__file__).resolve().parents[2]


def _option(command: str, name: str):  # type: ignore[no-untyped-def]
    cmd = cli.get_command(None, command)  # type: ignore[arg-type]
    assert cmd is not None
    (opt,) = [p for p in cmd.params if p.name == name]
    return opt


def test_readme_and_watch_help_agree_on_port_and_state() -> None:
    (line,) = [ln for ln in (REPO / "README.md").read_text("utf-8").splitlines()
               if ln.startswith("secretsight watch ")]
    port = re.search(r"--listen [\d.]+:(\d+)", line)
    state = re.search(r"--state \[?([^|\]\s]+)", line)
    assert port and state, line
    assert f":{port.group(1)}" in (_option("watch", "listen").help or "")
    assert state.group(1) == _option("watch", "state").default


def test_the_plain_install_provides_sigma_cli() -> None:
    """docs/sigma-cli.md: `pip install -e .` brings sigma-cli (not only the test extra)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    assert any(d.startswith("sigma-cli==") for d in project["dependencies"])
    assert "pip install -e ." in (REPO / "docs" / "sigma-cli.md").read_text("utf-8")
