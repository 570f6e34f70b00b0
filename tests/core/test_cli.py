"""The CLI shell: lazy sub-commands, version, exit code 2 for usage errors."""

from __future__ import annotations

import subprocess
import sys

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
