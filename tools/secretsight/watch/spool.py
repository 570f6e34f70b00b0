"""The findings spool: a small SQLite file where every finding bound for an HTTP output waits
until the receiver acknowledges it (a 2xx), so a receiver that is down, slow or hanging costs
neither findings nor ingest time.

Policy (docs/watch.md): at-least-once. A finding leaves the spool only after a 2xx for the POST
that carried it; a run stopped or killed before that leaves it for the next run, which sends it
first. When an output's spool holds `max_findings`, adding more drops the OLDEST (counted as
`dropped`): during a long outage the newest evidence is the most useful. The file is created
0600 (findings name identities and paths).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, output TEXT NOT NULL, finding BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS spool_output ON spool (output, seq);
"""


def create_private(path: str) -> None:
    """Create `path` empty with mode 0600 unless it exists (SQLite would create it 0644)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


class Spool:
    """Thread-safe: the watch loop adds, an output's sender thread takes and removes."""

    def __init__(self, path: str | None) -> None:
        self.path = path or ":memory:"
        if path:
            create_private(path)
        self.lock = threading.Lock()
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        if path:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    def add(self, output: str, findings: list[bytes], max_findings: int) -> int:
        """Append; returns how many old findings were dropped to stay within max_findings."""
        with self.lock:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT INTO spool (output, finding) VALUES (?, ?)",
                               [(output, f) for f in findings])
                (n,) = db.execute("SELECT count(*) FROM spool WHERE output = ?",
                                  (output,)).fetchone()
                drop = max(0, n - max_findings)
                if drop:
                    db.execute("DELETE FROM spool WHERE seq IN (SELECT seq FROM spool WHERE "
                               "output = ? ORDER BY seq LIMIT ?)", (output, drop))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return drop

    def take(self, output: str, limit: int) -> list[tuple[int, bytes]]:
        """The oldest findings of `output` (not removed)."""
        with self.lock:
            return self.db.execute("SELECT seq, finding FROM spool WHERE output = ? "
                                   "ORDER BY seq LIMIT ?", (output, limit)).fetchall()

    def remove(self, seqs: list[int]) -> None:
        with self.lock:
            self.db.executemany("DELETE FROM spool WHERE seq = ?", [(s,) for s in seqs])

    def depth(self, output: str) -> int:
        with self.lock:
            return int(self.db.execute("SELECT count(*) FROM spool WHERE output = ?",
                                       (output,)).fetchone()[0])

    def close(self) -> None:
        with self.lock:
            self.db.close()
