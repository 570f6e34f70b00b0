"""How a normalizer gives an event as cells (`vault.vault_cells`): its fields' values in a fixed
order, each already as the events table of `engine.table` stores it, so that loading a row is
one tuple build, with no conversion per field.

- an absent field is NULL, a NaN: SQLite stores a bound NaN as NULL (sqlite3_bind_double), and
  binding a float costs what binding a number does, while Python's sqlite3 runs its adaptation
  protocol for every None it binds (a dozen absent fields per Vault row doubled the INSERT's
  time); a NaN is the one value not equal to itself, which is how a reader tells it apart;
- a `keyword[]` field is its list's JSON text (`list_cell`), as rules match it element-wise;
- any other field is its value (a string, or an int for a `long`: a signed 64-bit integer,
  `LONG_MIN`..`LONG_MAX`, what SQLite's INTEGER, ECS and VRL's integer hold).
"""

from __future__ import annotations

import json
from typing import Any

NULL = float("nan")

# A `long` field's range. The normalizers dead-letter a JSON integer beyond it (`wrong_type`, as
# VRL and the Lua filters decide): orjson reads integers up to 2**64 - 1, and one such value
# bound to the table stops the load (sqlite3's OverflowError).
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


def list_cell(items: list[Any]) -> str:
    """The stored text of a list field (the table's one encoding of lists: rules parse it with
    SQLite's json_each)."""
    return json.dumps(items)
