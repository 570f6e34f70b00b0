"""The Vector and Fluent Bit examples that feed `secretsight watch` speak its protocol: the
configs point at /ingest with NDJSON framing, a bearer token and a batch under the body limit;
real Vault sample lines normalized by the real VRL program (vrl-python), kept by the example's
own filter condition, framed and compressed as the example configures, are accepted by a real
/ingest endpoint on loopback."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
import yaml
from vrl_python import VRLRuntime

REPO = Path(__file__).resolve().parents[2]
VECTOR = REPO / "vector" / "watch-http-sink.yaml"
FB_CONF = REPO / "fluentbit" / "watch-http-output.conf"
FB_YAML = REPO / "fluentbit" / "watch-http-output.yaml"
DEFAULT_MAX_BODY = 10 * 1024 * 1024


def fluentbit_conf_sections(path: Path) -> list[tuple[str, list[tuple[str, str]]]]:
    """Classic format: [SECTION] then `Key Value` lines (keys repeat, so no dict)."""
    sections: list[tuple[str, list[tuple[str, str]]]] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "@SET")):
            continue
        if line.startswith("["):
            sections.append((line.strip("[]").upper(), []))
            continue
        key, _, value = line.partition(" ")
        sections[-1][1].append((key.lower(), value.strip()))
    return sections


def test_vector_sink_targets_ingest() -> None:
    cfg = yaml.safe_load(VECTOR.read_text())
    sink = cfg["sinks"]["secretsight_watch"]
    assert sink["type"] == "http" and sink["method"] == "post"
    assert re.search(r"/ingest}?\"?$", sink["uri"])
    assert sink["encoding"]["codec"] == "json"
    assert sink["framing"]["method"] == "newline_delimited"
    assert sink["auth"]["strategy"] == "bearer"
    assert sink["batch"]["max_bytes"] < DEFAULT_MAX_BODY
    assert cfg["acknowledgements"]["enabled"] is True
    assert sink["inputs"] == ["normalized_only"]


def _fb_output(sections) -> dict[str, list[str]]:
    """The output that feeds watch (the others take dead letters and skips)."""
    outs = [dict_multi(kv) for name, kv in sections if name == "OUTPUT"]
    (out,) = [o for o in outs if o["alias"] == ["secretsight_watch"]]
    return out


def dict_multi(kv: list[tuple[str, str]]) -> dict[str, list[str]]:
    d: dict[str, list[str]] = {}
    for k, v in kv:
        d.setdefault(k, []).append(v)
    return d


def test_fluentbit_conf_and_yaml_agree() -> None:
    conf = _fb_output(fluentbit_conf_sections(FB_CONF))
    ycfg = yaml.safe_load(FB_YAML.read_text())
    (yout,) = [o for o in ycfg["pipeline"]["outputs"] if o["alias"] == "secretsight_watch"]
    y = {k.lower(): (v if isinstance(v, list) else [str(v).lower() if isinstance(v, bool)
                                                    else str(v)]) for k, v in yout.items()}
    for key in ("name", "match", "uri", "format", "json_date_key", "compress", "retry_limit",
                "header"):
        assert [v.lower() for v in conf[key]] == [str(v).lower() for v in y[key]], key
    assert conf["uri"] == ["/ingest"] and conf["format"] == ["json_lines"]
    assert any(h.startswith("Authorization Bearer ") for h in conf["header"])
    # the same filters, in the same order
    conf_filters = [dict_multi(kv)["name"][0] for n, kv in fluentbit_conf_sections(FB_CONF)
                    if n == "FILTER"]
    assert conf_filters == [f["name"] for f in ycfg["pipeline"]["filters"]]


@pytest.fixture
def ingest():
    from support.watch_ingest import Running

    r = Running("tok")
    yield r
    r.stop()


def _vault_lines(samples_dir: Path) -> list[str]:
    path = samples_dir / "vault" / "hashicorp-vault_website_docs_audit_log.mdx_extract.ndjson"
    return [x for x in path.read_text().splitlines() if x.strip()]


def test_vector_pipeline_end_to_end(samples_dir: Path, ingest) -> None:
    cfg = yaml.safe_load(VECTOR.read_text())
    program = (REPO / "vector" / "vault.vrl").read_text()
    condition = cfg["transforms"]["normalized_only"]["condition"]
    runtime = VRLRuntime()
    kept = []
    for line in _vault_lines(samples_dir):
        event = runtime.execute(program, {"message": line}).processed_event
        verdict = runtime.execute(f"keep = ({condition})\n. = {{\"keep\": keep}}", event)
        if verdict.processed_event["keep"]:
            kept.append(event)
    assert kept, "the sample must yield normalized events"
    # newline_delimited framing of json-encoded events, gzip, bearer auth: as configured
    body = gzip.compress("".join(json.dumps(e) + "\n" for e in kept).encode())
    code, reply = ingest.request("POST", "/ingest", body,
                                 {"Content-Encoding": "gzip",
                                  "Content-Type": "application/x-ndjson"}, token="tok")
    assert (code, reply["accepted"], reply["rejected"]) == (200, len(kept), 0)


def test_fluentbit_json_lines_body_is_accepted(ingest) -> None:
    """json_lines with Json_Date_Key false: one record per line, as normalized."""
    from support.event_builders import at, ev

    records = [ev(at(i), path=f"secret/p{i}") for i in range(3)]
    body = gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode())
    code, reply = ingest.request("POST", "/ingest", body, {"Content-Encoding": "gzip"},
                                 token="tok")
    assert (code, reply["accepted"]) == (200, 3)
