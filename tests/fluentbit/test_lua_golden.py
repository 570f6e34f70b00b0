"""Every golden pair (tests/golden/*.yml) through the real Lua filters on LuaJIT.

The raw line goes in as Fluent Bit's tail input hands it over (bytes in `record.log`); what the
filter returns is converted as Fluent Bit packs it, then compared EXACTLY with `expect`.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.lua_filters import LuaFilter, normalize

from secretsight.schema import validate

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"


def _cases() -> list[Any]:
    params = []
    for path in sorted(GOLDEN_DIR.glob("*.yml")):
        for case in yaml.safe_load(path.read_text("utf-8")) or []:
            raw = (
                base64.b64decode(case["raw_b64"])
                if "raw_b64" in case
                else case["raw"].encode("utf-8")
            )
            params.append(
                pytest.param(case["source"], raw, case["expect"], id=f"{path.stem}/{case['id']}")
            )
    if not params:
        params.append(
            pytest.param(
                None,
                None,
                None,
                id="no-goldens",
                marks=pytest.mark.skip(reason=f"no golden files in {GOLDEN_DIR} yet"),
            )
        )
    return params


CASES = _cases()
# The schema check only has something to check where events are expected.
EVENT_CASES = [c for c in CASES if c.values[2] and any("event" in item for item in c.values[2])]
_filters: dict[str, LuaFilter] = {}


def lua_filter(source: str) -> LuaFilter:
    # One Lua state per source for the whole session, as Fluent Bit keeps one per filter:
    # this also proves no state leaks from one line into the next.
    if source not in _filters:
        _filters[source] = LuaFilter(source)
    return _filters[source]


@pytest.mark.parametrize(("source", "raw", "expect"), CASES)
def test_golden(source: str, raw: bytes, expect: list[dict[str, Any]]) -> None:
    assert normalize(lua_filter(source), raw) == expect


@pytest.mark.parametrize(("source", "raw", "expect"), EVENT_CASES)
def test_golden_events_validate(source: str, raw: bytes, expect: list[dict[str, Any]]) -> None:
    events = [item["event"] for item in normalize(lua_filter(source), raw) if "event" in item]
    assert events
    assert [validate(ev) for ev in events] == [[] for _ in events]


CANARY_CASES = [
    c for c in CASES if c.values[1] and (b"CANARY" in c.values[1] or b"Q0FOQVJZ" in c.values[1])
]


@pytest.mark.parametrize(("source", "raw", "expect"), CANARY_CASES)
def test_golden_canaries_never_shipped(
    source: str, raw: bytes, expect: list[dict[str, Any]]
) -> None:
    # The whole shipped records (not only the item form): skips and dead letters included.
    shipped = json.dumps(lua_filter(source).call(raw).records)
    assert "CANARY" not in shipped and "Q0FOQVJZ" not in shipped
