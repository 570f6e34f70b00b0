"""`secretsight normalize` in-process with click's CliRunner."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.golden_pairs import CASES

from secretsight.cli import cli
from secretsight.schema import validate

VAULT_GOOD = next(c for c in CASES if c.test_id == "vault/kv2_read")
CT_RECORDS = next(c for c in CASES if c.test_id == "cloudtrail/s3_records_file_three_events")
K8S_GOOD = next(c for c in CASES if c.test_id == "kubernetes/get_secret")
VAULT_REQUEST = next(c for c in CASES if c.test_id == "vault/request_entry_skipped")


@pytest.fixture()
def mixed_file(tmp_path: Path) -> Path:
    path = tmp_path / "mixed.log"
    path.write_bytes(
        b"\n".join(
            [
                VAULT_GOOD.raw,
                VAULT_REQUEST.raw,
                b"not json",
                CT_RECORDS.raw,
                K8S_GOOD.raw,
                b"[]",
                b"",
            ]
        )
        + b"\n"
    )
    return path


def run(*args: str, input: bytes | None = None):
    return CliRunner().invoke(cli, ["normalize", *args], input=input)


def test_normalizes_to_sorted_ndjson(mixed_file: Path) -> None:
    result = run(str(mixed_file))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["event"]["dataset"] for e in events] == [
        "vault.audit",
        "aws.cloudtrail",
        "aws.cloudtrail",
        "aws.cloudtrail",
        "kubernetes.audit",
    ]
    for line, event in zip(lines, events, strict=True):
        assert line == json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert validate(event) == []
    assert events[0] == VAULT_GOOD.expect[0]["event"]


def test_output_is_deterministic(mixed_file: Path) -> None:
    assert run(str(mixed_file)).stdout_bytes == run(str(mixed_file)).stdout_bytes


def test_summary_on_stderr(mixed_file: Path) -> None:
    result = run(str(mixed_file))
    err = result.stderr
    assert (
        "9 events in (7 lines, 1 files): 5 normalized, 0 duplicates, 2 skipped, 2 dead-lettered"
        in err
    )
    assert "skipped: empty_line=1, vault_request_entry=1" in err
    assert "dead-lettered: malformed_json=1, not_an_object=1" in err
    assert f"{mixed_file}:3: malformed_json" in err and f"{mixed_file}:6: not_an_object" in err
    assert "CANARY" not in err


def test_dead_letter_file(mixed_file: Path, tmp_path: Path) -> None:
    dl_path = tmp_path / "dead.ndjson"
    result = run("--dead-letter", str(dl_path), str(mixed_file))
    assert result.exit_code == 0  # dead letters are reported, not fatal
    records = [json.loads(line) for line in dl_path.read_text().splitlines()]
    assert records == [
        {"file": str(mixed_file), "line": 3, "reason": "malformed_json"},
        {"file": str(mixed_file), "line": 6, "reason": "not_an_object"},
    ]
    assert f"2 dead letters written to {dl_path}" in result.stderr
    assert dl_path.stat().st_mode & 0o077 == 0  # may name secret-bearing lines: owner only


def test_dead_letter_raw_is_opt_in(mixed_file: Path, tmp_path: Path) -> None:
    dl_path = tmp_path / "dead.ndjson"
    result = run("--dead-letter", str(dl_path), "--dead-letter-raw", str(mixed_file))
    assert result.exit_code == 0
    records = [json.loads(line) for line in dl_path.read_text().splitlines()]
    assert [r["raw"] for r in records] == ["not json", "[]"]


def test_dead_letter_raw_is_truncated_and_escaped(tmp_path: Path) -> None:
    path = tmp_path / "bad.log"
    path.write_bytes(b"\xff" + b"x" * 10000 + b"\n")
    dl_path = tmp_path / "dead.ndjson"
    assert run("--dead-letter", str(dl_path), "--dead-letter-raw", str(path)).exit_code == 0
    (record,) = [json.loads(line) for line in dl_path.read_text().splitlines()]
    assert record["reason"] == "invalid_utf8"
    assert record["raw"].startswith("\\xffxxx") and len(record["raw"]) == 4095 + 4


def test_explicit_source(mixed_file: Path) -> None:
    result = run("--source", "vault", str(mixed_file))
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 1  # the CloudTrail and k8s lines are not Vault
    assert "missing_field=2" in result.stderr


def test_gzip_and_stdin(tmp_path: Path, mixed_file: Path) -> None:
    gz = tmp_path / "mixed.log.gz"
    gz.write_bytes(gzip.compress(mixed_file.read_bytes()))
    plain = run(str(mixed_file)).stdout
    assert run(str(gz)).stdout == plain
    assert run("-", input=mixed_file.read_bytes()).stdout == plain


def test_several_files_dedupe_across(mixed_file: Path) -> None:
    result = run(str(mixed_file), str(mixed_file))
    assert len(result.stdout.splitlines()) == 5
    assert "5 duplicates" in result.stderr


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run(str(tmp_path / "absent.log"))
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_no_file_is_a_usage_error() -> None:
    assert run().exit_code == 2


def test_unknown_source_is_a_usage_error(mixed_file: Path) -> None:
    assert run("--source", "splunk", str(mixed_file)).exit_code == 2
