"""The embedded replay engine: normalized events into SQLite, every Sigma rule (plain and
correlation) evaluated there with pySigma's SQLite backend 2.0.0, results turned into `Finding`s.

    engine = Engine(config)
    engine.load(events)            # normalized events (nested dicts), any order
    engine.dedupe()                # one row per (event.dataset, event.id)
    findings = engine.run(ruleset) # a `secretsight.rules.RuleSet` or a pySigma SigmaCollection
    engine.matches(ruleset)        # plain rule name -> matched event.ids (cross-checks)

`secretsight.engine.replay.replay()` is the whole batch pipeline (engine + detectors).

Why SQLite (and not pySigma's DuckDB backend): the SQLite backend 2.0.0 compiles Sigma v2
correlations into a plan of window-function stages with true sliding windows
(`RANGE BETWEEN <span> PRECEDING`), while the DuckDB backend ignores the correlation timespan;
see tools/secretsight/engine/README.md for the measurements.

Grouping (decided here, relied on by the scenario expectations):
- a plain rule yields one finding per (rule, user.id, burst): matches of one identity separated
  by at most `PLAIN_BURST_GAP` belong to the same finding;
- a correlation rule yields one finding per (rule, group-by value, burst): the backend reports
  every qualifying sliding window; overlapping windows of one group are merged, so a 5-minute
  harvest is one finding, not hundreds. The identity is the group-by value.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from secretsight.config import Config
from secretsight.engine import table
from secretsight.engine.dedupe import dedupe
from secretsight.engine.evaluate import PLAIN_BURST_GAP, RuleEvaluator
from secretsight.errors import SecretSightError
from secretsight.findings import Finding

__all__ = ["PLAIN_BURST_GAP", "Engine", "dedupe"]


class Engine:
    def __init__(self, config: Config | None = None, *, database: str = ":memory:",
                 create: bool = True):
        """`create=False`: the events table already is in the `database` file, loaded by
        another process (`engine.tap.LoadProcess`), which hands over its counts (`adopt`)."""
        self.config = config or Config()
        self.conn = sqlite3.connect(database)
        self.columns = table.create(self.conn) if create else list(table.schema_columns())
        self._inserts: dict[tuple[str, ...], str] = {}
        self._keys: set[int] = set()
        self._maybe_duplicates = False
        self._keys_unknown = False  # rows adopted: their dedupe keys stayed in their process
        self.count = 0
        self.bad_timestamps = 0
        # Rule conversion/execution problems, collected (a bad rule never stops the others).
        self.errors: list[SecretSightError] = []
        self.timings: dict[str, float] = {}  # last run: rule name -> seconds

    def load(
        self,
        events: Iterable[dict[str, Any] | table.Celled],
        *,
        batch: int = 20_000,
        observe: Callable[[dict[str, Any], float | None, int | None], None] | None = None,
    ) -> int:
        """Insert normalized events (or `table.Celled` ones: a normalizer's cells of an
        event, `normalize.iter_files(cells=True)`); returns how many were loaded by this call.
        `observe(event, ts, key)` is called for each event (made of its row when given as
        cells), in input order, as it is read (`key`: the hash of (event.dataset, event.id),
        None without an id)."""
        return self.load_rows(table.rows(events, self.next_id, observe), batch=batch)

    @property
    def next_id(self) -> int:
        """The `_id` the next loaded event gets."""
        return self.count + 1

    def load_rows(self, rows: Iterable[table.Row], *, batch: int = 20_000) -> int:
        """Insert rows as `table.rows` makes them (numbered from `next_id`, in order), built
        here or by another process (`engine.tap.LoadProcess`); returns how many."""
        loaded = 0
        pending: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        waiting = 0
        seen = self._keys
        shape: tuple[str, ...] | None = None
        same: list[tuple[Any, ...]] = []
        for present, values, key in rows:
            if values[1] is None:
                self.bad_timestamps += 1
            # (dataset, id) hashes: when none repeats, dedupe() has nothing to do.
            if key is not None:
                if key in seen:
                    self._maybe_duplicates = True
                seen.add(key)
            if present is not shape:  # a fixed shape (`table.Celled`) is one object: no hash
                shape = present
                same = pending.setdefault(present, [])
            same.append(values)
            waiting += 1
            if waiting >= batch:
                loaded += self._flush(pending)
                waiting, shape = 0, None
        loaded += self._flush(pending)
        self.count += loaded
        if loaded and self._keys_unknown:  # a key of the adopted rows may repeat: check
            self._maybe_duplicates = True
        return loaded

    def state(self) -> tuple[int, int, bool]:
        """What another process's engine on the same file takes over (`adopt`)."""
        return self.count, self.bad_timestamps, self._maybe_duplicates

    def adopt(self, state: tuple[int, int, bool]) -> None:
        """Take over the counts of the engine that loaded this file (its `state()`)."""
        self.count, self.bad_timestamps, self._maybe_duplicates = state
        self._keys_unknown = self.count > 0

    def _flush(self, pending: dict[tuple[str, ...], list[tuple[Any, ...]]]) -> int:
        # Events of one source share their set of fields: one INSERT shape per set.
        done = 0
        for present, values in pending.items():
            sql = self._inserts.get(present)
            if sql is None:
                sql = self._inserts[present] = table.insert_sql(present)
            self.conn.executemany(sql, values)
            done += len(values)
        pending.clear()
        return done

    def dedupe(self) -> int:
        """Keep one row per (`event.dataset`, `event.id`), the most informative (see
        `engine.dedupe`); returns how many rows were removed. Done in SQL so a scan never holds
        its events in Python memory."""
        if not self._maybe_duplicates:
            return 0
        ds, eid = table.quote("event.dataset"), table.quote("event.id")
        before = self.conn.total_changes
        self.conn.execute(
            f"DELETE FROM {table.TABLE} WHERE {table.quote(table.ID_COLUMN)} IN ("
            f"SELECT _id FROM (SELECT {table.quote(table.ID_COLUMN)} AS _id, ROW_NUMBER() OVER ("
            f"PARTITION BY {ds}, {eid} ORDER BY {table.quote(table.RANK_COLUMN)} DESC, "
            f"{table.quote(table.ID_COLUMN)}) AS n FROM {table.TABLE} WHERE {eid} IS NOT NULL) "
            f"WHERE n > 1)"
        )
        removed = self.conn.total_changes - before
        self.count -= removed
        return removed

    def iter_events(self, batch: int = 5000) -> Iterator[dict[str, Any]]:
        """The loaded events as nested dicts, in `@timestamp` order (unparsable times last)."""
        cols = ", ".join(table.quote(c) for c in self.columns)
        cursor = self.conn.execute(
            f"SELECT {cols} FROM {table.TABLE} ORDER BY {table.quote(table.TS_COLUMN)} IS NULL, "
            f"{table.quote(table.TS_COLUMN)}, {table.quote(table.ID_COLUMN)}"
        )
        while True:
            rows = cursor.fetchmany(batch)
            if not rows:
                return
            for row in rows:
                yield table.row_to_event(self.columns, row)

    def run(self, ruleset: Any, *, jobs: int = 2) -> list[Finding]:
        """Evaluate every rule of `ruleset`; findings sorted by window start, then rule.
        `jobs` 2: on a database file, half of the rules run in a forked process."""
        evaluator = RuleEvaluator(self.conn, self.columns, self.config, jobs=jobs)
        findings = evaluator.run(ruleset)
        self.errors.extend(evaluator.errors)
        self.timings = evaluator.timings
        return findings

    def matches(self, ruleset: Any) -> dict[str, set[str]]:
        """Plain rule name (building blocks included) -> `event.id`s of the events it matches.
        For cross-checking the SQLite translation against other engines (EQL)."""
        from secretsight.engine.evaluate import compiled_for

        compiled = compiled_for(ruleset, self.config)
        out: dict[str, set[str]] = {}
        for name, where in compiled.predicates.items():
            rows = self.conn.execute(
                f"SELECT {table.quote('event.id')} FROM {table.TABLE} WHERE {where}"
            )
            out[name] = {r[0] for r in rows}
        return out

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
