"""The SQLite table the embedded engine queries: one row per normalized event, one column per
schema field, named by its dotted path (`secret.path`), which is how pySigma's SQLite backend
addresses fields (it quotes non-identifier names with backticks).

Column types follow `event.yml` so Sigma comparisons behave as on the targets:
- keyword/text/ip/date: TEXT COLLATE NOCASE (Sigma string matching is case-insensitive);
- long: INTEGER (a TEXT column would turn `vault.token_ttl|gt: 86400` into a string compare);
- boolean: the strings 'true'/'false' (the backend accepts both those and 1/0);
- keyword[]: a JSON array, matched element-wise by `backend.SecretSightSQLiteBackend`;
- object: JSON text (not matched by rules).
Private columns: `_id` (INTEGER PRIMARY KEY, the event id correlations report), `_ts` (Unix
seconds, REAL, so windows never parse RFC 3339 strings in SQL) and `_rank` (dedupe preference).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from secretsight import schema as _schema

TABLE = "events"
ID_COLUMN = "_id"
TS_COLUMN = "_ts"
RANK_COLUMN = "_rank"  # which duplicate of one request to keep (see engine.dedupe)
_STAGE_RANK = {"ResponseComplete": 3, "Panic": 3, "ResponseStarted": 2, "RequestReceived": 1}

_SQL_TYPE = {
    "long": "INTEGER",
    "boolean": "TEXT",
    "keyword[]": "TEXT",
    "object": "TEXT",
}


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def schema_columns() -> dict[str, str]:
    """Field name -> schema type, in schema order."""
    return {name: f.type for name, f in _schema.load().fields.items()}


def list_fields() -> frozenset[str]:
    return frozenset(n for n, t in schema_columns().items() if t == "keyword[]")


def create(conn: sqlite3.Connection, *, temp: bool = False) -> list[str]:
    """Create the events table (a TEMP one shadows the main one for unqualified names)."""
    columns = schema_columns()
    defs = [f"{quote(ID_COLUMN)} INTEGER PRIMARY KEY", f"{quote(TS_COLUMN)} REAL",
            f"{quote(RANK_COLUMN)} INTEGER"]
    for name, ftype in columns.items():
        defs.append(f"{quote(name)} {_SQL_TYPE.get(ftype, 'TEXT COLLATE NOCASE')}")
    conn.execute(f"CREATE {'TEMP ' if temp else ''}TABLE {TABLE} ({', '.join(defs)})")
    return list(columns)


def parse_zoned_ts(value: Any) -> float | None:
    """RFC 3339 (any fraction length, `Z` or offset) -> Unix seconds; None when unparsable or
    without a zone (the schema requires one; `detect.events.parse_ts` reads a naive time as
    UTC instead, for live streams)."""
    if not isinstance(value, str) or len(value) < 19:
        return None
    moment: datetime | None
    try:  # the common case: at most 6 fraction digits (Python 3.11 reads `Z` itself)
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = _parse_slow(value)
        if moment is None:
            return None
    if moment.tzinfo is None:
        return None
    return moment.timestamp()


def _parse_slow(value: str) -> datetime | None:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # fromisoformat accepts 1-6 fraction digits; trim nanoseconds.
    dot = text.find(".", 19)
    if dot != -1:
        end = dot + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        text = text[: min(end, dot + 7)] + text[end:]
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _cell(ftype: str, value: Any) -> Any:
    if value is None:
        return None
    if ftype == "keyword[]":
        return json.dumps(value if isinstance(value, list) else [value])
    if ftype == "boolean":
        return "true" if value else "false"
    if ftype == "object":
        return json.dumps(value, sort_keys=True)
    if ftype == "long":
        return value if isinstance(value, int) else None
    return value if isinstance(value, str) else str(value)


def _flatten(event: dict[str, Any], out: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    for key, value in event.items():
        if type(value) is dict:
            _flatten(value, out, f"{prefix}{key}.")
        else:
            out[prefix + key] = value
    return out


def rows(
    events: Iterable[dict[str, Any]],
    start_id: int,
    observe: Callable[[dict[str, Any], float | None], None] | None = None,
) -> Iterator[tuple[tuple[str, ...], tuple[Any, ...]]]:
    """Normalized (nested) events -> (columns present, values) pairs; `observe(event, ts)` sees
    each event with its parsed time (the streaming detectors use it).

    Only the columns an event carries are bound: an event sets ~20 of the schema's ~75 fields,
    and binding NULLs was most of the load time. Dotted keys given flat (`{"secret.path": ...}`)
    are accepted too (a few producers emit them that way). Fields outside the schema are ignored.
    """
    columns = schema_columns()
    # Only non-string types need converting; strings go through as they are (the hot path).
    special = {name: ftype for name, ftype in columns.items() if ftype in _SQL_TYPE}
    known = set(columns)
    next_id = start_id
    for event in events:
        flat = _flatten(event, {})
        for name, ftype in special.items():
            value = flat.get(name)
            if value is not None:
                flat[name] = _cell(ftype, value)
        # The event's own key order: events of one normalizer share it, so INSERT shapes repeat.
        present = tuple(k for k, v in flat.items() if v is not None and k in known)
        entry = flat.get("vault.entry_type")
        if entry is not None:
            rank = 2 if entry == "response" else 1
        else:
            rank = _STAGE_RANK.get(flat.get("kubernetes.stage"), 0)  # type: ignore[arg-type]
        ts = parse_zoned_ts(flat.get("@timestamp"))
        if observe is not None:
            observe(event, ts)
        yield present, (next_id, ts, rank, *[flat[n] for n in present])
        next_id += 1


def insert_sql(present: tuple[str, ...]) -> str:
    names = [ID_COLUMN, TS_COLUMN, RANK_COLUMN, *present]
    return (
        f"INSERT INTO {TABLE} ({', '.join(quote(n) for n in names)}) "
        f"VALUES ({', '.join('?' for _ in names)})"
    )


def row_to_event(columns: list[str], row: tuple[Any, ...]) -> dict[str, Any]:
    """A table row (schema columns only, in `columns` order) back to a nested event."""
    types = schema_columns()
    out: dict[str, Any] = {}
    for name, value in zip(columns, row, strict=True):
        if value is None:
            continue
        ftype = types.get(name)
        if ftype == "keyword[]" or ftype == "object":
            value = json.loads(value)
        elif ftype == "boolean":
            value = value == "true"
        if name == "@timestamp":
            out[name] = value
            continue
        node = out
        parts = name.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out
