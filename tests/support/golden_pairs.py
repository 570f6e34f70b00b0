"""Loads tests/golden/*.yml: the golden raw-line -> items pairs every normalizer implementation
(Python, VRL, Lua) must reproduce."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"
GOLDEN_FILES = ("vault", "cloudtrail", "kubernetes", "bad_input")


@dataclass(frozen=True)
class GoldenCase:
    file: str
    id: str
    source: str
    raw: bytes
    expect: list[dict[str, Any]]

    @property
    def test_id(self) -> str:
        return f"{self.file}/{self.id}"


def load_cases() -> list[GoldenCase]:
    cases = []
    for name in GOLDEN_FILES:
        for spec in yaml.safe_load((GOLDEN_DIR / f"{name}.yml").read_text("utf-8")):
            raw = (
                base64.b64decode(spec["raw_b64"])
                if "raw_b64" in spec
                else spec["raw"].encode("utf-8")
            )
            cases.append(GoldenCase(name, spec["id"], spec["source"], raw, spec["expect"]))
    return cases


CASES = load_cases()


def event_params(sources: tuple[str, ...] = ("vault", "cloudtrail", "kubernetes")) -> list[Any]:
    """`pytest.param(file, raw)` for each pair of the sources' files (`vault.yml`, ...) that
    yields at least one normalized event, id `<file>/<case id>`. The file names the source the
    line is shipped as (a pair's own `source` may be `auto`)."""
    return [pytest.param(c.file, c.raw, id=c.test_id) for c in CASES
            if c.file in sources and any("event" in item for item in c.expect)]
