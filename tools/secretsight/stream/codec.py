"""The stream's state records as orjson bytes.

Windows and held events are re-written at every commit (once a second in `watch`); the
standard encoder spent more time on them than the windows did. The stores keep bytes as they
are (SQLite BLOB, Redis base64), so a record that is bytes was written by `pack`. A value
orjson cannot encode (an integer past 64 bits) stays a plain object, which the stores encode
with the standard library, and `unpack` returns it unchanged. (orjson would write NaN as
null; no state holds one: times are finite and watch's decoder, orjson, refuses NaN.)
"""

from __future__ import annotations

from typing import Any

import orjson


def pack(value: Any) -> Any:
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: e.g. an integer past 64 bits
        return value


def unpack(value: Any) -> Any:
    return orjson.loads(value) if value.__class__ is bytes else value
