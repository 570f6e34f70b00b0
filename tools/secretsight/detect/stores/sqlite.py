"""SQLite state store: the embedded default. One writer (one `watch` process per file);
WAL mode so readers (e.g. `sqlite3` for debugging) do not block it; every commit is ONE
transaction holding the state changes and the input offsets together."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from secretsight.detect.stores.base import Batch, Store, StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS identities (
  id TEXT PRIMARY KEY, first_seen REAL NOT NULL, last_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS known_paths (
  id TEXT NOT NULL, path TEXT NOT NULL, last_seen REAL NOT NULL, PRIMARY KEY (id, path))
  WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv (
  ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (ns, key));
CREATE TABLE IF NOT EXISTS offsets (
  ns TEXT NOT NULL, input TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (ns, input));
"""


# kv is a rowid table (a file created by 0.3.2 or before keeps its WITHOUT ROWID one: the same
# queries work on both): its values are mostly the stream's window runs, kilobytes each, and
# SQLite keeps large rows better in a rowid table (the key index stays small). Measured by
# replaying the commits of a `watch` run on bench_watch's 100,000 operations into a fresh
# file (2026-12-06, load ~5, two runs each): 0.071 / 0.072 s -> 0.065 / 0.061 s of store CPU.
_CACHE_KIB = 32 * 1024  # the page cache's bound (see SQLiteStore.__init__)

# json.dumps(v) with default arguments, minus its per-call argument checks (thousands of
# window states per commit).
_encode = json.JSONEncoder().encode


def _value(v: Any) -> Any:
    """kv.value -> state: a BLOB is bytes (packed windows) as written; TEXT is JSON."""
    return v if v.__class__ is bytes else json.loads(v)


def _create_private(path: str) -> None:
    """Create the database file 0600 before SQLite does (it would use the umask, typically
    0644): the state names identities and secret paths. SQLite gives its -wal and -shm files
    the database file's mode."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


class SQLiteStore(Store):
    """Every SQLite failure (a corrupted page, a read-only or full disk) surfaces as
    `StoreError` naming the file, never as a bare sqlite3 exception."""

    shared = False

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            if path != ":memory:":
                _create_private(path)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, one per batch.
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            if path != ":memory:":
                self.db.execute("PRAGMA journal_mode=WAL")
                # NORMAL is durable across process crashes in WAL mode (only an OS crash can
                # lose the last commits, and then offsets roll back with the state).
                self.db.execute("PRAGMA synchronous=NORMAL")
            # A page cache of up to 32 MiB (SQLite's default is 2 MiB), grown only as pages are
            # used. A commit of `watch` with every rule writes the touched windows' new entries
            # (stream/records.py), which on a replay as fast as bench_watch's 400,000
            # operations (an hour of stream per commit) is most of every window: ~6.5 MB a
            # second; with 2 MiB most of the upserts re-read their B-tree pages from the OS.
            # Measured on that run when it wrote ~10 MB a second (state format 1; 20 commits,
            # load ~1): 1.2-1.3 s of store CPU with the default, 0.88 s with this.
            self.db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
            self.db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open SQLite state store: {exc}", file=path) from exc

    def _failed(self, doing: str, exc: Exception) -> StoreError:
        return StoreError(f"SQLite state store failed while {doing}: {exc} (a corrupted file, "
                          "a read-only file or directory, or a full disk)", file=self.path)

    def load_identity(self, identity: str) -> tuple[float, float] | None:
        try:
            row = self.db.execute(
                "SELECT first_seen, last_seen FROM identities WHERE id = ?", (identity,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise self._failed("reading an identity", exc) from exc
        return (row[0], row[1]) if row else None

    def load_paths(self, identity: str) -> list[tuple[str, float]]:
        try:
            return self.db.execute(
                "SELECT path, last_seen FROM known_paths WHERE id = ? ORDER BY last_seen, path",
                (identity,),
            ).fetchall()
        except sqlite3.Error as exc:
            raise self._failed("reading known paths", exc) from exc

    def load_kv(self, ns: str, key: str) -> Any:
        try:
            row = self.db.execute("SELECT value FROM kv WHERE ns = ? AND key = ?",
                                  (ns, key)).fetchone()
        except sqlite3.Error as exc:
            raise self._failed("reading detector state", exc) from exc
        return _value(row[0]) if row else None

    def scan_kv(self, ns: str) -> list[tuple[str, Any]]:
        try:
            rows = self.db.execute("SELECT key, value FROM kv WHERE ns = ? ORDER BY key",
                                   (ns,)).fetchall()
        except sqlite3.Error as exc:
            raise self._failed("reading detector state", exc) from exc
        return [(k, _value(v)) for k, v in rows]

    def load_offsets(self, ns: str) -> dict[str, Any]:
        try:
            rows = self.db.execute("SELECT input, value FROM offsets WHERE ns = ?",
                                   (ns,)).fetchall()
        except sqlite3.Error as exc:
            raise self._failed("reading input offsets", exc) from exc
        return {k: json.loads(v) for k, v in rows}

    def commit(self, batch: Batch) -> set[int]:
        # Single writer: the in-memory cache is authoritative, so every claim holds.
        if batch.empty():
            return set()
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            if batch.identities:
                db.executemany(
                    "INSERT INTO identities (id, first_seen, last_seen) VALUES (?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET first_seen = min(first_seen, excluded.first_seen),"
                    " last_seen = max(last_seen, excluded.last_seen)",
                    [(i, f, last) for i, (f, last) in batch.identities.items()],
                )
            # Evictions first: a path evicted then read again in the batch is re-added.
            if batch.evicted:
                db.executemany(
                    "DELETE FROM known_paths WHERE id = ? AND path = ?",
                    [(i, p) for i, paths in batch.evicted.items() for p in paths],
                )
            if batch.paths:
                db.executemany(
                    "INSERT INTO known_paths (id, path, last_seen) VALUES (?, ?, ?) "
                    "ON CONFLICT(id, path) DO UPDATE SET last_seen = "
                    "max(last_seen, excluded.last_seen)",
                    [(i, p, t) for i, paths in batch.paths.items() for p, t in paths.items()],
                )
            puts = [(ns, k, v if v.__class__ is bytes else _encode(v))
                    for (ns, k), v in batch.kv.items() if v is not None]
            dels = [(ns, k) for (ns, k), v in batch.kv.items() if v is None]
            # Deletions first (a key is put or deleted, not both): the pages they free are
            # reused by the puts instead of new ones written to the WAL (the stream's window
            # runs, stream/records.py, delete about as many records as they write).
            if dels:
                db.executemany("DELETE FROM kv WHERE ns = ? AND key = ?", dels)
            if puts:
                db.executemany(
                    "INSERT INTO kv (ns, key, value) VALUES (?, ?, ?) "
                    "ON CONFLICT(ns, key) DO UPDATE SET value = excluded.value", puts)
            if batch.offsets:
                db.executemany(
                    "INSERT INTO offsets (ns, input, value) VALUES (?, ?, ?) "
                    "ON CONFLICT(ns, input) DO UPDATE SET value = excluded.value",
                    [(batch.offsets_ns, k, json.dumps(v)) for k, v in batch.offsets.items()],
                )
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the commit's own error is the one to report
            if isinstance(exc, sqlite3.Error):
                raise self._failed("committing", exc) from exc
            raise
        return set()

    def stats(self) -> dict[str, int]:
        try:
            return {
                "identities": self.db.execute("SELECT count(*) FROM identities").fetchone()[0],
                "known_paths": self.db.execute("SELECT count(*) FROM known_paths").fetchone()[0],
            }
        except sqlite3.Error as exc:
            raise self._failed("counting", exc) from exc

    def close(self) -> None:
        self.db.close()
