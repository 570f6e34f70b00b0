"""Shared test fixtures: where the repo and the shared real-format samples are."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Real-format audit logs live beside the repo and are never copied into it.
SAMPLES = REPO.parent / "shared" / "samples"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"real-format samples not found at {SAMPLES} (they live in ../shared/samples)")
    return SAMPLES
