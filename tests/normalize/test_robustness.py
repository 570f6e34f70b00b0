"""Bad input is normal input: every golden line with each of its fields swapped for every other
JSON type, and cut at many lengths, still yields well-formed items (never an exception), and
every event it yields conforms to the schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from support.golden_pairs import CASES, GoldenCase

from secretsight.normalize import load_dispositions, normalize_line
from secretsight.schema import validate

REPLACEMENTS: list[Any] = [None, "", "x", 0, -1, 1.5, True, [], ["x"], [1], {}, {"a": 1}]
CODES = load_dispositions()


def _paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*prefix, key)
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value[:3]):
            yield (*prefix, i)
            yield from _paths(child, (*prefix, i))


def _replaced(doc: Any, path: tuple, new: Any) -> Any:
    copy = json.loads(json.dumps(doc))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


def _problems(raw: bytes, source: str) -> list[str]:
    try:
        items = normalize_line(raw, source)
    except Exception as exc:  # noqa: BLE001 - the point is that nothing escapes
        return [f"raised {exc!r}"]
    problems = []
    if not items:
        problems.append("no item")
    for item in items:
        if len(item) != 1:
            problems.append(f"malformed item {item!r}")
            continue
        ((kind, value),) = item.items()
        if kind == "event":
            problems += [f"schema: {p}" for p in validate(value)]
        elif kind == "skip":
            problems += [] if value in CODES.skip else [f"unknown skip {value!r}"]
        elif kind == "dead_letter":
            problems += [] if value in CODES.dead_letter else [f"unknown code {value!r}"]
        else:
            problems.append(f"unknown item kind {kind!r}")
    return problems


def _json_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except ValueError:
        return False


# Lines shaped like a JSON object (truncating them must never break the normalizer)...
OBJECT_CASES = [c for c in CASES if c.raw.startswith(b"{") and c.raw.endswith(b"}")]
# ...and those that parse as one: only they have fields to swap.
PARSED_OBJECT_CASES = [c for c in OBJECT_CASES if _json_object(c.raw)]


@pytest.mark.parametrize("case", PARSED_OBJECT_CASES, ids=lambda c: c.test_id)
def test_type_swapped_fields_never_break(case: GoldenCase) -> None:
    doc = json.loads(case.raw)
    failures = []
    for path in _paths(doc):
        for new in REPLACEMENTS:
            raw = json.dumps(_replaced(doc, path, new)).encode()
            failures += [
                f"{'.'.join(map(str, path))}={new!r}: {p}" for p in _problems(raw, case.source)
            ]
    assert failures == []


@pytest.mark.parametrize("case", OBJECT_CASES, ids=lambda c: c.test_id)
def test_truncated_lines_never_break(case: GoldenCase) -> None:
    step = max(1, len(case.raw) // 40)
    failures = []
    for cut in range(0, len(case.raw), step):
        failures += [f"cut at {cut}: {p}" for p in _problems(case.raw[:cut], case.source)]
    assert failures == []
