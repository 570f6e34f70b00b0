"""Bad input is normal input: a file mixing good and bad lines (including a 10 MB line) ends
with every record counted once: in == normalized + duplicates + skipped + dead-lettered."""

from __future__ import annotations

import gzip
import io
import json
from collections import Counter
from pathlib import Path

import pytest

from secretsight.normalize import (
    MAX_LINE_BYTES,
    DeadLetterRecord,
    Stats,
    iter_files,
    normalize_line,
)
from secretsight.normalize import line as line_module
from secretsight.normalize import reader as reader_module


def vault_response(rid: str, path: str = "kv/app/db", op: str = "read", **response: object) -> dict:
    return {
        "time": "2026-05-09T10:00:00.5Z",
        "type": "response",
        "auth": {"accessor": "hmac-sha256:aa", "display_name": "approle", "policies": ["default"]},
        "request": {
            "id": rid,
            "operation": op,
            "mount_type": "kv",
            "path": path,
            "remote_address": "10.0.1.47",
        },
        "response": {"mount_type": "kv", **response},
    }


def big_list_response(target_bytes: int) -> bytes:
    """A Vault `list` response of about `target_bytes` (they reach tens of MB)."""
    key = "hmac-sha256:" + "ab" * 32
    count = target_bytes // (len(key) + 3)
    entry = vault_response("big-1", "kv/metadata/", "list", data={"keys": [key] * count})
    return json.dumps(entry, separators=(",", ":")).encode()


def k8s_event(audit_id: str, stage: str = "ResponseComplete") -> dict:
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": audit_id,
        "stage": stage,
        "verb": "get",
        "user": {"username": "alice"},
        "objectRef": {"resource": "secrets", "namespace": "prod", "name": "db"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": "2026-05-09T10:00:00Z",
    }


def ct_event(event_id: str) -> dict:
    return {
        "eventTime": "2026-05-09T10:00:00Z",
        "eventSource": "secretsmanager.amazonaws.com",
        "eventName": "GetSecretValue",
        "eventID": event_id,
        "requestParameters": {"secretId": "prod/db"},
    }


def dump(obj: object) -> bytes:
    return json.dumps(obj).encode()


TEN_MB = 10 * 1000 * 1000


@pytest.fixture(scope="module")
def mixed_lines() -> list[bytes]:
    good = dump(vault_response("req-1"))
    request_entry = dump({**vault_response("req-2"), "type": "request"})
    return [
        good,  # 1 normalized
        request_entry,  # 2 skip vault_request_entry
        b"",  # 3 skip empty_line
        b'{"time": "2026-05-09T10:00:00Z", "type": resp',  # 4 dead malformed_json
        big_list_response(TEN_MB),  # 5 normalized (10 MB)
        good,  # 6 duplicate of line 1
        b'{"type":"response","request":{"path":"kv/\xff"}}',  # 7 dead invalid_utf8
        dump(
            {"Records": [ct_event("ct-1"), ct_event("ct-2"), 7]}
        ),  # 8 2 normalized + not_an_object
        dump(k8s_event("k-1", "RequestReceived")),  # 9 skip intermediate stage
        b"[1, 2, 3]",  # 10 dead not_an_object
        dump(k8s_event("k-1")),  # 11 normalized (no final newline)
    ]


def write_lines(path: Path, lines: list[bytes], crlf: bool = False) -> None:
    sep = b"\r\n" if crlf else b"\n"
    path.write_bytes(sep.join(lines))  # the last line has no terminator


EXPECTED_SKIPPED = {"vault_request_entry": 1, "empty_line": 1, "kubernetes_intermediate_stage": 1}
EXPECTED_DEAD = {"malformed_json": 1, "invalid_utf8": 1, "not_an_object": 2}


def check_mixed_stats(stats: Stats, events: list[dict], dead: list[DeadLetterRecord]) -> None:
    assert stats.lines == 11
    assert stats.events_in == 13
    assert stats.normalized == len(events) == 5
    assert stats.duplicates == 1
    assert dict(stats.skipped) == EXPECTED_SKIPPED
    assert dict(stats.dead_lettered) == EXPECTED_DEAD
    assert stats.balanced()
    assert [(d.line, d.reason) for d in dead] == [
        (4, "malformed_json"),
        (7, "invalid_utf8"),
        (8, "not_an_object"),
        (10, "not_an_object"),
    ]
    assert all(len(d.raw.encode("utf-8")) <= 4096 * 4 for d in dead)
    ids = [e["event"]["id"] for e in events]
    assert ids == ["req-1", "big-1", "ct-1", "ct-2", "k-1"]
    big = events[1]
    assert big["secret"] == {"operation": "list", "path": "kv/"}


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
def test_mixed_file_accounting(tmp_path: Path, mixed_lines: list[bytes], crlf: bool) -> None:
    path = tmp_path / "mixed.log"
    write_lines(path, mixed_lines, crlf)
    assert len(mixed_lines[4]) > TEN_MB
    stats, dead = Stats(), []
    events = list(iter_files([path], "auto", stats, dead_letter_sink=dead.append))
    check_mixed_stats(stats, events, dead)


def test_gzipped_file_accounting(tmp_path: Path, mixed_lines: list[bytes]) -> None:
    path = tmp_path / "mixed.log.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"\n".join(mixed_lines))
    stats, dead = Stats(), []
    events = list(iter_files([path], "auto", stats, dead_letter_sink=dead.append))
    check_mixed_stats(stats, events, dead)


def test_stdin_is_dash(monkeypatch: pytest.MonkeyPatch, mixed_lines: list[bytes]) -> None:
    class FakeStdin:
        buffer = io.BufferedReader(io.BytesIO(b"\n".join(mixed_lines)))

    monkeypatch.setattr("sys.stdin", FakeStdin())
    stats, dead = Stats(), []
    events = list(iter_files(["-"], "auto", stats, dead_letter_sink=dead.append))
    check_mixed_stats(stats, events, dead)


def test_ten_megabyte_line_normalizes(mixed_lines: list[bytes]) -> None:
    items = normalize_line(mixed_lines[4], "vault")
    assert [list(item) for item in items] == [["event"]]


def test_line_too_long_real_limit() -> None:
    line = b"{" + b" " * MAX_LINE_BYTES + b"}"
    assert normalize_line(line, "auto") == [{"dead_letter": "line_too_long"}]


def test_line_at_limit_is_parsed() -> None:
    body = json.dumps(vault_response("edge-1")).encode()
    line = body + b" " * (MAX_LINE_BYTES - len(body))
    assert len(line) == MAX_LINE_BYTES
    assert list(normalize_line(line, "vault")[0]) == ["event"]


def test_too_long_line_in_file_is_counted_and_skipped_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader never holds more than the limit: shrink it to check the mechanism cheaply."""
    monkeypatch.setattr(reader_module, "MAX_LINE_BYTES", 1000)
    monkeypatch.setattr(line_module, "MAX_LINE_BYTES", 1000)
    long_line = dump(vault_response("long-1", data={"keys": ["k" * 50] * 200}))
    assert len(long_line) > 3000
    path = tmp_path / "long.log"
    write_lines(path, [dump(vault_response("a")), long_line, dump(vault_response("b"))])
    stats, dead = Stats(), []
    events = list(iter_files([path], "vault", stats, dead_letter_sink=dead.append))
    assert [e["event"]["id"] for e in events] == ["a", "b"]
    assert [(d.line, d.reason) for d in dead] == [(2, "line_too_long")]
    assert len(dead[0].raw) == 1000 + 2  # the excerpt is what the bounded read held
    assert stats.balanced() and stats.events_in == 3


def test_duplicates_across_files(tmp_path: Path) -> None:
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    audit_request = {**vault_response("aud-1", "sys/audit/file", "update"), "type": "request"}
    audit_response = vault_response("aud-1", "sys/audit/file", "update")
    write_lines(first, [dump(vault_response("r-1")), dump(ct_event("c-1")), dump(k8s_event("k-9"))])
    write_lines(
        second,
        [
            dump(vault_response("r-1")),  # duplicate (same id, same entry type)
            dump(ct_event("c-1")),  # duplicate eventID
            dump(k8s_event("k-9")),  # duplicate auditID + stage
            dump({**k8s_event("k-9", "ResponseStarted"), "verb": "watch"}),  # other stage: kept
            dump(audit_request),
            dump(audit_response),  # same request.id, both kept
        ],
    )
    stats = Stats()
    events = list(iter_files([first, second], "auto", stats))
    assert stats.duplicates == 3
    assert [e["event"]["id"] for e in events] == ["r-1", "c-1", "k-9", "k-9", "aud-1", "aud-1"]
    assert stats.balanced()


def test_dedupe_can_be_turned_off(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    write_lines(path, [dump(vault_response("r-1"))] * 3)
    stats = Stats()
    assert len(list(iter_files([path], "vault", stats, dedupe=False))) == 3
    assert stats.duplicates == 0


def test_summary_names_first_dead_letters(tmp_path: Path) -> None:
    path = tmp_path / "bad.log"
    write_lines(path, [b"nope"] * 15)
    stats = Stats()
    assert list(iter_files([path], "auto", stats)) == []
    text = stats.summary()
    assert f"{path}:1: malformed_json" in text and f"{path}:10: malformed_json" in text
    assert f"{path}:11:" not in text and "and 5 more" in text
    assert Counter(stats.dead_lettered) == Counter({"malformed_json": 15})


def test_truncated_gzip_stops_with_file_and_line(tmp_path: Path) -> None:
    from secretsight.errors import SecretSightError

    path = tmp_path / "cut.log.gz"
    whole = gzip.compress(b"\n".join(dump(vault_response(f"g-{i}")) for i in range(2000)))
    path.write_bytes(whole[: len(whole) // 2])
    stats = Stats()
    with pytest.raises(SecretSightError) as info:
        for _ in iter_files([path], "vault", stats):
            pass
    assert info.value.file == str(path)
    assert info.value.line == stats.lines + 1 and stats.lines > 0
    assert stats.balanced()


def test_unknown_source_is_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown source"):
        list(iter_files([tmp_path / "x"], "splunk"))


def test_stats_keeps_all_dead_letters_on_request(tmp_path: Path) -> None:
    path = tmp_path / "bad.log"
    write_lines(path, [b"nope"] * 15)
    kept, default = Stats(dead_letter_limit=None), Stats()
    list(iter_files([path], "auto", kept))
    list(iter_files([path], "auto", default))
    assert [d.line for d in kept.dead_letters] == list(range(1, 16))
    assert [d.line for d in default.dead_letters] == list(range(1, 11))


def test_a_file_that_normalized_nothing_is_listed(tmp_path: Path) -> None:
    """Issue 14 item 6: every record dead-lettered (here: no timestamps) is recorded, so that
    `scan` can refuse it; an empty file, and a file with events, are not listed."""
    good = tmp_path / "good.log"
    good.write_text(
        '{"time":"2026-06-01T08:00:00Z","type":"response","auth":{"accessor":"a"},'
        '"request":{"id":"r-1","operation":"read","path":"secret/x"}}\n'
        "not json\n"
    )
    bad = tmp_path / "bad.log"
    bad.write_text('{"type":"response","request":{"id":"r-2","operation":"read","path":"x"}}\n' * 2)
    empty = tmp_path / "empty.log"
    empty.write_text("")
    stats = Stats()
    assert len(list(iter_files([good, bad, empty], stats=stats))) == 1
    assert stats.files_without_events == [(str(bad), 2)]
