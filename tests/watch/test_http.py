"""POST /ingest and GET /metrics on a real loopback socket, served by a Watcher in a thread.
Each test sends a bounded number of requests; the fixture stops the server and the loop."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import pytest
from support.event_builders import at, baseline_events, ev, reads
from support.watch_ingest import TOKEN, Running, ndjson

from secretsight.watch.metrics import Metrics


@pytest.fixture
def running() -> Iterator[Running]:
    r = Running(TOKEN)
    yield r
    r.stop()


def test_ingest_ndjson_produces_findings(running: Running) -> None:
    body = ndjson(baseline_events() + [ev(at(days=15), path="secret/new")])
    code, reply = running.request("POST", "/ingest", body)
    assert (code, reply["accepted"], reply["rejected"]) == (200, 4, 0)
    # answered after the commit: the finding is already out
    assert [f["rule_name"] for f in running.findings()] == ["first_path_access"]


def test_ingest_json_array_as_fluent_bit_json_format(running: Running) -> None:
    code, reply = running.request("POST", "/ingest", json.dumps(reads(0, 3)).encode())
    assert (code, reply["accepted"]) == (200, 3)


def test_ingest_gzip_body(running: Running) -> None:
    code, reply = running.request("POST", "/ingest", gzip.compress(ndjson(reads(0, 2))),
                                  {"Content-Encoding": "gzip"})
    assert (code, reply["accepted"]) == (200, 2)


def test_partly_bad_body_is_accepted_and_counted(running: Running) -> None:
    body = ndjson(reads(0, 2)) + b"{not json\n" + json.dumps({"no": "dataset"}).encode() + b"\n"
    code, reply = running.request("POST", "/ingest", body)
    assert (code, reply["accepted"], reply["rejected"]) == (200, 2, 2)
    metrics = running.request("GET", "/metrics")[1]
    # reason codes of the raw normalizer (schema/dispositions.yml): the line is not JSON, and
    # the object is neither a normalized event nor a known source's raw entry
    assert 'secretsight_parse_errors_total{input="http",reason="malformed_json"} 1' in metrics
    assert 'secretsight_parse_errors_total{input="http",reason="unknown_source"} 1' in metrics


@pytest.mark.parametrize("body,headers,code", [
    (b"{not json\n", {}, 400),
    (b"[1, 2", {}, 400),
    (b"\xff\xfe", {}, 400),
    (b"plain text", {"Content-Encoding": "gzip"}, 400),
    (b"x", {"Content-Encoding": "br"}, 400),
], ids=["bad_json", "bad_array", "bad_utf8", "bad_gzip", "unknown_encoding"])
def test_bad_body_is_400_and_server_keeps_running(running: Running, body: bytes,
                                                  headers: dict, code: int) -> None:
    got, reply = running.request("POST", "/ingest", body, headers)
    assert got == code and reply["error"]
    assert running.request("GET", "/healthz")[0] == 200


def test_raw_vault_lines_are_normalized(running: Running, samples_dir) -> None:
    """Raw audit lines go through secretsight.normalize; request entries are counted skips."""
    path = samples_dir / "vault" / "hashicorp-vault_website_docs_audit_log.mdx_extract.ndjson"
    body = path.read_bytes()
    code, reply = running.request("POST", "/ingest", body)
    assert code == 200 and reply["accepted"] > 0 and reply["skipped"] > 0
    metrics = running.request("GET", "/metrics")[1]
    assert 'secretsight_skipped_total{input="http",reason="vault_request_entry"}' in metrics
    assert 'secretsight_events_processed_total{source="vault.audit"}' in metrics


def test_oversized_body_is_413(running: Running) -> None:
    code, reply = running.request("POST", "/ingest", b"x" * (64 * 1024 + 1))
    assert code == 413 and "exceeds" in reply["error"]
    assert running.request("GET", "/healthz")[0] == 200


def test_gzip_bomb_is_413(running: Running) -> None:
    code, _ = running.request("POST", "/ingest", gzip.compress(b"\n" * (1024 * 1024)),
                              {"Content-Encoding": "gzip"})
    assert code == 413


@pytest.mark.parametrize("path,method", [("/ingest", "POST"), ("/metrics", "GET")])
@pytest.mark.parametrize("token", [None, "wrong"], ids=["missing", "wrong"])
def test_token_required(running: Running, path: str, method: str, token: str | None) -> None:
    code, _ = running.request(method, path, ndjson(reads(0, 1)) if method == "POST" else None,
                              token=token)
    assert code == 401


def test_unknown_path_and_method(running: Running) -> None:
    assert running.request("GET", "/nope")[0] == 404
    assert running.request("GET", "/ingest")[0] == 405


def test_repeated_audit_records_are_dropped_and_counted(running: Running) -> None:
    # CloudTrail redelivers some eventIDs; a shipper retry resends a whole batch.
    batch = reads(0, 3, dataset="aws.cloudtrail")
    code, reply = running.request("POST", "/ingest", ndjson(batch + batch[:1]))
    assert code == 200
    code, reply = running.request("POST", "/ingest", ndjson(batch))
    assert code == 200
    text = running.request("GET", "/metrics")[1]
    lines = set(text.splitlines())
    assert 'secretsight_events_processed_total{source="aws.cloudtrail"} 3' in lines
    assert 'secretsight_duplicates_total{input="http"} 4' in lines


def test_metrics_exposition(running: Running) -> None:
    running.request("POST", "/ingest", ndjson(reads(0, 60, user="harvester")))
    code, text = running.request("GET", "/metrics")
    assert code == 200
    lines = set(text.splitlines())
    for expected in [
        'secretsight_events_processed_total{source="vault.audit"} 60',
        'secretsight_identity_reads_total{identity="harvester"} 60',
        'secretsight_findings_total{anomaly="bulk_read"} 1',
        'secretsight_http_requests_total{path="/ingest",code="200"} 1',
        "# TYPE secretsight_end_to_end_lag_seconds gauge",
        "# TYPE secretsight_last_event_timestamp_seconds gauge",
        "secretsight_first_path_accesses_total 0",
    ]:
        assert expected in lines


def test_identity_cardinality_is_bounded() -> None:
    m = Metrics()
    for i in range(100):
        for _ in range(i + 1):
            m.record_event("vault.audit", 0.0, True, f"id-{i}")
    series = [x for x in m.render().splitlines()
              if x.startswith("secretsight_identity_reads_total{")]
    assert len(series) == 21  # top 20 + other
    assert 'secretsight_identity_reads_total{identity="id-99"} 100' in series
    assert sum(int(x.rsplit(" ", 1)[1]) for x in series) == sum(range(1, 101))


def test_binds_loopback_by_default() -> None:
    from secretsight.watch.sidecar import parse_listen as _listen

    assert _listen(":8686") == ("127.0.0.1", 8686)


def test_normalized_events_with_fields_of_a_wrong_type_are_counted(running: Running) -> None:
    """Already-normalized events skip the normalizer's checks: a list where a string belongs,
    a number for a list of roles. Each is counted and the loop keeps going."""
    bad_roles = ev(at(0), user="u1", roles=[])
    bad_roles["user"]["roles"] = 5
    bad_user = ev(at(1), user="u1")
    bad_user["user"]["id"] = ["u1"]
    body = ndjson([bad_roles, bad_user, *reads(2, 2)])
    code, reply = running.request("POST", "/ingest", body)
    assert code == 200
    metrics = running.request("GET", "/metrics")[1]
    assert 'secretsight_parse_errors_total{input="http",reason="invalid_event"} 2' in metrics
    assert 'secretsight_events_processed_total{source="vault.audit"} 2' in metrics
    assert running.request("GET", "/healthz")[0] == 200
