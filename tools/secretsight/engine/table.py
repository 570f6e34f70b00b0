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
from secretsight.normalize.cells import LONG_MAX, LONG_MIN, list_cell
from secretsight.normalize.cells import NULL as NULL  # re-exported: what a fixed row binds

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


# How a leaf becomes a cell, by schema type (codes, so the per-leaf dispatch is one compare).
_TEXT, _LIST, _BOOL, _OBJECT, _LONG = range(5)
_CODE = {"keyword[]": _LIST, "boolean": _BOOL, "object": _OBJECT, "long": _LONG}
_LIST_CACHE_MAX = 50_000  # distinct list cells kept encoded (a few MB)

# A schema tree: key -> (leaf, child). leaf = (column name, code) when the dotted path ending
# here is a column; child = the subtree when longer paths continue through it.
_Node = dict[str, tuple[tuple[str, int] | None, "dict[str, Any] | None"]]


def _tree(columns: dict[str, str]) -> _Node:
    root: _Node = {}
    for name, ftype in columns.items():
        node = root
        parts = name.split(".")
        for part in parts[:-1]:
            leaf, child = node.get(part, (None, None))
            if child is None:
                child = {}
                node[part] = (leaf, child)
            node = child
        _, child = node.get(parts[-1], (None, None))
        node[parts[-1]] = ((name, _CODE.get(ftype, _TEXT)), child)
    return root


_SHAPES_MAX = 256  # compiled key orders kept per schema node (events of one normalizer share a few)


class RowBuilder:
    """Normalized (nested) events -> table rows in ONE walk of each event along the schema tree:
    no flattened copy of the event, no name built per leaf, each leaf converted where it is met.
    A list cell is encoded once per distinct value (events of one token repeat its policies).

    The walk is compiled: for each key order met at a schema node (events of one normalizer
    repeat a few), a small function reads the dict's values in one unpacking and stores each
    schema leaf under its column name, with the conversion its type needs, calling the compiled
    function of each nested object; `_walk` is what every compiled function does, key by key
    (and what a node with too many key orders falls back to). Same cells, about a quarter
    less CPU (engine/README.md, Speed)."""

    def __init__(self) -> None:
        columns = schema_columns()
        self._root = _tree(columns)
        self._codes = {name: _CODE.get(ftype, _TEXT) for name, ftype in columns.items()}
        self._lists: dict[tuple[Any, ...], str] = {}
        self._root_shapes: dict[tuple[Any, ...], Callable[[dict[str, Any], dict[str, Any]], bool]]
        self._root_shapes = {}
        self._shapes: dict[int, dict[tuple[Any, ...], Any]] = {}  # id(node) -> its walks
        self._fixed: dict[tuple[str, ...], Any] = {}  # `fixed`: fields -> row maker

    def cells(self, event: dict[str, Any]) -> dict[str, Any]:
        """Column name -> cell value for the columns `event` sets, in the event's key order
        (events of one normalizer share it, so INSERT shapes repeat). None values are left out."""
        out: dict[str, Any] = {}
        keys = tuple(event)
        walk = self._root_shapes.get(keys)
        if walk is None:
            walk = self._shape(self._root, "", keys, self._root_shapes)
        if walk(event, out):
            return {k: v for k, v in out.items() if v is not None}
        return out

    def _shape(
        self, node: _Node, prefix: str, keys: tuple[Any, ...],
        shapes: dict[tuple[Any, ...], Callable[[dict[str, Any], dict[str, Any]], bool]],
    ) -> Callable[[dict[str, Any], dict[str, Any]], bool]:
        """The compiled walk of a dict with these keys, in this order, at `node` (cached)."""
        if len(shapes) >= _SHAPES_MAX or not all(type(k) is str for k in keys):
            def generic(d: dict[str, Any], out: dict[str, Any]) -> bool:
                return self._walk(d, node, prefix, out)
            return generic  # not cached: any number of shapes, the generic walk
        walk = shapes[keys] = self._compile(node, prefix, keys)
        return walk

    def _compile(
        self, node: _Node, prefix: str, keys: tuple[str, ...]
    ) -> Callable[[dict[str, Any], dict[str, Any]], bool]:
        """Python source for `_walk` of one key order, unrolled. Names and keys are never
        pasted into the source: they are constants of its namespace (keys come from input)."""
        space: dict[str, Any] = {"dict": dict, "str": str, "isinstance": isinstance,
                                 "convert": self._convert, "dotted": self._dotted}
        body: list[str] = []
        for i, key in enumerate(keys):
            v = f"v{i}"
            entry = node.get(key)
            if entry is None:
                if "." in key:  # a dotted key given flat (`{"secret.path": ...}`)
                    space[f"n{i}"] = prefix + key
                    body.append(f"    nones |= dotted(n{i}, {v}, out)")
                continue
            leaf, child = entry
            if child is not None:
                # one cache per schema node, shared by its parents' walks: at most
                # _SHAPES_MAX compiled walks per node, whatever the input
                shapes = self._shapes.setdefault(id(child), {})
                space[f"s{i}"] = shapes
                space[f"m{i}"] = lambda d, c=child, p=f"{prefix}{key}.", s=shapes: self._shape(
                    c, p, tuple(d), s)
                body.append(f"    if {v}.__class__ is dict:")
                body.append(f"        nones |= (s{i}.get(tuple({v})) or m{i}({v}))({v}, out)")
                if leaf is None:
                    continue
                body.append("    else:")
                body.extend("        " + line for line in _leaf_source(i, leaf[1]))
            elif leaf is not None:
                if leaf[1] == _OBJECT:
                    body.extend("    " + line for line in _leaf_source(i, leaf[1]))
                else:  # an object where the schema has none: nothing to store
                    body.append(f"    if {v}.__class__ is not dict:")
                    body.extend("        " + line for line in _leaf_source(i, leaf[1]))
            if leaf is not None:
                space[f"n{i}"] = leaf[0]
                space[f"c{i}"] = leaf[1]
        unpack = ", ".join(f"v{i}" for i in range(len(keys)))
        source = "\n".join([
            "def walk(d, out):",
            "    nones = False",
            *([f"    {unpack}, = d.values()"] if keys else []),
            *body,
            "    return nones",
        ])
        exec(compile(source, f"<row walk {prefix or 'event'}>", "exec"), space)  # noqa: S102
        walk: Callable[[dict[str, Any], dict[str, Any]], bool] = space["walk"]
        return walk

    def fixed(
        self, fields: tuple[str, ...]
    ) -> Callable[[tuple[Any, ...], int], tuple[tuple[Any, ...], float | None, int | None]]:
        """The row maker of cells given in `fields` order (`rows`' `Celled` items, each cell as
        the table stores it: `normalize.cells`): values -> (the row `rows` would make of the
        event, its time, its dedupe key), the row's id given. Compiled once per set of fields;
        the row is the cells behind the id, the time and the rank, so nothing is converted."""
        made = self._fixed.get(fields)
        if made is not None:
            return made
        unknown = [name for name in fields if name not in self._codes]
        if unknown or len(set(fields)) != len(fields):
            raise ValueError(f"not a set of schema fields: {unknown or fields}")
        at = {name: i for i, name in enumerate(fields)}
        if "@timestamp" not in at:
            raise ValueError("cells without @timestamp")

        def cell(name: str) -> str:  # the cell as a value, None when NULL (a NaN: not equal)
            return f"(c if (c := values[{at[name]}]) == c else None)" if name in at else "None"

        space: dict[str, Any] = {"parse": parse_zoned_ts, "stage_rank": _STAGE_RANK.get}
        if "vault.entry_type" in at:  # as `rows` ranks a walked event
            rank = (f"(1 if e != 'response' else 2) if (e := {cell('vault.entry_type')}) "
                    f"is not None else stage_rank({cell('kubernetes.stage')}, 0)")
        elif "kubernetes.stage" in at:
            rank = f"stage_rank({cell('kubernetes.stage')}, 0)"
        else:
            rank = "0"
        source = "\n".join([
            "def row(values, next_id):",
            f"    ts = parse(values[{at['@timestamp']}])",
            f"    key = None if (i := {cell('event.id')}) is None else "
            f"hash(({cell('event.dataset')}, i))",
            f"    return (next_id, ts, {rank}, *values), ts, key",
        ])
        exec(compile(source, "<fixed row>", "exec"), space)  # noqa: S102
        made = self._fixed[fields] = space["row"]
        return made  # type: ignore[no-any-return]

    def _walk(self, event: dict[str, Any], node: _Node, prefix: str, out: dict[str, Any]) -> bool:
        """Fill `out`; True when a None was stored (the caller then filters)."""
        nones = False
        for key, value in event.items():
            entry = node.get(key)
            if entry is None:
                if "." in key:  # a dotted key given flat (`{"secret.path": ...}`)
                    nones |= self._dotted(prefix + key, value, out)
                continue
            leaf, child = entry
            if type(value) is dict:
                if child is not None:
                    nones |= self._walk(value, child, f"{prefix}{key}.", out)
                    continue
                if leaf is None or leaf[1] != _OBJECT:
                    continue  # an object where the schema has none: nothing to store
            if leaf is None:
                continue
            name, code = leaf
            if value is None:
                out[name] = None
                nones = True
            elif code == _TEXT:
                out[name] = value if type(value) is str else (
                    value if isinstance(value, str) else str(value))
            else:
                cell = self._convert(code, value)
                out[name] = cell
                nones |= cell is None
        return nones

    def _dotted(self, name: str, value: Any, out: dict[str, Any]) -> bool:
        if type(value) is dict and self._codes.get(name) != _OBJECT:
            nones = False
            for key, inner in value.items():
                nones |= self._dotted(f"{name}.{key}", inner, out)
            return nones
        code = self._codes.get(name)
        if code is None:
            return False
        if value is None:
            out[name] = None
            return True
        cell = (value if isinstance(value, str) else str(value)) if code == _TEXT \
            else self._convert(code, value)
        out[name] = cell
        return cell is None

    def _convert(self, code: int, value: Any) -> Any:
        if code == _LIST:
            items = value if isinstance(value, list) else [value]
            try:
                key = tuple(items)
                cached = self._lists.get(key)
            except TypeError:  # unhashable elements: encode every time
                return list_cell(items)
            if cached is None:
                if len(self._lists) >= _LIST_CACHE_MAX:  # per-event lists (secret ids): bounded
                    self._lists.clear()
                cached = self._lists[key] = list_cell(items)
            return cached
        if code == _LONG:
            # (the normalizers dead-letter a long beyond 64 bits; an event given as a dict by
            # another producer stores it as NULL rather than stop the load)
            return value if isinstance(value, int) and LONG_MIN <= value <= LONG_MAX else None
        if code == _BOOL:
            return "true" if value else "false"
        return json.dumps(value, sort_keys=True)  # _OBJECT


def _leaf_source(i: int, code: int) -> list[str]:
    """`_walk`'s handling of one leaf value `v{i}`, column name `n{i}`, type code `c{i}`."""
    v = f"v{i}"
    lines = [f"if {v} is None:", f"    out[n{i}] = None", "    nones = True"]
    if code == _TEXT:
        lines += ["else:",
                  f"    out[n{i}] = {v} if {v}.__class__ is str else ("
                  f"{v} if isinstance({v}, str) else str({v}))"]
    else:
        lines += ["else:", f"    cell = out[n{i}] = convert(c{i}, {v})", "    nones |= cell is None"]
    return lines


# What a normalizer that made an event's cells yields instead of the event
# (`normalize.reader.iter_files(cells=True)`): (field names, the event's fields in that order,
# each as the table stores it: NULL where it has no such field, see `normalize.cells`).
Celled = tuple[tuple[str, ...], tuple[Any, ...]]
Row = tuple[tuple[str, ...], tuple[Any, ...], int | None]  # (columns bound, values, dedupe key)


def rows(
    events: Iterable[dict[str, Any] | Celled],
    start_id: int,
    observe: Callable[[dict[str, Any], float | None, int | None], None] | None = None,
) -> Iterator[Row]:
    """Normalized (nested) events -> (columns present, values, dedupe key) triples;
    `observe(event, ts, key)` sees each event with its parsed time and dedupe key (the
    streaming detectors use them).
    The dedupe key hashes (`event.dataset`, `event.id`), None without an id.

    Only the columns an event carries are bound: an event sets ~20 of the schema's ~75 fields,
    and binding NULLs was most of the load time. Dotted keys given flat (`{"secret.path": ...}`)
    are accepted too (a few producers emit them that way). Fields outside the schema are ignored.

    An event its normalizer gave as cells (`Celled`) is not walked: its row is those cells
    (`RowBuilder.fixed`), under that fixed set of columns (NULL where the event has no such
    field: the same stored row); `observe` gets the event made of the row (`event_maker`).
    """
    builder = RowBuilder()
    cells = builder.cells
    stage_rank = _STAGE_RANK.get
    next_id = start_id
    fields: tuple[str, ...] | None = None
    make: Callable[[tuple[Any, ...], int], tuple[tuple[Any, ...], float | None, int | None]]
    event_of: Callable[[tuple[Any, ...]], dict[str, Any]]
    for item in events:
        if item.__class__ is tuple:
            names, values = item  # type: ignore[misc]
            if names is not fields:
                fields, make = names, builder.fixed(names)
                event_of = event_maker(names)
            row, ts, key = make(values, next_id)
            if observe is not None:
                observe(event_of(row), ts, key)
            yield names, row, key
            next_id += 1
            continue
        event: dict[str, Any] = item  # type: ignore[assignment]
        flat = cells(event)
        entry = flat.get("vault.entry_type")
        if entry is not None:
            rank = 2 if entry == "response" else 1
        else:
            rank = stage_rank(flat.get("kubernetes.stage"), 0)  # type: ignore[arg-type]
        ts = parse_zoned_ts(flat.get("@timestamp"))
        event_id = flat.get("event.id")
        key = None if event_id is None else hash((flat.get("event.dataset"), event_id))
        if observe is not None:
            observe(event, ts, key)
        yield tuple(flat), (next_id, ts, rank, *flat.values()), key
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



_event_makers: dict[tuple[str, ...], Callable[[tuple[Any, ...]], dict[str, Any]]] = {}
_lists: dict[str, tuple[Any, ...]] = {}  # a list cell's JSON -> its items (cells repeat)


def event_maker(fields: tuple[str, ...]) -> Callable[[tuple[Any, ...]], dict[str, Any]]:
    """`row_to_event` compiled for the rows of one fixed set of columns (`RowBuilder.fixed`:
    `_id`, `_ts`, `_rank`, then `fields`, NULL cells bound as `NULL`): row -> the nested event,
    without its NULL fields. The worker of `engine.tap.LoadProcess` feeds the detectors these
    instead of the events themselves, which then need not cross (the sorted replay feeds
    them `row_to_event`'s too)."""
    made = _event_makers.get(fields)
    if made is not None:
        return made
    types = schema_columns()
    unknown = [name for name in fields if name not in types]
    if unknown:
        raise ValueError(f"not schema fields: {unknown}")
    space: dict[str, Any] = {"loads": json.loads, "lists": _lists, "list": list}
    nodes: dict[str, str] = {"": "out"}  # dotted prefix -> the local holding its dict
    ensure: list[list[str]] = []  # per field: the code that makes its parents' dicts
    for name in fields:
        parts = [name] if name == "@timestamp" else name.split(".")
        code, parent = [], ""
        for depth, part in enumerate(parts[:-1]):
            prefix = ".".join(parts[: depth + 1])
            make = f"{nodes[parent]}[{part!r}] = {{}}"
            if prefix in nodes:  # an earlier field's: made when that one was not NULL
                local = nodes[prefix]
                code += [f"if {local} is None:", f"    {local} = {make}"]
            else:  # the first field under it: not made yet
                local = nodes[prefix] = f"d{len(nodes)}"
                code.append(f"{local} = {make}")
            parent = prefix
        ensure.append(code + [f"{nodes[parent]}[{parts[-1]!r}] = v{len(ensure)}"])
    unpack = ", ".join(["_id", "_ts", "_rank", *(f"v{i}" for i in range(len(fields)))])
    body = ["def event(row):", f"    {unpack}, = row", "    out = {}"]
    body += [f"    {local} = None" for prefix, local in nodes.items() if prefix]
    for i, name in enumerate(fields):
        v = f"v{i}"
        body.append(f"    if {v} == {v} and {v} is not None:")  # NaN (NULL) is not equal to itself
        ftype = types[name]
        if ftype == "keyword[]":
            body += [f"        items = lists.get({v})",
                     "        if items is None:",
                     "            if len(lists) > 50_000:",
                     "                lists.clear()",
                     f"            items = lists[{v}] = tuple(loads({v}))",
                     f"        {v} = list(items)"]
        elif ftype == "object":
            body.append(f"        {v} = loads({v})")
        elif ftype == "boolean":
            body.append(f"        {v} = {v} == 'true'")
        body += ["        " + line for line in ensure[i]]
    body.append("    return out")
    exec(compile("\n".join(body), "<fixed event>", "exec"), space)  # noqa: S102
    made = _event_makers[fields] = space["event"]
    return made  # type: ignore[no-any-return]
