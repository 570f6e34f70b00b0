#!/usr/bin/env python3
"""Generate Vector's own unit tests (`vector/tests.yaml`) from the golden pairs.

    python vector/gen_tests.py            # rewrite vector/tests.yaml
    python vector/gen_tests.py --check    # exit 1 when the committed file is stale

Every golden case of `tests/golden/*.yml` becomes one Vector test named `<file>/<id>` that
inserts the raw line at the source's remap transform and asserts each expected item on the
remap output (`vector test vector/vector.yaml vector/tests.yaml`). The golden files stay the
one source of truth; this file is committed so `vector test` works without Python, and a pytest
(tests/vector/test_vector_tests_file.py) fails when it falls out of sync, and replays every
generated test on the VRL engine (vrl-python) where no `vector` binary exists.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
GOLDEN_DIR = REPO / "tests" / "golden"
TESTS_FILE = REPO / "vector" / "tests.yaml"

SOURCES = ("vault", "cloudtrail", "kubernetes", "auto")
# The remap transform of vector.yaml that runs each source's program (auto.vrl for `auto`).
TRANSFORM = {source: f"{source}_normalize" for source in SOURCES}


@dataclass(frozen=True)
class GoldenCase:
    file: str  # golden file stem: vault, cloudtrail, kubernetes, bad_input
    id: str
    source: str  # vault | cloudtrail | kubernetes | auto
    raw: bytes
    expect: tuple[dict[str, Any], ...]

    @property
    def name(self) -> str:
        return f"{self.file}/{self.id}"


def load_golden(golden_dir: Path = GOLDEN_DIR) -> list[GoldenCase]:
    """Every case of every golden file, in file then case order."""
    cases: list[GoldenCase] = []
    for path in sorted(golden_dir.glob("*.yml")):
        for entry in yaml.safe_load(path.read_text("utf-8")) or []:
            if "raw_b64" in entry:
                raw = base64.b64decode(entry["raw_b64"])
            else:
                raw = entry["raw"].encode("utf-8")
            cases.append(
                GoldenCase(
                    file=path.stem,
                    id=str(entry["id"]),
                    source=entry["source"],
                    raw=raw,
                    expect=tuple(entry.get("expect") or ()),
                )
            )
    return cases


def _vrl_json_literal(value: Any) -> str:
    """`value` as a VRL expression: parse_json of a raw string literal.

    JSON text never needs a quote escaped except `'`, which we write as the JSON escape
    \\u0027 so the VRL raw string `s'...'` needs no escaping at all.
    """
    text = json.dumps(value, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return "parse_json!(s'" + text.replace("'", "\\u0027") + "')"


def condition(item: dict[str, Any], source: str, label: str) -> str:
    """A VRL assertion that one emitted event is the golden item `item`.

    A normalized event must equal the expected one exactly. A marker is checked on its code,
    kind and source only: in a live pipeline (and in Vector's test inputs) it also carries
    where and when the line was read (`file`, `offset`, `host`, `timestamp`). auto.vrl names
    the source it detected, which the golden item does not say: not checked there.
    """
    if "event" in item:
        return f'assert_eq!(., {_vrl_json_literal(item["event"])}, "{label}")'
    (kind,) = item.keys()
    other = "skip" if kind == "dead_letter" else "dead_letter"
    actual = {kind: f".{kind}", other: f".{other}", "event": ".event"}
    expected: dict[str, Any] = {kind: item[kind], other: None, "event": None}
    if source != "auto":
        actual["source"] = ".source"
        expected["source"] = source
    fields = ", ".join(f'"{k}": {v}' for k, v in actual.items())
    return f'assert_eq!({{{fields}}}, {_vrl_json_literal(expected)}, "{label}")'


def _input(case: GoldenCase) -> dict[str, Any]:
    transform = TRANSFORM[case.source]
    try:
        text = case.raw.decode("utf-8")
    except UnicodeDecodeError:
        # YAML cannot carry invalid UTF-8: build the exact bytes inside Vector.
        b64 = base64.b64encode(case.raw).decode("ascii")
        return {
            "insert_at": transform,
            "type": "vrl",
            "source": f'.message = decode_base64!("{b64}")',
        }
    return {"insert_at": transform, "type": "raw", "value": text}


def vector_test(case: GoldenCase) -> dict[str, Any]:
    """One Vector unit test for one golden case."""
    transform = TRANSFORM[case.source]
    test: dict[str, Any] = {"name": case.name, "inputs": [_input(case)]}
    if not case.expect:
        test["no_outputs_from"] = [transform]
        return test
    conditions = [
        {"type": "vrl", "source": condition(item, case.source, f"{case.name}: output {n}")}
        for n, item in enumerate(case.expect, 1)
    ]
    # Vector checks each condition against every output event and passes it when one event
    # satisfies it; the exact count is checked by the vrl-python tests (tests/vector).
    test["outputs"] = [{"extract_from": transform, "conditions": conditions}]
    return test


def render(cases: list[GoldenCase]) -> str:
    unknown = sorted({c.source for c in cases} - set(SOURCES))
    if unknown:
        raise SystemExit(f"golden cases name unknown sources: {unknown}")
    tests = [vector_test(c) for c in cases]
    header = (
        "# GENERATED by vector/gen_tests.py from tests/golden/*.yml: do not edit.\n"
        "# Run: vector test vector/vector.yaml vector/tests.yaml\n"
    )
    body = yaml.safe_dump({"tests": tests}, sort_keys=False, allow_unicode=True, width=1_000_000)
    return header + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when tests.yaml is stale")
    args = parser.parse_args(argv)
    text = render(load_golden())
    if args.check:
        current = TESTS_FILE.read_text("utf-8") if TESTS_FILE.exists() else ""
        if current != text:
            print(f"{TESTS_FILE} is stale: run python vector/gen_tests.py", file=sys.stderr)
            return 1
        return 0
    TESTS_FILE.write_text(text, "utf-8")
    print(f"wrote {TESTS_FILE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
