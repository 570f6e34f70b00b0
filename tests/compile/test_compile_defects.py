"""The pySigma 1.5.1 backend defects the compiler works around (secretsight.compile.defects):
first each one is reproduced with the plain backend (so the day a backend release fixes it,
the test says the workaround can go), then the compiler's output is shown free of it."""

from __future__ import annotations

import textwrap
from pathlib import Path
from urllib.error import URLError

import pytest
from sigma.backends.elasticsearch import EqlBackend, ESQLBackend, LuceneBackend
from sigma.backends.loki import LogQLBackend
from sigma.backends.splunk import SplunkBackend
from sigma.collection import SigmaCollection

from secretsight.compile import compile_target, defects
from secretsight.compile.model import Unsupported

HEADER = """
status: experimental
description: defect reproduction
author: SecretSight tests
date: 2026-11-21
"""
READS = """
title: Reads
id: 0b7c6f0e-0000-4000-8000-0000000000a1
name: defect_reads
anomaly: bulk_read
logsource: {product: secretsight}
detection:
  selection: {secretsight.category: secret, secret.operation: read}
  condition: selection
level: informational
"""
BULK = """
title: Bulk
id: 0b7c6f0e-0000-4000-8000-0000000000a2
name: defect_bulk
anomaly: bulk_read
correlation: {type: event_count, rules: [defect_reads], group-by: [user.id], timespan: 5m, condition: {gt: 50}}
level: high
"""
PATHS = """
title: Paths
id: 0b7c6f0e-0000-4000-8000-0000000000a3
name: defect_paths
anomaly: path_diversity
correlation: {type: value_count, rules: [defect_reads], group-by: [user.id], timespan: 5m, condition: {gte: 10, field: secret.path}}
level: high
"""
CIDR = """
title: Cidr
id: 0b7c6f0e-0000-4000-8000-0000000000a4
name: defect_cidr
anomaly: dual_source_ip
logsource: {product: secretsight}
detection:
  selection: {source.ip|cidr: 10.0.0.0/8}
  condition: selection
level: low
"""
HOUR = """
title: Hour
id: 0b7c6f0e-0000-4000-8000-0000000000a5
name: defect_hour
anomaly: admin_off_hours
logsource: {product: secretsight}
detection:
  selection:
    user.roles: admin
    '@timestamp|hour': [1, 2]
  condition: selection
level: medium
"""
LITERALS = """
title: Literals
id: 0b7c6f0e-0000-4000-8000-0000000000a6
name: defect_literals
anomaly: denied_burst
logsource: {product: secretsight}
tags: [attack.credential-access, attack.t1555]
detection:
  star: {secret.path: '\\*'}
  flag: {aws.resource_policy_public: true}
  codes: {kubernetes.response_code: [401, 403]}
  condition: star or flag or codes
level: low
"""


def rules(*docs: str) -> SigmaCollection:
    return SigmaCollection.from_yaml("\n---\n".join(HEADER + d for d in docs))


def convert(backend_cls: type, fmt: str, *docs: str) -> list[str]:
    out = backend_cls().convert(rules(*docs), fmt)
    return out if isinstance(out, list) else [out]


# ---------------------------------------------------------------------------------------------
# Each defect, reproduced with the plain backends.


def test_loki_ruler_embeds_dict_repr() -> None:
    import yaml

    ruler = yaml.safe_load(convert(LogQLBackend, "ruler", READS, BULK)[0])
    bulk = next(r for r in ruler["groups"][0]["rules"] if r["alert"] == "Bulk")
    assert "{'alert': 'Reads'" in bulk["expr"]


def test_loki_cidr_keeps_dotted_field() -> None:
    assert 'source.ip=ip("10.0.0.0/8")' in convert(LogQLBackend, "default", CIDR)[0]


def test_loki_defaults_to_logfmt() -> None:
    assert "| logfmt |" in convert(LogQLBackend, "default", CIDR)[0]


def test_loki_literal_star_becomes_backslash_wildcard() -> None:
    backend = LogQLBackend(collect_errors=True)
    queries = backend.convert(rules(LITERALS.replace("star or flag or codes", "star")))
    assert "secret_path=~`(?i)^\\\\.*$`" in queries[0]


def test_loki_refuses_booleans() -> None:
    with pytest.raises(NotImplementedError, match="Boolean value True not supported"):
        LogQLBackend().convert(rules(LITERALS.replace("star or flag or codes", "flag")))


def test_loki_value_count_mutates_group_by() -> None:
    """Why the compiler loads a fresh rule set per target: converting a value_count twice
    with the same rule objects repeats the field in `by (...)`."""
    coll = rules(READS, PATHS)
    LogQLBackend().convert(coll)
    assert "by (user_id, secret_path, secret_path)" in LogQLBackend().convert(coll)[0]


def test_eql_value_count_is_not_distinct() -> None:
    query = convert(EqlBackend, "default", READS, PATHS)[0]
    assert "by secret.path with runs=10" in query  # 10 events with the SAME path


def test_eql_event_count_gt_is_one_short() -> None:
    assert convert(EqlBackend, "default", READS, BULK)[0].endswith("with runs=50")  # gt: 50


def test_eql_numeric_list_uses_like() -> None:
    query = convert(EqlBackend, "default", LITERALS.replace("star or flag or codes", "codes"))[0]
    assert "kubernetes.response_code like~ (401, 403)" in query


@pytest.mark.parametrize(("backend", "bucket"), [(ESQLBackend, "date_trunc(5minutes, @timestamp)"),
                                                 (SplunkBackend, "| bin _time span=5m")],
                         ids=["esql", "splunk"])
def test_correlations_use_fixed_buckets(backend: type, bucket: str) -> None:
    assert bucket in convert(backend, "default", READS, BULK)[0]


@pytest.mark.parametrize(("backend", "wrong"), [
    (LogQLBackend, "unixToTime ._timestamp"),  # @timestamp is RFC 3339, not a unix time
    (LuceneBackend, "@timestamp:"),
    (EqlBackend, "@timestamp like~ (1, 2)"),
    (ESQLBackend, "`@timestamp` in (1, 2)"),
    (SplunkBackend, '"@timestamp" IN (1, 2)'),
], ids=["loki", "lucene", "eql", "esql", "splunk"])
def test_hour_modifier_mistranslated(backend: type, wrong: str) -> None:
    assert wrong in convert(backend, "default", HOUR)[0]


def test_siem_rule_format_downloads_attack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sigma.data.mitre_attack as mitre

    calls: list[str] = []

    def no_network(url: str, *args: object, **kwargs: object) -> None:
        calls.append(url)
        raise URLError("network disabled in tests")

    monkeypatch.setattr(mitre, "urlopen", no_network)
    monkeypatch.setattr(mitre, "_custom_cache_dir", tmp_path)  # an empty cache
    monkeypatch.setattr(mitre, "_cache", None)
    with pytest.raises(RuntimeError, match="MITRE ATT&CK"):
        LuceneBackend().convert(rules(LITERALS), "siem_rule")
    assert calls and calls[0].startswith("https://")


# ---------------------------------------------------------------------------------------------
# The compiler's outputs are free of them.


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rules")
    for name, doc in {"defect_reads": READS, "defect_bulk": BULK, "defect_paths": PATHS,
                      "defect_cidr": CIDR, "defect_hour": HOUR, "defect_literals": LITERALS}.items():
        (root / "cross").mkdir(exist_ok=True)
        (root / "cross" / f"{name}.yml").write_text(textwrap.dedent(HEADER + doc))
    return root


@pytest.mark.parametrize("target", ["loki", "elastic", "splunk"])
def test_hour_rule_left_out_with_reason(scratch: Path, target: str) -> None:
    out = compile_target(target, paths=[scratch])
    cell = next(c for c in out.support if c.rule == "defect_hour")
    assert cell.status == "unsupported"
    assert "@timestamp|SigmaTimestampHourModifier" in cell.details[0]
    assert "defect_hour" not in out.queries


def test_loki_output_free_of_defects(scratch: Path) -> None:
    out = compile_target("loki", paths=[scratch])
    assert not out.errors, [str(e) for e in out.errors]
    from secretsight.compile.stateful import RULES as STATEFUL

    stateful = {r.name for r in STATEFUL}  # target-native, not backend output: no `| json`
    for name, queries in out.queries.items():
        if name not in stateful:
            defects.check_loki(queries[0])  # raises Unsupported on any known defect
    assert 'source_ip=ip("10.0.0.0/8")' in out.queries["defect_cidr"][0]
    assert "secret_path=~`(?i)^\\*$`" in out.queries["defect_literals"][0]
    assert "aws_resource_policy_public=`true`" in out.queries["defect_literals"][0]
    assert "{'" not in out.files["loki/secretsight-rules.yaml"]


def test_elastic_output_free_of_defects(scratch: Path) -> None:
    out = compile_target("elastic", paths=[scratch])
    assert not out.errors, [str(e) for e in out.errors]
    assert out.queries["defect_bulk"][0].endswith("with runs=51")
    paths = out.queries["defect_paths"][0]
    assert "count_distinct(secret.path) by user.id" in paths and "date_trunc" not in paths


def test_splunk_output_free_of_defects(scratch: Path) -> None:
    out = compile_target("splunk", paths=[scratch])
    assert not out.errors, [str(e) for e in out.errors]
    for name in ("defect_bulk", "defect_paths"):
        assert "bin _time" not in out.queries[name][0]
        assert "streamstats time_window=5m" in out.queries[name][0]


@pytest.mark.parametrize("query", [
    "{job=~\".+\"} | logfmt | a=`b`",
    "sum(count_over_time({'alert': 'x'} [5m]))",
    "{a=\"b\"} | json | source.ip=ip(\"10.0.0.0/8\")",
], ids=["logfmt", "dict_repr", "dotted_cidr"])
def test_loki_guard_refuses_defective_query(query: str) -> None:
    with pytest.raises(Unsupported):
        defects.check_loki(query)
