"""The Fluent Bit side of the filters: return codes and timestamps, split records, huge and bad
lines, where dead letters point, and that a Lua error can never let a raw line through."""

from __future__ import annotations

import json

import pytest
from support.lua_filters import READ_TIME, LuaFilter, normalize

VAULT_READ = {
    "time": "2026-05-09T10:00:01.234567891Z",
    "type": "response",
    "auth": {
        "accessor": "hmac-sha256:5473cc",
        "display_name": "approle-backend",
        "policies": ["default"],
        "token_type": "service",
    },
    "request": {
        "id": "a1b2c3d4-0000-4000-8000-000000000001",
        "operation": "read",
        "mount_type": "kv",
        "namespace": {"id": "root"},
        "path": "kv/app/db",
        "remote_address": "10.0.1.47",
    },
    "response": {"mount_type": "kv"},
}


def _ct_event(n: int) -> dict:
    return {
        "eventVersion": "1.08",
        "eventTime": f"2026-05-09T10:00:0{n}Z",
        "eventSource": "secretsmanager.amazonaws.com",
        "eventName": "GetSecretValue",
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "10.0.0.7",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/alice"},
        "requestParameters": {"secretId": "prod/db"},
        "eventID": f"00000000-0000-4000-8000-00000000000{n}",
        "eventType": "AwsApiCall",
    }


@pytest.fixture(scope="module")
def vault() -> LuaFilter:
    return LuaFilter("vault")


def test_one_event_takes_its_own_time_exactly(vault):
    result = vault.call(json.dumps(VAULT_READ).encode())
    assert result.code == 1  # record and timestamp replaced
    # 2026-05-09T10:00:01Z, nanoseconds kept exactly (time_as_table)
    assert result.timestamp == (1778320801, 234567891)
    assert result.records[0]["@timestamp"] == "2026-05-09T10:00:01.234567891Z"


def test_a_records_file_splits_into_one_record_per_event_at_read_time():
    raw = json.dumps({"Records": [_ct_event(1), _ct_event(2), "not an object"]}).encode()
    result = LuaFilter("cloudtrail").call(raw)
    assert result.code == 2  # a split record shares one timestamp: the read time stays
    assert result.timestamp == READ_TIME
    assert [r.get("event", {}).get("id") for r in result.records[:2]] == [
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000002",
    ]
    assert result.records[2] == {"dead_letter": "not_an_object", "source": "cloudtrail"}


def test_skip_keeps_the_read_time_and_says_which_source(vault):
    entry = dict(VAULT_READ, type="request")
    result = vault.call(json.dumps(entry).encode())
    assert (result.code, result.timestamp) == (2, READ_TIME)
    assert result.records == [{"skip": "vault_request_entry", "source": "vault"}]


def test_dead_letter_points_at_file_and_offset_but_never_carries_the_line(vault):
    raw = (
        b'{"time":"2026-05-09T10:00:01Z","type":"response","request":{"id":"x","operation":"read",'
    )
    result = vault.call(raw, extra={"file": "/var/log/vault/audit.log", "offset": 4096})
    assert result.records == [
        {
            "dead_letter": "malformed_json",
            "source": "vault",
            "file": "/var/log/vault/audit.log",
            "offset": 4096,
        }
    ]


def test_ten_megabyte_vault_list_line_normalizes(vault):
    keys = [f"hmac-sha256:{i:058x}" for i in range(150_000)]  # >10 MiB of HMAC'd key names
    entry = dict(
        VAULT_READ,
        request=dict(VAULT_READ["request"], operation="list", path="kv/app/"),
        response={"mount_type": "kv", "data": {"keys": keys}},
    )
    raw = json.dumps(entry, separators=(",", ":")).encode()
    assert len(raw) > 10 * 1024 * 1024
    items = normalize(vault, raw)
    assert [list(i) for i in items] == [["event"]]
    assert items[0]["event"]["secret"] == {"operation": "list", "path": "kv/app/"}


def test_line_over_max_line_bytes_is_dead_lettered_unparsed(vault):
    raw = b'{"a":"' + b"x" * (64 * 1024 * 1024) + b'"}'
    assert normalize(vault, raw) == [{"dead_letter": "line_too_long"}]


@pytest.mark.parametrize(
    ("raw", "item"),
    [
        (b"", {"skip": "empty_line"}),
        (b" \t\r", {"skip": "empty_line"}),
        (
            b'{"time":"2026-05-09T10:00:01Z","type":"response","error":"caf\xe9"}',
            {"dead_letter": "invalid_utf8"},
        ),
        (b"[1,2]", {"dead_letter": "not_an_object"}),
        (b'{"a":1} x', {"dead_letter": "malformed_json"}),
    ],
    ids=["empty", "whitespace", "latin1", "array", "trailing_data"],
)
def test_bad_lines(vault, raw, item):
    assert normalize(vault, raw) == [item]


def test_record_without_a_log_string_is_dead_lettered():
    # e.g. a tail input given a parser: the record has fields, no raw line
    flt = LuaFilter("vault")
    ts = flt.lua.table_from({b"sec": 1, b"nsec": 0})
    code, _, rec = flt.callback(b"secretsight.vault", ts, flt.lua.table_from({b"message": b"x"}))
    assert code == 2 and rec[b"dead_letter"] == b"missing_field"


@pytest.mark.parametrize("broken", ["rfc3339_utc", "decode_line"])
def test_a_lua_error_is_dead_lettered_never_passed_through(broken):
    flt = LuaFilter("vault")
    # Break a function the normalizer looks up at call time, as a bug would: inside the
    # per-event guard (rfc3339_utc) and outside it (decode_line).
    flt.lua.execute(f'package.loaded.common.{broken} = function() error("boom") end'.encode())
    result = flt.call(json.dumps(VAULT_READ).encode())
    assert result.code == 2
    assert result.records == [{"dead_letter": "unsupported_shape", "source": "vault"}]


@pytest.mark.parametrize(
    ("line", "records"),
    [
        (
            (
                b"[2026/05/09 10:00:01.123456789] [ warn] [input:tail:vault_audit] "
                b"file=/var/log/vault/audit.log have long lines. Skipping long lines."
            ),
            [
                {
                    "dead_letter": "line_too_long",
                    "source": "vault",
                    "file": "/var/log/vault/audit.log",
                }
            ],
        ),
        (
            (
                b"[2026/05/09 10:00:01] [error] [input:tail:kubernetes_audit] "
                b"file=/var/log/kubernetes/audit/audit.log "
                b"requires a larger buffer size, lines are too long. Skipping file."
            ),
            [
                {
                    "dead_letter": "line_too_long",
                    "source": "kubernetes",
                    "file": "/var/log/kubernetes/audit/audit.log",
                }
            ],
        ),
        (
            b"[2026/05/09 10:00:01] [ info] [output:loki:loki_events] 127.0.0.1:3100, HTTP status=204",
            [],
        ),
    ],
    ids=["skip_long_lines_warning", "file_dropped_error", "other_log_line_dropped"],
)
def test_fluent_bit_long_line_warnings_become_dead_letters(line, records):
    assert LuaFilter("long_lines").call(line).records == records
