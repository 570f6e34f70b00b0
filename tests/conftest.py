"""Shared test fixtures: where the repo and the shared real-format samples are."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.samples import SAMPLES, missing_reason


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(missing_reason("directory"))
    return SAMPLES
