"""Invalid UTF-8, 10 MB Vault lines and lines over max_line_bytes, on the real VRL engine."""

from __future__ import annotations

import json

import pytest
import yaml
from support.vrl_programs import REPO, exact_bytes_program, load_golden, to_items

from secretsight.normalize.line import normalize_line
from secretsight.schema import validate


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


NON_UTF8_CASES = [c for c in load_golden() if not _is_utf8(c.raw)]
MAX_LINE_BYTES = yaml.safe_load(
    (REPO / "tools/secretsight/schema/dispositions.yml").read_text("utf-8")
)["max_line_bytes"]


def test_there_are_non_utf8_golden_cases():
    assert NON_UTF8_CASES, "bad_input.yml lost its raw_b64 case: this file tests nothing"


@pytest.mark.parametrize("case", NON_UTF8_CASES, ids=lambda c: c.name)
def test_non_utf8_exact_bytes_as_vector_delivers_them(runtime, case):
    # The bytes are built inside VRL, as the file source hands them over.
    out = runtime.execute(exact_bytes_program(case.source, case.raw), {}).processed_event
    assert to_items(out) == list(case.expect)


def test_literal_replacement_character_is_valid_utf8(programs):
    # U+FFFD written as UTF-8 is valid text: only real invalid bytes are `invalid_utf8`.
    line = '{"time":"2026-05-09T10:00:00Z","type":"response","request":{"id":"a","operation":"read","path":"kv/\ufffd"}}'
    (item,) = programs.items("vault", line.encode("utf-8"))
    assert item["event"]["secret"]["path"] == "kv/\ufffd"


@pytest.mark.parametrize(
    "raw",
    [b"\xff", b'{"a":"\xc3"}', b'{"a":"\xed\xa0\x80"}', b'{"a":"ok"}\xfe', b"\xef\xbb"],
    ids=["lone_byte", "truncated_sequence", "encoded_surrogate", "trailing_byte", "truncated_bom"],
)
@pytest.mark.parametrize("source", ["vault", "cloudtrail", "kubernetes", "auto"])
def test_invalid_utf8_variants(programs, source, raw):
    expected = [{"dead_letter": "invalid_utf8"}]
    assert normalize_line(raw, source) == expected  # the Python normalizer agrees
    assert programs.items(source, raw) == expected


def test_vrl_python_rejects_bytes(runtime):
    # The limitation the two tests above work around; if it goes, pass bytes directly.
    with pytest.raises(TypeError):
        runtime.execute(".x = 1", {"message": b'{"a":"\xff"}'})


def _vault_list_response(n_keys: int) -> str:
    keys = [f"hmac-sha256:{i:064x}" for i in range(n_keys)]
    return json.dumps(
        {
            "time": "2026-05-09T10:00:00.123456789Z",
            "type": "response",
            "auth": {"accessor": "hmac-sha256:5473cc", "policies": ["default"]},
            "request": {
                "id": "a1b2c3d4-0000-4000-8000-00000000b160",
                "operation": "list",
                "mount_type": "kv",
                "path": "secret/metadata/",
                "remote_address": "10.0.1.47",
            },
            "response": {"mount_type": "kv", "data": {"keys": keys}},
        },
        separators=(",", ":"),
    )


def test_ten_megabyte_vault_list_response_normalizes(programs):
    line = _vault_list_response(140_000)
    assert len(line.encode()) > 10 * 1024 * 1024
    (item,) = programs.items("vault", line)
    assert item["event"]["secret"] == {"operation": "list", "path": "secret/"}
    assert validate(item["event"]) == []


@pytest.mark.parametrize("source", ["vault", "cloudtrail", "kubernetes"])
def test_line_over_max_line_bytes_is_dead_lettered(programs, source):
    line = '{"a":"' + "x" * (MAX_LINE_BYTES - 7) + '"}'
    assert len(line.encode()) == MAX_LINE_BYTES + 1
    assert programs.items(source, line) == [{"dead_letter": "line_too_long"}]


def test_line_at_max_line_bytes_is_parsed(programs):
    line = '{"a":"' + "x" * (MAX_LINE_BYTES - 8) + '"}'
    assert len(line.encode()) == MAX_LINE_BYTES
    assert programs.items("vault", line) == [{"dead_letter": "missing_field"}]


SURROGATE_LINES = [
    r'{"time":"2026-05-09T10:00:00Z","type":"response","auth":{"accessor":"a\udc80"}}',
    r'{"time":"2026-05-09T10:00:00Z","type":"response","request":{"path":"kv/\\udc80"}}',
    r'{"time":"2026-05-09T10:00:00Z","type":"response","request":{"path":"kv/\\\udc80"}}',
    r'{"a":"\ud83d\ude00","b":"\ud800"}',
    r'{"\ud800":1}',
    r'["\ud800"]',
    r'{"a":"\ud800",}',
    r'{"Events":[{"CloudTrailEvent":"{\"eventID\":\"\\udc80\"}"}]}',
    r'{"properties":{"log":"{\"verb\":\"\\ud800\"}"}}',
]


@pytest.mark.parametrize("line", SURROGATE_LINES, ids=lambda s: s[:40])
@pytest.mark.parametrize("source", ["vault", "cloudtrail", "kubernetes", "auto"])
def test_lone_surrogate_escapes_match_python(programs, source, line):
    # Python's json decodes a lone `\udc80` escape, VRL's parser refuses it: both must say
    # invalid_utf8 when it is the line's only fault, malformed_json when the line is broken.
    assert programs.items(source, line) == normalize_line(line.encode("utf-8"), source)
