"""secretsight.rules: loading, contract errors with file and line, thresholds from the config,
and the placeholder pipeline on every target backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from sigma.correlations import SigmaCorrelationRule

from secretsight.config import Config
from secretsight.errors import SecretSightError
from secretsight.rules import (
    EMPTY_LIST_SENTINEL,
    RULES_DIR,
    load_rules,
    placeholder_pipeline,
    placeholder_values,
    sigma_cli_layout_problems,
    split_documents,
)

PLAIN = """\
title: Test rule
id: {id}
name: {name}
anomaly: {anomaly}
status: experimental
description: test
author: test
date: 2026-11-21
tags: [attack.t1555]
logsource:
  product: secretsight
  service: vault
detection:
  selection:
    {field}: x
  condition: selection
level: low
"""


def _write(tmp: Path, name: str, text: str, source: str = "vault") -> Path:
    path = tmp / source / f"{name}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


def _plain(tmp: Path, name: str, *, id="0b7c2b38-2e5f-4b0f-9d2b-5a8f0c1e2d3a",
           anomaly="decoy_access", field="secret.path", stem=None) -> Path:
    return _write(tmp, stem or name, PLAIN.format(id=id, name=name, anomaly=anomaly, field=field))


@pytest.mark.parametrize(
    ("kwargs", "message", "line"),
    [
        ({"stem": "other"}, "must equal the file stem", 3),
        ({"anomaly": "harvest"}, "is not one of", 4),
        ({"field": "request.path"}, "not in the normalized schema", 15),
    ],
    ids=["name_not_stem", "unknown_anomaly", "unknown_field"],
)
def test_contract_errors_carry_file_and_line(tmp_path, kwargs, message, line) -> None:
    path = _plain(tmp_path, "my_rule", **kwargs)
    rules = load_rules([tmp_path])
    assert [(e.file, e.line) for e in rules.errors] == [(str(path), line)]
    assert message in rules.errors[0].message
    assert rules.rules == []


def test_errors_are_collected_not_stopping_the_others(tmp_path) -> None:
    _plain(tmp_path, "good_rule")
    _write(tmp_path, "broken", "title: [unclosed\n")
    _plain(tmp_path, "bad_anomaly", id="1b7c2b38-2e5f-4b0f-9d2b-5a8f0c1e2d3a", anomaly="nope")
    rules = load_rules([tmp_path])
    assert [m.name for m in rules.rules] == ["good_rule"]
    assert sorted(Path(e.file).name for e in rules.errors) == ["bad_anomaly.yml", "broken.yml"]
    with pytest.raises(SecretSightError, match="2 rule error"):
        rules.raise_errors()


def test_collect_errors_false_raises_the_first(tmp_path) -> None:
    _plain(tmp_path, "bad_anomaly", anomaly="nope")
    with pytest.raises(SecretSightError, match="anomaly"):
        load_rules([tmp_path], collect_errors=False)


def test_duplicate_ids_are_reported(tmp_path) -> None:
    _plain(tmp_path, "rule_a")
    _plain(tmp_path, "rule_b")  # same id
    rules = load_rules([tmp_path])
    assert len(rules.rules) == 1
    assert "already used" in rules.errors[0].message


def test_unknown_placeholder_is_reported(tmp_path) -> None:
    text = PLAIN.format(
        id="2b7c2b38-2e5f-4b0f-9d2b-5a8f0c1e2d3a", name="ph_rule", anomaly="decoy_access",
        field="secret.path|expand",
    ).replace("secret.path|expand: x", "secret.path|expand: '%no_such_list%'")
    _write(tmp_path, "ph_rule", text)
    rules = load_rules([tmp_path])
    assert "%no_such_list%" in rules.errors[0].message


def _last_document(path: Path) -> str:
    return split_documents(path.read_text("utf-8"))[-1].lstrip("\n")


def test_correlation_with_unknown_reference_is_reported(tmp_path) -> None:
    text = _last_document(RULES_DIR / "cross" / "bulk_read.yml").replace("name: bulk_read",
                                                                          "name: corr")
    path = _write(tmp_path, "corr", text, source="cross")
    rules = load_rules([path])
    assert "unknown rule(s): secret_reads" in rules.errors[0].message
    assert rules.errors[0].line == text.splitlines().index("  rules:") + 1
    assert rules.rules == []


def test_reference_to_another_file_loads(tmp_path) -> None:
    """`secretsight compile` orders rules itself; only sigma-cli needs the one-file layout
    (checked on the repo's rules by test_rules.py)."""
    block, corr = split_documents((RULES_DIR / "cross" / "bulk_read.yml").read_text("utf-8"))
    _write(tmp_path, "secret_reads", block, source="cross")
    path = _write(tmp_path, "bulk_read", corr, source="cross")
    rules = load_rules([tmp_path])
    assert rules.errors == []
    assert [m.name for m in rules.rules] == ["bulk_read", "secret_reads"]
    assert sigma_cli_layout_problems(path) == ["bulk_read -> secret_reads"]
    assert sigma_cli_layout_problems(RULES_DIR / "cross" / "bulk_read.yml") == []


def test_building_block_after_its_correlation_is_refused(tmp_path) -> None:
    block, corr = split_documents((RULES_DIR / "cross" / "bulk_read.yml").read_text("utf-8"))
    path = _write(tmp_path, "bulk_read", corr + "\n---\n" + block.lstrip("\n"), source="cross")
    messages = [e.message for e in load_rules([path]).errors]
    assert any("'secret_reads' must equal the file stem" in m for m in messages)
    assert any("'bulk_read' is not referenced by a correlation after it" in m for m in messages)
    assert sigma_cli_layout_problems(path) == ["bulk_read -> secret_reads"]


def test_unreferenced_document_is_refused(tmp_path) -> None:
    two = PLAIN.format(id="3b7c2b38-2e5f-4b0f-9d2b-5a8f0c1e2d3a", name="extra",
                       anomaly="decoy_access", field="secret.path")
    one = PLAIN.format(id="4b7c2b38-2e5f-4b0f-9d2b-5a8f0c1e2d3a", name="main_rule",
                       anomaly="decoy_access", field="secret.path")
    path = _write(tmp_path, "main_rule", two + "---\n" + one)
    rules = load_rules([path])
    assert [(e.line, "only the file's last rule may stand alone" in e.message)
            for e in rules.errors] == [(3, True)]
    assert [m.name for m in rules.rules] == ["main_rule"]


def test_lines_point_into_later_documents(tmp_path) -> None:
    first = PLAIN.format(id="5b7c2b38-2e5f-4b0f-9d2b-5a8f0c1e2d3a", name="block",
                         anomaly="decoy_access", field="secret.path")
    bad = PLAIN.format(id="6b7c2b38-2e5f-4b0f-9d2b-5a8f0c1e2d3a", name="rule_two",
                       anomaly="harvest", field="secret.path")
    path = _write(tmp_path, "rule_two", "# header\n" + first + "---\n" + bad)
    errors = load_rules([path]).errors
    assert (str(path), PLAIN.count("\n") + 2 + 4) in [(e.file, e.line) for e in errors]


def test_thresholds_come_from_the_config() -> None:
    config = Config.model_validate({
        "thresholds": {
            "bulk_read": {"count": 200, "window": "15m"},
            "path_diversity": {"distinct_paths": 4, "reads": 8, "window": "2m"},
            "dual_source_ip_window": "3h",
            "long_ttl_token_max": "2h",
        }
    })
    rules = load_rules(config=config)
    col = rules.collection
    assert col["bulk_read"].condition.count == 200
    assert col["bulk_read"].timespan.seconds == 900
    assert col["path_diversity_distinct_paths"].condition.count == 4
    assert col["path_diversity_read_count"].condition.count == 8
    assert col["path_diversity"].timespan.seconds == 120
    assert col["dual_source_ip"].timespan.seconds == 3 * 3600
    assert col["multiple_external_ips"].timespan.seconds == 3 * 3600
    items = col["vault_long_ttl_token"].detection.detections["selection"].detection_items
    (ttl,) = [i for i in items if i.field == "vault.created_token.ttl"]
    assert ttl.value[0].number.number == 7200
    assert rules.by_name("bulk_read").thresholds == {"condition": 200, "timespan": "15m"}


def test_default_load_matches_yaml() -> None:
    rules = load_rules()
    assert rules.collection["bulk_read"].condition.count == 50
    assert rules.collection["cloudtrail_path_diversity"].timespan.seconds == 600


def test_building_blocks_do_not_emit() -> None:
    rules = load_rules()
    assert rules.by_name("secret_reads").emits is False
    assert rules.by_name("path_diversity_read_count").emits is False
    assert rules.by_name("bulk_read").emits is True


def test_placeholder_values_never_empty() -> None:
    values = placeholder_values(Config())
    assert values["decoy_paths"] == [EMPTY_LIST_SENTINEL]
    assert values["allow_secret_destruction"] == ["system:serviceaccount:kube-system:*"]
    assert values["internal_networks"][0] == "10.0.0.0/8"


def test_internal_networks_are_normalised() -> None:
    values = placeholder_values(Config(internal_networks=["10.1.2.3/16"]))
    assert values["internal_networks"] == ["10.1.0.0/16"]


def _backends():
    from sigma.backends.elasticsearch import LuceneBackend
    from sigma.backends.loki import LogQLBackend
    from sigma.backends.splunk import SplunkBackend
    from sigma.backends.sqlite import sqliteBackend

    return {
        "sqlite": sqliteBackend,
        "loki": LogQLBackend,
        "lucene": LuceneBackend,
        "splunk": SplunkBackend,
    }


@pytest.mark.parametrize("target", ["sqlite", "loki", "lucene", "splunk"])
def test_placeholders_expand_on_every_backend(target) -> None:
    config = Config(internal_networks=["10.9.0.0/16"], decoy_paths=["secret/decoy/*"])
    rules = load_rules(
        [RULES_DIR / "cross" / "dual_source_ip.yml", RULES_DIR / "cross" / "decoy_access.yml"],
        config,
    )
    backend = _backends()[target](placeholder_pipeline(config))
    queries = {}
    for rule in rules.collection:
        if isinstance(rule, SigmaCorrelationRule):
            continue  # dual_source_ip itself: only its building blocks are plain rules
        # building blocks convert too (targets that alert on them call convert_rule directly)
        rule._output = True
        queries[rule.name] = "\n".join(str(q) for q in backend.convert_rule(rule))
    assert "decoy_paths" not in queries["decoy_access"]
    assert "decoy" in queries["decoy_access"]
    assert "10.9" in queries["secret_reads_internal"]
    assert "internal_networks" not in queries["secret_reads_internal"]


def test_cidr_placeholder_matches_as_network_on_sqlite() -> None:
    import sqlite3

    from sigma.backends.sqlite import sqliteBackend

    rules = load_rules([RULES_DIR / "cross" / "dual_source_ip.yml"])
    rule = rules.collection["secret_reads_internal"]
    rule._output = True
    (query,) = sqliteBackend(placeholder_pipeline(Config())).convert_rule(rule)
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE logs (`secretsight.category`, `secret.operation`, `source.ip`)"
    )
    rows = [("secret", "read", ip) for ip in ("10.20.30.40", "172.31.0.1", "172.32.0.1", "8.8.8.8")]
    conn.executemany("INSERT INTO logs VALUES (?, ?, ?)", rows)
    got = sorted(r[2] for r in conn.execute(query))
    assert got == ["10.20.30.40", "172.31.0.1"]
