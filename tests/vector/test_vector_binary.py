"""`vector validate` and `vector test` on the shipped config, when a `vector` binary exists."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from support.vrl_programs import REPO

VECTOR = shutil.which("vector")
pytestmark = [
    pytest.mark.vector_binary,
    pytest.mark.skipif(VECTOR is None, reason="no `vector` binary on PATH (install Vector to run)"),
]


def _vector(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SECRETSIGHT_VRL_DIR": str(REPO / "vector")}
    return subprocess.run(
        [str(VECTOR), *args],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_vector_validate():
    done = _vector("validate", "--no-environment", "vector/vector.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_vector_unit_tests():
    done = _vector("test", "vector/vector.yaml", "vector/tests.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
