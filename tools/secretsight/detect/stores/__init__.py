"""Durable detector state: the interface (`base`), SQLite (`sqlite`, the embedded default),
Redis (`redis`, shared by replicas) and `open_store(url)` (`factory`)."""

from secretsight.detect.stores.base import Batch, Claim, Store, StoreError
from secretsight.detect.stores.factory import open_store, sqlite_path

__all__ = ["Batch", "Claim", "Store", "StoreError", "open_store", "sqlite_path"]
