"""`decode_lines` (the watch loop's decoder: a Vault entry straight to `vault_record`, no item
list) gives what `decode_line` gives line by line: the same events, skip codes and error
reasons, in order, for every golden raw line (all sources, bad input included)."""

from __future__ import annotations

import json
from typing import Any

from support.golden_pairs import CASES

from secretsight.watch.decode import DecodeError, Skipped, decode_line, decode_lines


def _one_by_one(lines: list[bytes]) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    events: list[dict[str, Any]] = []
    skips: list[str] = []
    errors: list[str] = []
    for line in lines:
        try:
            events.extend(decode_line(line, skips))
        except DecodeError as exc:
            errors.append(exc.reason)
        except Skipped:
            pass
    return events, skips, errors


def _lines() -> list[bytes]:
    raw = [c.raw for c in CASES if b"\n" not in c.raw]
    # shippers' wrappers, and a Vault entry whose fields have the wrong type (dead letters)
    vault = next(c.raw for c in CASES if c.file == "vault" and b'"type":"response"' in c.raw)
    obj = json.loads(vault)
    wrapped = [json.dumps({"log": vault.decode()}).encode(), json.dumps({"message": obj}).encode()]
    broken = [json.dumps({**obj, "request": "x"}).encode(),
              json.dumps({**obj, "type": 7}).encode(),
              json.dumps({**obj, "type": "kmip-response"}).encode(),
              json.dumps({**obj, "time": None}).encode(),
              json.dumps({**obj, "auth": []}).encode()]
    # request entries: skipped unless they may configure an audit device (decode_lines tests
    # that inline); a `request` that is no object dead-letters first
    requests = [json.dumps({**obj, "type": "request", "request": request}).encode()
                for request in ({**obj["request"], "path": path} for path in (
                    "kv/app/db", "sys/audit/file", "sys/audit-hash/file", "sys/auditor", 7, None))]
    requests += [json.dumps({**obj, "type": "request", "request": value}).encode()
                 for value in ("x", None, [], {"path": "kv/x"})]
    return raw + wrapped + broken + requests


def test_decode_lines_matches_decode_line_on_every_golden_line() -> None:
    lines = _lines()
    assert len(lines) > 200
    skips: list[str] = []
    errors: list[str] = []
    events = decode_lines(lines, skips, errors)
    want_events, want_skips, want_errors = _one_by_one(lines)
    assert events == want_events
    assert skips == want_skips
    assert errors == want_errors
    # the cases cover each outcome, Vault's direct path included
    assert any(e["event"]["dataset"] == "vault.audit" for e in events)
    assert "vault_request_entry" in skips and "vault_kmip_entry" in skips
    assert {"wrong_type", "missing_field", "malformed_json"} <= set(errors)


def test_each_line_alone_too() -> None:
    for line in _lines():
        skips: list[str] = []
        errors: list[str] = []
        assert (decode_lines([line], skips, errors), skips, errors) == _one_by_one([line]), line
