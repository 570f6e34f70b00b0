"""`open_store(url)`: a state store URL -> the store. The only module that knows the concrete
stores (the layers below, `base`, `sqlite` and `redis`, import nothing above them).

URLs follow SQLAlchemy's rule for SQLite paths: `sqlite:///state.db` (three slashes) is
`state.db` relative to the working directory, `sqlite:////var/lib/secretsight/state.db` (four)
is absolute. A plain path is used as it is.
"""

from __future__ import annotations

from secretsight.detect.stores.base import Store
from secretsight.detect.stores.sqlite import SQLiteStore
from secretsight.errors import SecretSightError

MEMORY_URLS = ("", "memory", "sqlite://", "sqlite:///:memory:")


def sqlite_path(url: str) -> str:
    """The file a `sqlite:` URL (or a plain path) names, as `open_store` opens it."""
    if url in MEMORY_URLS:
        return ":memory:"
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///"):]
    if "://" in url or url.startswith("sqlite:"):
        raise SecretSightError(
            f"unknown state store URL {url!r} (use sqlite:///relative/path, "
            "sqlite:////absolute/path or redis://host:port/db)")
    return url


def open_store(url: str | None) -> Store:
    """None -> in-memory SQLite; `sqlite:///path` (or a plain path); `redis://host:port/db`."""
    if url is not None and url.startswith(("redis://", "rediss://", "unix://")):
        # redis-py is imported only by those who use it
        from secretsight.detect.stores.redis import RedisStore

        return RedisStore(url)
    return SQLiteStore(sqlite_path(url or ""))
