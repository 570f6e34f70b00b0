"""Run a SecretSight Fluent Bit Lua filter on LuaJIT (lupa) exactly as Fluent Bit calls it.

Fluent Bit's Lua filter (`time_as_table: true`) calls `cb_filter(tag, {sec=, nsec=}, record)`
where `record` is the tail input's record: `{"log": <the raw line bytes>}` (no parser). It packs
what the callback returns back to msgpack: a Lua table whose keys are 1..n is an array, any other
table a map (an empty one too), an integral number an integer. `to_python` follows those rules,
so the Python values here are what Fluent Bit would ship.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from lupa import luajit21
from lupa.luajit21 import lua_type

FLUENTBIT_DIR = Path(__file__).resolve().parents[2] / "fluentbit"
SCRIPTS = {
    "vault": FLUENTBIT_DIR / "vault.lua",
    "cloudtrail": FLUENTBIT_DIR / "cloudtrail.lua",
    "kubernetes": FLUENTBIT_DIR / "kubernetes.lua",
    "auto": FLUENTBIT_DIR / "auto.lua",
    "long_lines": FLUENTBIT_DIR / "long_lines.lua",
}
# What the configs tag each input with (fluent-bit.yaml / fluent-bit.conf).
TAGS = {
    "vault": "secretsight.vault",
    "cloudtrail": "secretsight.cloudtrail",
    "kubernetes": "secretsight.kubernetes",
    "auto": "secretsight.auto",
    "long_lines": "secretsight.fluentbit",
}
READ_TIME = (1_700_000_000, 123_456_789)  # the tail input's read time handed to the filter


@dataclass(frozen=True)
class FilterResult:
    code: int
    timestamp: tuple[int, int]
    records: list[dict[str, Any]]


def to_python(value: Any, lua: Any) -> Any:
    """A Lua value as Fluent Bit's Lua->msgpack conversion would pack it."""
    if lua_type(value) == "table":
        items = list(value.items())
        keys = [k for k, _ in items]
        n = len(keys)
        if (
            n
            and all(isinstance(k, int) and not isinstance(k, bool) for k in keys)
            and sorted(keys) == list(range(1, n + 1))
        ):
            return [to_python(value[i], lua) for i in range(1, n + 1)]
        out = {}
        for k, v in items:
            if not isinstance(k, bytes):
                raise TypeError(f"non-string map key {k!r}: an event key must be a string")
            out[k.decode("utf-8")] = to_python(v, lua)
        return out
    if isinstance(value, bytes):
        # Strict: an output string that is not UTF-8 would be mangled by every JSON output.
        return value.decode("utf-8")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class LuaFilter:
    """One filter instance: one Lua state per script, as Fluent Bit creates one per filter."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lua = luajit21.LuaRuntime(unpack_returned_tuples=True, encoding=None)
        # dofile = luaL_loadfile + call, which is how Fluent Bit loads `script`.
        self.lua.globals().dofile(str(SCRIPTS[source]).encode())
        self.callback = self.lua.globals()[b"cb_filter"]
        if self.callback is None:
            raise AssertionError(f"{SCRIPTS[source]} defines no cb_filter")

    def call(self, raw: bytes, extra: dict[str, Any] | None = None) -> FilterResult:
        record = {b"log": raw}
        for k, v in (extra or {}).items():
            record[k.encode()] = v.encode() if isinstance(v, str) else v
        ts = self.lua.table_from({b"sec": READ_TIME[0], b"nsec": READ_TIME[1]})
        code, out_ts, out = self.callback(
            TAGS[self.source].encode(), ts, self.lua.table_from(record)
        )
        if code in (-1, 0):
            return FilterResult(code, READ_TIME, [])
        converted = to_python(out, self.lua)
        records = converted if isinstance(converted, list) else [converted]
        if code == 1:
            t = to_python(out_ts, self.lua)
            timestamp = (t["sec"], t["nsec"])
        else:
            timestamp = READ_TIME
        return FilterResult(code, timestamp, records)


def to_item(record: dict[str, Any]) -> dict[str, Any]:
    """A shipped record in the contract's item form ({"event"|"skip"|"dead_letter": ...})."""
    if "dead_letter" in record:
        return {"dead_letter": record["dead_letter"]}
    if "skip" in record:
        return {"skip": record["skip"]}
    return {"event": record}


def normalize(flt: LuaFilter, raw: bytes) -> list[dict[str, Any]]:
    return [to_item(r) for r in flt.call(raw).records]


@cache
def filter_for(source: str) -> LuaFilter:
    """One filter (one Lua state) per source for the session, as Fluent Bit keeps one per filter."""
    return LuaFilter(source)
