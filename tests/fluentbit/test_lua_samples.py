"""Every line of the real-format samples (../shared/samples, read in place) through the Lua
filter of its source: nothing crashes into the catch-all dead letter, every event validates."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.lua_filters import LuaFilter, normalize
from support.samples import SAMPLES, params_or_missing

from secretsight.schema import validate

FOLDERS = {"vault": "vault", "cloudtrail": "cloudtrail", "k8s": "kubernetes"}


def _lines() -> list:
    params = []
    for folder, source in FOLDERS.items():
        for path in sorted((SAMPLES / folder).glob("*.*json")):
            data = path.read_bytes()
            # lookup-events output is one pretty-printed document: a file, not NDJSON
            lines = [data.replace(b"\n", b"")] if path.suffix == ".json" else data.split(b"\n")
            for n, line in enumerate(lines, 1):
                if line.strip():
                    params.append(pytest.param(source, line, id=f"{folder}/{path.stem[:40]}:{n}"))
    return params_or_missing(params, 2, f"{{{','.join(FOLDERS)}}}/*.*json")


_filters: dict[str, LuaFilter] = {}


@pytest.mark.samples
@pytest.mark.parametrize(("source", "raw"), _lines())
def test_sample_line(source: str, raw: bytes, samples_dir: Path) -> None:
    flt = _filters.setdefault(source, LuaFilter(source))
    items = normalize(flt, raw)
    assert items
    assert {"dead_letter": "unsupported_shape"} not in items
    for item in items:
        if "event" in item:
            assert validate(item["event"]) == []
