"""The floor of any Python path over an NDJSON audit log: a bare loop that parses each line with
orjson and writes a small object. Every benchmark reports its CPU time as a ratio to this one,
measured in the same interleaved run, because absolute seconds on the shared 2-core box move
with the other jobs' load while ratios of runs done side by side move much less.

    .venv/bin/python benchmarks/floor.py FILE > /dev/null
"""

from __future__ import annotations

import sys
from typing import BinaryIO

import orjson


def floor(path: str, out: BinaryIO) -> int:
    """Parse every line of `path`, write `{"time", "type"}` of each to `out`; returns lines."""
    loads, dumps, write = orjson.loads, orjson.dumps, out.write
    count = 0
    with open(path, "rb") as src:
        for line in src:
            rec = loads(line)
            write(dumps({"time": rec.get("time"), "type": rec.get("type")}) + b"\n")
            count += 1
    return count


if __name__ == "__main__":
    floor(sys.argv[1], sys.stdout.buffer)
