"""Fixtures for the watch tests: a real redis-server and the state URLs (tests/support)."""

from support.state_fixtures import redis_server, state_url

__all__ = ["redis_server", "state_url"]
