"""The `sigma` script of sigma-cli, beside this Python. sigma-cli is a base dependency
(pyproject `dependencies`), so a missing script is a broken install: the test fails saying so
rather than skipping."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SIGMA = Path(sys.executable).with_name("sigma")


def sigma_cli() -> Path:
    if not SIGMA.exists():
        pytest.fail(f"{SIGMA} missing: sigma-cli is a base dependency; reinstall with "
                    "`pip install -e .` (scripts/test.sh does)")
    return SIGMA
