"""The Vault normalizer's cells (`vault_cells`, what `scan` loads without building or walking
the event): the same outcome as `vault_record` for every bad line, cells that are exactly the
event's leaves as the table stores them, so `engine.table` stores the same row either way,
and the event made of that row is the normalized event."""

from __future__ import annotations

import json
import math
import sqlite3
from typing import Any

import pytest
from support.golden_pairs import CASES, GoldenCase

from secretsight.engine import Engine, table
from secretsight.normalize import DeadLetter, Stats, detect_source, iter_files, strict_loads
from secretsight.normalize.vault import CELLS, vault_cells, vault_record


def _vault_object(case: GoldenCase) -> dict[str, Any] | None:
    """The parsed line when it is one Vault entry, else None."""
    try:
        obj = strict_loads(case.raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if type(obj) is not dict:
        return None
    source = detect_source(obj) if case.source == "auto" else case.source
    return obj if source == "vault" else None


VAULT_CASES = [pytest.param(c, id=c.test_id) for c in CASES if _vault_object(c) is not None]


def _leaves(event: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted name -> leaf value (lists kept whole)."""
    out: dict[str, Any] = {}
    for key, value in event.items():
        if type(value) is dict:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _stored(value: Any) -> Any:
    """A leaf as the table stores it (`normalize.cells`): NULL for absent, lists as JSON."""
    if value is None:
        return table.NULL
    return json.dumps(value) if type(value) is list else value


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Equal tuples, a NaN (NULL) equal to a NaN; the types too (1 is not 1.0 or True)."""
    return len(a) == len(b) and all(
        (x != x and y != y) or (type(x) is type(y) and x == y) for x, y in zip(a, b, strict=True))


def _outcome(fn: Any, obj: dict[str, Any]) -> Any:
    try:
        return fn(obj)
    except DeadLetter as dl:
        return ("dead_letter", dl.code)


def test_there_are_vault_cases() -> None:
    assert len(VAULT_CASES) > 20


@pytest.mark.parametrize("case", VAULT_CASES)
def test_cells_are_the_events_leaves(case: GoldenCase) -> None:
    obj = _vault_object(case)
    assert obj is not None
    plain = _outcome(vault_record, obj)
    celled = _outcome(vault_cells, obj)
    if type(plain) is not dict:  # a skip or a dead letter: the same one
        assert celled == plain
        return
    fields, cells = celled
    assert fields is CELLS
    assert len(cells) == len(CELLS)
    leaves = _leaves(plain)
    assert set(leaves) <= set(CELLS)  # every field the event sets has its cell
    assert _same(cells, tuple(_stored(leaves.get(name)) for name in CELLS))
    assert all(type(c) is not float or c != c for c in cells)  # the only float: NULL


def test_cells_are_schema_fields_once() -> None:
    assert len(set(CELLS)) == len(CELLS)
    assert set(CELLS) <= set(table.schema_columns())


def _bound(rows: list[table.Row]) -> list[dict[str, Any]]:
    """Each row as column -> value, without its NULLs (None, or the NaN a fixed row binds)."""
    out = []
    for present, values, key in rows:
        cells = dict(zip((table.ID_COLUMN, table.TS_COLUMN, table.RANK_COLUMN, *present),
                         values, strict=True))
        out.append({name: v for name, v in cells.items()
                    if v is not None and not (type(v) is float and math.isnan(v))} | {"key": key})
    return out


def test_the_rows_of_cells_are_the_rows_of_the_walked_events(tmp_path: Any) -> None:
    """Every Vault golden case in one log: the rows `table.rows` makes of the cells and of the
    events, and the table each loads, are the same (unparsable times included)."""
    log = tmp_path / "vault.log"
    log.write_bytes(b"".join(c.values[0].raw.rstrip(b"\n") + b"\n" for c in VAULT_CASES))
    walked = list(table.rows(iter_files([log], "vault", Stats()), 1))
    celled = list(iter_files([log], "vault", Stats(), cells=True))
    assert celled and all(type(item) is tuple and item[0] is CELLS for item in celled)
    assert _bound(list(table.rows(celled, 1))) == _bound(walked)
    dump = f"SELECT * FROM {table.TABLE} ORDER BY {table.ID_COLUMN}"
    tables = []
    for events in (iter_files([log], "vault", Stats()),
                   iter_files([log], "vault", Stats(), cells=True)):
        engine = Engine()
        engine.load(events)
        tables.append((engine.conn.execute(dump).fetchall(), engine.state()))
        engine.close()
    assert tables[0] == tables[1]


def test_the_event_made_of_a_fixed_row_is_the_normalized_event(tmp_path: Any) -> None:
    """What the load worker feeds its detectors instead of the event itself: the same
    event, and `row_to_event` of the row as the table stores it."""
    log = tmp_path / "vault.log"
    log.write_bytes(b"".join(c.values[0].raw.rstrip(b"\n") + b"\n" for c in VAULT_CASES))
    events = list(iter_files([log], "vault", Stats()))
    celled = list(iter_files([log], "vault", Stats(), cells=True))
    make = table.event_maker(CELLS)
    engine = Engine()
    columns = ", ".join(table.quote(c) for c in engine.columns)
    observed: list[dict[str, Any]] = []
    rows = table.rows(celled, 1, lambda event, ts, key: observed.append(event))
    for event, (present, values, _) in zip(events, rows, strict=True):
        assert make(values) == event
        engine.conn.execute(table.insert_sql(present), values)
        stored = engine.conn.execute(f"SELECT {columns} FROM {table.TABLE} WHERE _id = ?",
                                     (values[0],)).fetchone()
        assert table.row_to_event(engine.columns, stored) == event
    assert observed == events  # what `rows` hands its observer: the event of the row
    with pytest.raises(ValueError, match="schema fields"):
        table.event_maker(("@timestamp", "no.such.field"))


def test_a_bound_nan_is_stored_as_null() -> None:
    """What `table.NULL` relies on (SQLite's sqlite3_bind_double), in every column type."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a TEXT COLLATE NOCASE, b INTEGER, c REAL, d)")
    conn.execute("INSERT INTO t VALUES (?, ?, ?, ?)", (table.NULL,) * 4)
    assert conn.execute("SELECT typeof(a), typeof(b), typeof(c), typeof(d) FROM t").fetchall() \
        == [("null",) * 4]


def test_fixed_rows_refuse_what_is_not_a_set_of_schema_fields() -> None:
    builder = table.RowBuilder()
    with pytest.raises(ValueError, match="schema fields"):
        builder.fixed(("@timestamp", "no.such.field"))
    with pytest.raises(ValueError, match="schema fields"):
        builder.fixed(("@timestamp", "event.id", "event.id"))
    with pytest.raises(ValueError, match="@timestamp"):
        builder.fixed(("event.id",))


def _entry(n: int, **auth: Any) -> dict[str, Any]:
    return {"time": f"2026-05-09T10:00:0{n}Z", "type": "response", "auth": auth,
            "request": {"id": f"r{n}", "operation": "read", "path": "kv/app/db"}}


@pytest.mark.parametrize(("ttl", "changed", "code"), [
    (3600, {"token_ttl": 3600.0}, "wrong_type"),  # equal to 3600, not an integer
    (1, {"token_ttl": True}, "wrong_type"),  # equal to 1, a boolean
    (1, {"token_ttl": 1.0}, "wrong_type"),
    (3600, {"token_ttl": 60}, None),
    (3600, {"policies": ["default", 7]}, "wrong_type"),
    (3600, {"metadata": {"role": 1}}, "wrong_type"),
    (3600, {"metadata": {"role": "other", "team": [1]}}, None),
    (3600, {"policies": ["b", "a", "a"]}, None),
    (3600, {"token_policies": ["default", "x"]}, None),
    (3600, {"display_name": ""}, None),
    (3600, {"entity_id": None}, None),
])
def test_a_token_whose_auth_block_changes_gets_the_cells_of_the_new_one(
        ttl: int, changed: dict[str, Any], code: str | None) -> None:
    """The auth block's cells are memoized per accessor (a token repeats its block): a block
    that differs, or is equal only as numbers are (3600.0 == 3600), is checked again."""
    first = {"accessor": f"acc-memo-{ttl}", "display_name": "svc", "entity_id": "ent",
             "policies": ["default"], "token_policies": ["default"], "token_type": "service",
             "token_ttl": ttl, "metadata": {"role": "app"}}
    for n, auth in enumerate((first, first | changed, first)):
        entry = _entry(n, **auth)
        plain = _outcome(vault_record, entry)
        if n == 1 and code is not None:
            assert plain == ("dead_letter", code)
            assert _outcome(vault_cells, entry) == plain
            continue
        fields, cells = _outcome(vault_cells, entry)
        leaves = _leaves(plain)
        assert _same(cells, tuple(_stored(leaves.get(name)) for name in fields)), (n, auth)


def test_a_token_repeating_its_auth_block_gets_the_fields_of_a_fresh_read() -> None:
    """vault_record memoizes the auth block per accessor too (`_auth_parts`): a repeat gives
    the event a first read gives, and no two events share a list or the metadata (an
    event's consumer may change its own)."""
    from secretsight.normalize import vault

    auth = {"accessor": "acc-event-memo", "display_name": "svc", "entity_id": "ent",
            "policies": ["b", "a"], "token_policies": ["a", "b"], "identity_policies": ["i"],
            "token_type": "service", "token_ttl": 60, "metadata": {"role": "app", "x": [1]}}
    vault._auth_memo_event.clear()
    first = vault_record(_entry(1, **auth))
    second = vault_record(_entry(1, **json.loads(json.dumps(auth))))  # equal, not the same
    vault._auth_memo_event.clear()
    fresh = vault_record(_entry(1, **auth))
    assert first == second == fresh
    assert isinstance(first, dict) and isinstance(second, dict)
    assert first["user"]["roles"] is not second["user"]["roles"]
    for key in ("token_policies", "identity_policies", "auth"):
        assert first["vault"][key] is not second["vault"][key], key
    assert first["vault"]["auth"]["metadata"] is not second["vault"]["auth"]["metadata"]
    first["user"]["roles"].append("changed")
    assert vault_record(_entry(1, **auth)) == fresh


def test_an_auth_block_nested_too_deep_to_compare_is_read_again() -> None:
    """The memos compare a repeated auth block with the one they keep: an unread metadata value
    nested deeper than Python compares (orjson parses up to 1,024 levels) must not fail the
    entry; it is read again."""
    deep = "1"
    for _ in range(1000):
        deep = '{"a":' + deep + "}"
    line = ('{"time":"2026-05-09T10:00:01Z","type":"response","auth":{"accessor":"acc-deep",'
            '"metadata":{"role":"r","x":' + deep + '}},"request":{"id":"r1","operation":"read",'
            '"path":"kv/a"}}')
    for fn in (vault_record, vault_cells):
        first, second = fn(strict_loads(line)), fn(strict_loads(line))
        assert first == second and not isinstance(first, str)
