"""Every compiled query parses with a real parser of its language, and every output file has
the structure its consumer (Loki ruler, Kibana import API, Splunk) requires."""

from __future__ import annotations

import configparser
import json
import re

import eql
import pytest
from luqum.parser import parser as lucene_parser
from support.compiled_rules import compiled, ndjson_rules, ruler_rules
from support.logql import parse_logql

LUCENE = sorted(
    (d["meta"]["secretsight"]["rule_name"], d["query"]) for d in ndjson_rules()
    if d["language"] == "lucene"
)
EQL = sorted(
    (d["meta"]["secretsight"]["rule_name"], d["query"]) for d in ndjson_rules()
    if d["language"] == "eql"
)

def _split_output() -> dict[str, list[str]]:
    """Loki's backend splits a log query over ~4 KiB into several: 300 user agents do it."""
    import warnings

    from secretsight.compile import compile_target
    from secretsight.config import Config

    agents = [f"scanner-{i:03d}/*" for i in range(300)]
    with warnings.catch_warnings():
        # The backend says how it partitions the query ("reducing partition count").
        warnings.simplefilter("ignore", UserWarning)
        out = compile_target("loki", config=Config(suspicious_user_agents=agents))
    import yaml

    doc = yaml.safe_load(out.files["loki/secretsight-rules.yaml"])
    expr = next(r["expr"] for g in doc["groups"] for r in g["rules"]
                if r["alert"] == "suspicious_user_agent")
    return {"queries": out.queries["suspicious_user_agent"], "expr": [expr]}


SPLIT = _split_output()
LOGQL = (
    sorted((f"{name}#{i}", q) for name, qs in compiled("loki").queries.items()
           for i, q in enumerate(qs))
    + sorted((f"ruler:{r['alert']}", r["expr"]) for r in ruler_rules())
    + [(f"split:suspicious_user_agent#{i}", q) for i, q in enumerate(SPLIT["queries"])]
    + [("split:ruler:suspicious_user_agent", SPLIT["expr"][0])]
)


def test_long_rule_split_into_several_queries() -> None:
    assert len(SPLIT["queries"]) > 1
    assert SPLIT["expr"][0].startswith("(sum by (user_id)") and ") > 0" in SPLIT["expr"][0]


@pytest.mark.parametrize(("name", "query"), LUCENE, ids=[n for n, _ in LUCENE])
def test_lucene_query_parses(name: str, query: str) -> None:
    tree = lucene_parser.parse(query)
    assert str(tree).strip()


@pytest.mark.parametrize(("name", "query"), EQL, ids=[n for n, _ in EQL])
def test_eql_query_parses(name: str, query: str) -> None:
    # Elasticsearch's EQL dialect (`:` and `like~`), with `with runs=` sequences.
    with eql.parser.elasticsearch_syntax, eql.parser.allow_runs, eql.parser.ignore_missing_functions:
        eql.parse_query(query)


@pytest.fixture(scope="module")
def logql_results() -> dict[str, dict]:
    return dict(zip([n for n, _ in LOGQL], parse_logql([q for _, q in LOGQL]), strict=True))


@pytest.mark.node
@pytest.mark.parametrize(("name", "query"), LOGQL, ids=[n for n, _ in LOGQL])
def test_logql_query_parses(name: str, query: str, logql_results: dict[str, dict]) -> None:
    result = logql_results[name]
    assert result["ok"], f"LogQL syntax errors near: {[e['near'] for e in result['errors']]}"


@pytest.mark.node
def test_logql_checker_rejects_bad_query() -> None:
    """The node checker itself can fail (a checker that accepts everything proves nothing)."""
    bad = ['{dataset="vault.audit"} | json | user_id=', 'sum by (user_id) (count_over_time({a="b"} [5m]']
    assert [r["ok"] for r in parse_logql(bad)] == [False, False]


RULER = ruler_rules()


@pytest.mark.parametrize("rule", RULER, ids=[r["alert"] for r in RULER])
def test_ruler_rule_shape(rule: dict) -> None:
    assert set(rule) >= {"alert", "expr", "for", "labels", "annotations"}
    assert rule["labels"]["severity"] in {"informational", "low", "medium", "high", "critical"}
    from secretsight.findings import ANOMALY_CLASSES

    assert rule["labels"]["anomaly"] in ANOMALY_CLASSES
    assert rule["annotations"]["summary"]
    # A ruler expression is a metric query, filtered by a comparison or by `and` (temporal):
    # it alerts when it returns series.
    assert rule["expr"].startswith(("sum", "count"))
    assert ">" in rule["expr"] or ") and sum" in rule["expr"]


@pytest.mark.parametrize("rule", ruler_rules(), ids=lambda r: f"{r['alert']}")
def test_ruler_rule_names_mitre(rule: dict) -> None:
    techniques = rule["annotations"]["mitre_attack_techniques"].split(", ")
    assert techniques and all(re.fullmatch(r"T\d{4}(\.\d{3})?", t) for t in techniques)
    assert rule["annotations"]["mitre_attack_tactics"].startswith("TA")


def test_ruler_file_groups() -> None:
    import yaml

    doc = yaml.safe_load(compiled("loki").files["loki/secretsight-rules.yaml"])
    assert list(doc) == ["groups"]
    names = [g["name"] for g in doc["groups"]]
    assert names == sorted(names) and len(set(names)) == len(names)
    for group in doc["groups"]:
        assert group["rules"], group["name"]
        assert group["interval"]


KIBANA = ndjson_rules()
# What the detection engine's import API needs for each rule type.
REQUIRED = {"rule_id", "name", "description", "type", "risk_score", "severity", "interval",
            "from", "enabled", "threat", "language", "query"}
TYPE_FIELDS = {"query": {"index"}, "eql": {"index"}, "threshold": {"index", "threshold"},
               "esql": set(),
               "new_terms": {"index", "new_terms_fields", "history_window_start"}}


@pytest.mark.parametrize("doc", KIBANA, ids=[d["meta"]["secretsight"]["rule_name"] for d in KIBANA])
def test_kibana_rule_fields(doc: dict) -> None:
    assert REQUIRED <= set(doc), REQUIRED - set(doc)
    assert doc["type"] in TYPE_FIELDS
    assert TYPE_FIELDS[doc["type"]] <= set(doc)
    assert {"query": "lucene", "eql": "eql", "threshold": "lucene", "esql": "esql",
            "new_terms": "lucene"}[doc["type"]] == doc["language"]
    assert doc["severity"] in {"low", "medium", "high", "critical"}
    assert 0 <= doc["risk_score"] <= 100
    assert doc["from"].startswith("now-") and doc["interval"][-1] in "smh"
    if doc["type"] == "esql":
        assert "index" not in doc  # ES|QL rules name their indices in the query
        assert doc["query"].startswith("from ")
    assert doc["threat"], "every rule maps to MITRE ATT&CK"
    for threat in doc["threat"]:
        assert threat["framework"] == "MITRE ATT&CK"
        assert threat["tactic"]["id"].startswith("TA") and threat["tactic"]["name"]
        for tech in threat["technique"]:
            assert tech["id"].startswith("T") and tech["name"]


def test_kibana_ndjson_is_one_object_per_line() -> None:
    text = compiled("elastic").files["elastic/secretsight-rules.ndjson"]
    lines = text.splitlines()
    assert lines and all(json.loads(line)["rule_id"] for line in lines)
    ids = [json.loads(line)["rule_id"] for line in lines]
    assert len(ids) == len(set(ids))


def _conf() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",), strict=True)
    parser.optionxform = str  # Splunk keys are case-sensitive
    parser.read_string(compiled("splunk").files["splunk/secretsight/default/savedsearches.conf"])
    return parser


STANZAS = _conf().sections()
# The alerts; the other stanzas are the baseline searches that keep the lookups.
ALERTS = [s for s in STANZAS if "action.logevent" in _conf()[s]]


@pytest.mark.parametrize("stanza", ALERTS)
def test_savedsearch_stanza(stanza: str) -> None:
    section = _conf()[stanza]
    assert section["search"].strip()
    assert section["enableSched"] == "1"
    assert len(section["cron_schedule"].split()) == 5
    assert section["dispatch.earliest_time"].startswith("-")
    assert section["dispatch.latest_time"]
    assert section["alert.severity"] in {"2", "3", "4", "5", "6"}
    assert "| bin _time" not in section["search"]


def test_savedsearches_cover_every_compiled_rule() -> None:
    assert len(ALERTS) == len(compiled("splunk").queries)
    assert sorted(set(STANZAS) - set(ALERTS)) == [
        f"SecretSight - Baseline{kind} - secretsight_{seen}_seen"
        for kind in ("", " prune") for seen in ("agent", "identity", "path", "reader")]
