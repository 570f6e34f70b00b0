"""Store fixtures: every detector test runs against in-memory SQLite, a SQLite file and a real
redis-server (started here on a free loopback port, skipped when the binary is absent)."""

from __future__ import annotations

import uuid

import pytest
from support.state_fixtures import redis_server


@pytest.fixture(params=["sqlite-memory", "sqlite-file", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str | None:
    if request.param == "sqlite-memory":
        return None
    if request.param == "sqlite-file":
        return f"sqlite:///{tmp_path}/state.db"
    server = request.getfixturevalue("redis_server")
    return f"{server.url}?prefix=t{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["sqlite-file", "redis"])
def durable_store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """Stores that outlive the process (the restart tests)."""
    if request.param == "sqlite-file":
        return f"sqlite:///{tmp_path}/state.db"
    server = request.getfixturevalue("redis_server")
    return f"{server.url}?prefix=t{uuid.uuid4().hex[:12]}"

__all__ = ["redis_server"]  # a fixture, re-exported for the store URLs above
