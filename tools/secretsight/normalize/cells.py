"""How a normalizer gives an event as cells (`vault.vault_cells`): its fields' values in a fixed
order, each already as the events table of `engine.table` stores it, so that loading a row is
one tuple build, with no conversion per field.

- an absent field is NULL, a NaN: SQLite stores a bound NaN as NULL (sqlite3_bind_double), and
  binding a float costs what binding a number does, while Python's sqlite3 runs its adaptation
  protocol for every None it binds (a dozen absent fields per Vault row doubled the INSERT's
  time); a NaN is the one value not equal to itself, which is how a reader tells it apart;
- a `keyword[]` field is its list's JSON text (`list_cell`), as rules match it element-wise;
- any other field is its value (a string, or an int for a `long`).
"""

from __future__ import annotations

import json
from typing import Any

NULL = float("nan")


def list_cell(items: list[Any]) -> str:
    """The stored text of a list field (the table's one encoding of lists: rules parse it with
    SQLite's json_each)."""
    return json.dumps(items)
