"""Input faults (issue 12): a truncated gzip keeps its readable prefix, names file and offset,
prints the summary and exits 2 (normalize, scan; watch reports it too); a UTF-8 BOM costs no
record (normalize, watch file and HTTP inputs)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.event_builders import at, baseline_events, ev, reads
from support.watch_ingest import TOKEN, Running

CLI = [str(Path(sys.executable).with_name("secretsight"))]
BOM = b"\xef\xbb\xbf"


def _events(n: int = 2000) -> list[dict]:
    """Normalized events (watch takes them as they are)."""
    return [*baseline_events(), *reads(100, n, user="harvester"),
            ev(at(days=15), path="secret/new")]


def _vault_raw(n: int = 2000) -> list[dict]:
    """Raw Vault audit response entries (normalize and scan take raw lines): one identity
    reading n paths, 0.1 s apart (a bulk_read)."""
    return [{"time": f"2026-01-05T10:{i // 600:02d}:{(i // 10) % 60:02d}.{i % 10}00Z",
             "type": "response",
             "auth": {"accessor": "hmac-sha256:acc1", "display_name": "harvester",
                      "entity_id": "ent-harvester", "policies": ["default"],
                      "token_type": "service"},
             "request": {"id": f"req-{i}", "operation": "read", "mount_type": "kv",
                         "path": f"secret/data/app{i % 40}", "remote_address": "10.0.0.5",
                         "namespace": {"id": "root"}},
             "response": {"mount_type": "kv"}} for i in range(n)]


def _ndjson(events: list[dict]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


@pytest.fixture(scope="module")
def truncated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A gzip cut at 60% of its compressed size, and how many complete lines it still holds."""
    d = tmp_path_factory.mktemp("gz")
    data = _ndjson(_vault_raw())
    full = gzip.compress(data)
    cut = full[: len(full) * 6 // 10]
    path = d / "audit.log.gz"
    path.write_bytes(cut)
    d_obj = __import__("zlib").decompressobj(16 + 15)
    readable = d_obj.decompress(cut)
    return path, readable.count(b"\n")


def test_normalize_keeps_the_prefix_prints_summary_and_exits_2(
        truncated: tuple[Path, int]) -> None:
    path, complete = truncated
    run = subprocess.run([*CLI, "normalize", str(path)], capture_output=True, timeout=120)
    err = run.stderr.decode()
    assert run.returncode == 2, err
    assert len(run.stdout.splitlines()) == complete
    assert f"{complete} events in" in err  # the summary
    assert f"{path}:{complete + 1}" in err and "offset" in err and "truncated" in err


def test_scan_keeps_the_prefix_prints_summary_and_exits_2(truncated: tuple[Path, int]) -> None:
    path, complete = truncated
    run = subprocess.run([*CLI, "scan", str(path)], capture_output=True, timeout=300)
    out, err = run.stdout.decode(), run.stderr.decode()
    assert run.returncode == 2, err
    assert f"{complete} events" in out  # the summary line, over the readable prefix
    assert "bulk_read" in out  # findings of the prefix are reported
    assert str(path) in err and "truncated" in err


def test_watch_reports_a_truncated_gzip_and_processes_its_prefix(
        tmp_path: Path, truncated: tuple[Path, int]) -> None:
    path, complete = truncated
    run = subprocess.run([*CLI, "watch", "-i", str(path), "-o", "-", "--exit-at-eof",
                          "--state", f"sqlite:///{tmp_path}/s.db"],
                         capture_output=True, timeout=300)
    err = run.stderr.decode()
    assert run.returncode == 2, err
    assert str(path) in err and "truncated" in err and f"after line {complete}" in err
    assert b"bulk_read" in run.stdout  # of the readable prefix


def test_watch_reads_a_complete_gzip(tmp_path: Path) -> None:
    path = tmp_path / "a.log.gz"
    path.write_bytes(gzip.compress(_ndjson(_events(200))))
    run = subprocess.run([*CLI, "watch", "-i", str(path), "-o", "-", "--exit-at-eof",
                          "--state", f"sqlite:///{tmp_path}/s.db"],
                         capture_output=True, timeout=300)
    assert run.returncode == 0, run.stderr.decode()
    assert b"bulk_read" in run.stdout and b"first_path_access" in run.stdout


def test_normalize_ignores_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.ndjson"
    path.write_bytes(BOM + _ndjson(_vault_raw(3)))
    run = subprocess.run([*CLI, "normalize", str(path)], capture_output=True, timeout=120)
    assert run.returncode == 0
    assert len(run.stdout.splitlines()) == 3, run.stderr.decode()


def test_watch_file_input_ignores_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.ndjson"
    path.write_bytes(BOM + _ndjson([*baseline_events(), ev(at(days=15), path="secret/new")]))
    run = subprocess.run([*CLI, "watch", "-i", str(path), "-o", "-", "--exit-at-eof",
                          "--state", f"sqlite:///{tmp_path}/s.db"],
                         capture_output=True, timeout=120)
    assert run.returncode == 0
    assert [json.loads(x)["rule_name"] for x in run.stdout.splitlines()] == ["first_path_access"]


def test_watch_stdin_ignores_a_bom(tmp_path: Path) -> None:
    data = BOM + _ndjson([*baseline_events(), ev(at(days=15), path="secret/new")])
    run = subprocess.run([*CLI, "watch", "-i", "-", "-o", "-", "--exit-at-eof",
                          "--state", f"sqlite:///{tmp_path}/s.db"],
                         input=data, capture_output=True, timeout=120)
    assert run.returncode == 0
    assert [json.loads(x)["rule_name"] for x in run.stdout.splitlines()] == ["first_path_access"]


def test_http_body_with_a_bom() -> None:
    r = Running(TOKEN)
    try:
        for body in (BOM + _ndjson(reads(0, 3)), BOM + json.dumps(reads(3, 3)).encode()):
            code, reply = r.request("POST", "/ingest", body)
            assert (code, reply["accepted"]) == (200, 3), reply
    finally:
        r.stop()
