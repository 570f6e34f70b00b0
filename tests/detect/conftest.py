"""Store fixtures: every detector test runs against in-memory SQLite, a SQLite file and a real
redis-server (started here on a free loopback port, skipped when the binary is absent)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from support.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer.start_or_skip(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


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
