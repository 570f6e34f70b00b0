"""The Sigma rule content: SigmaHQ validators, the SecretSight contract, and per-rule positive
and negative cases replayed on the embedded engine (pySigma's SQLite backend)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from sigma.correlations import SigmaCorrelationRule
from sigma.plugins import InstalledSigmaPlugins
from sigma.validation import SigmaValidator
from support.rule_cases import CASES_DIR, Case, case_files, deep_merge, load_cases, rule_path_for
from support.sigma_cli import sigma_cli

from secretsight import anomalies, schema
from secretsight.config import Config, load_config
from secretsight.engine import Engine
from secretsight.findings import ANOMALY_CLASSES
from secretsight.rules import (
    PLACEHOLDERS,
    RULES_DIR,
    SOURCES,
    config_value,
    load_rules,
    rule_documents,
    rule_fields,
    rule_files,
    rule_placeholders,
    sigma_cli_layout_problems,
)

REPO = Path(__file__).resolve().parents[2]
RULE_FILES = rule_files()
RULE_IDS = [p.stem for p in RULE_FILES]  # a file is named like its alerting rule
CASE_FILES = case_files()

# Anomaly classes the catalogue assigns to Sigma (engine sigma or both).
SIGMA_CLASSES = {c.name for c in anomalies.catalogue().values() if c.sigma}

# SigmaHQ validators that cannot run offline: both fetch the MITRE STIX bundles from GitHub on
# first use. ATT&CK tags are checked below against the bundled table of secretsight.compile.
OFFLINE_EXCLUDED = {"attacktag", "d3_fendtag"}
# Issues accepted for one rule, with the reason: (rule name, validator id, issue class).
ACCEPTED = {
    # `\*` is the literal value `*` (a cluster-wide list; an RBAC rule granting every verb).
    ("kubernetes_secret_enumeration", "escaped_wildcard", "EscapedWildcardIssue"),
    ("kubernetes_rbac_secret_access", "escaped_wildcard", "EscapedWildcardIssue"),
}
ACCEPTED_ISSUES = {(rule, issue) for rule, _, issue in ACCEPTED}


@cache
def ruleset():
    return load_rules()


@cache
def validator() -> SigmaValidator:
    validators = InstalledSigmaPlugins.autodiscover().validators
    chosen = [v for n, v in validators.items() if n not in OFFLINE_EXCLUDED]
    return SigmaValidator(chosen)  # type: ignore[arg-type]


def _rule(name: str):
    return ruleset().collection[name]


def _raw(name: str) -> dict[str, Any]:
    """The rule's YAML document (a file holds building blocks, then its alerting rule)."""
    (raw,) = [d for d in rule_documents(ruleset().by_name(name).path) if d["name"] == name]
    return raw


RULE_NAMES = sorted(m.name for m in ruleset().rules)


def test_rule_set_loads_without_errors() -> None:
    assert [str(e) for e in ruleset().errors] == []
    assert len(ruleset().rules) == sum(len(rule_documents(p)) for p in RULE_FILES)


@pytest.mark.parametrize("path", RULE_FILES, ids=RULE_IDS)
def test_file_holds_its_rule_last_with_its_references(path: Path) -> None:
    """What makes `sigma convert <dir>` independent of the file-system order (see
    secretsight.rules.sigma_cli_layout_problems): every reference resolves inside the file,
    to a rule before it."""
    docs = rule_documents(path)
    assert docs[-1]["name"] == path.stem
    assert sigma_cli_layout_problems(path) == []
    names = [d["name"] for d in docs]
    assert all(ruleset().by_name(n).emits is False for n in names[:-1])
    assert ruleset().by_name(path.stem).emits is True


@pytest.mark.parametrize("name", RULE_NAMES)
def test_sigmahq_validators(name: str) -> None:
    rule = _rule(name)
    issues = [
        f"{type(i).__name__}: {i.description}"
        for i in validator().validate_rule(rule)
        if (name, type(i).__name__) not in ACCEPTED_ISSUES
    ]
    assert issues == []


@pytest.mark.parametrize("name", RULE_NAMES)
def test_contract(name: str) -> None:
    raw = _raw(name)
    meta = ruleset().by_name(name)
    path = meta.path
    rule = _rule(name)
    assert raw["name"] == name
    assert raw["anomaly"] in ANOMALY_CLASSES
    assert path.parent.name in SOURCES
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(raw["date"]))
    assert raw.get("level") in ("informational", "low", "medium", "high", "critical")
    if meta.emits:  # building blocks never alert; everything that alerts says so
        assert raw["description"] and raw["falsepositives"]
        assert any(t.startswith("attack.t") for t in raw["tags"])
    if not isinstance(rule, SigmaCorrelationRule):
        assert raw["logsource"]["product"] == "secretsight"
        expected = None if path.parent.name == "cross" else path.parent.name
        assert raw["logsource"].get("service") == expected
    assert rule_fields(rule) <= set(schema.load().fields), rule_fields(rule) - set(
        schema.load().fields
    )
    assert rule_placeholders(rule) <= set(PLACEHOLDERS)


@pytest.mark.parametrize("name", RULE_NAMES)
def test_attack_tags_are_known(name: str) -> None:
    from secretsight.compile import attack

    table = attack.table()
    tags = _raw(name)["tags"]
    unknown = [
        t for t in tags
        if t.startswith("attack.")
        and t[7:] not in table["tactics"]
        and t[7:].upper() not in table["techniques"]
    ]
    assert unknown == []


@pytest.mark.parametrize("name", RULE_NAMES)
def test_yaml_defaults_equal_config_defaults(name: str) -> None:
    """The numbers written in the rule are what `Config()` would put there."""
    raw = _raw(name)
    applied = ruleset().by_name(name).thresholds
    corr = raw.get("correlation", {})
    for target, value in applied.items():
        if target == "condition":
            ops = {k: v for k, v in corr["condition"].items() if k != "field"}
            assert list(ops.values()) == [value]
        elif target == "timespan":
            assert corr["timespan"] == value
        else:
            ident, _, item = target[len("detection."):].partition(".")
            assert raw["detection"][ident][item] == value


def test_sigma_cli_check_passes(tmp_path: Path) -> None:
    """`sigma check` (sigma-cli) on the rule directory as users run it: nothing but rules there."""
    import subprocess

    sigma = sigma_cli()
    exclusions: dict[str, list[str]] = {}
    for rule, validator_id, _ in ACCEPTED:
        exclusions.setdefault(ruleset().by_name(rule).id, []).append(validator_id)
    config = tmp_path / "validation.yml"
    config.write_text(yaml.safe_dump({
        "validators": ["all", *(f"-{v}" for v in sorted(OFFLINE_EXCLUDED))],
        "exclusions": exclusions,
    }))
    result = subprocess.run(
        [str(sigma), "check", "--fail-on-issues", "--fail-on-error", "-c", str(config),
         str(RULES_DIR)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Found 0 errors, 0 condition errors and 0 issues" in result.stdout, result.stdout[-3000:]


def test_rule_directory_holds_only_rules() -> None:
    """sigma-cli loads every .yml under the directory as a Sigma rule."""
    stray = sorted(str(p.relative_to(RULES_DIR)) for p in RULES_DIR.rglob("*")
                   if p.is_file() and p not in RULE_FILES)
    assert stray == []


def test_names_and_ids_unique() -> None:
    names = [m.name for m in ruleset().rules]
    ids = [m.id for m in ruleset().rules]
    assert len(set(names)) == len(names)
    assert len(set(ids)) == len(ids)


def test_every_sigma_anomaly_has_an_emitting_rule() -> None:
    covered = {m.anomaly for m in ruleset().rules if m.emits}
    assert SIGMA_CLASSES - covered == set()


def test_every_placeholder_resolves_in_config() -> None:
    for name, dotted in PLACEHOLDERS.items():
        assert isinstance(config_value(Config(), dotted), list), name


def test_only_admin_activity_is_target_only() -> None:
    assert [m.name for m in ruleset().rules if not m.embedded] == ["admin_activity"]


def test_example_config_equals_defaults() -> None:
    assert load_config(REPO / "config" / "secretsight.example.yml") == Config()


def _keys(model: Any, prefix: str = "") -> set[str]:
    out = set()
    for name in type(model).model_fields:
        value = getattr(model, name)
        out.add(prefix + name)
        if hasattr(type(value), "model_fields"):
            out |= _keys(value, f"{prefix}{name}.")
    return out


def _yaml_keys(data: Any, prefix: str = "") -> set[str]:
    out = set()
    if isinstance(data, dict):
        for key, value in data.items():
            out.add(prefix + key)
            out |= _yaml_keys(value, f"{prefix}{key}.")
    return out


def test_example_config_documents_every_key() -> None:
    data = yaml.safe_load((REPO / "config" / "secretsight.example.yml").read_text("utf-8"))
    assert _keys(Config()) - _yaml_keys(data) == set()


# ---- cases ------------------------------------------------------------------------------------

ALL_CASES: list[Case] = [c for f in CASE_FILES for c in load_cases(f)]


def test_every_rule_has_cases_that_fire_and_stay_silent() -> None:
    by_rule: dict[str, set[bool]] = {}
    for case in ALL_CASES:
        by_rule.setdefault(case.rule, set()).add(case.expect > 0)
    emitting = {m.name for m in ruleset().rules if m.emits}
    missing = sorted(n for n in emitting if by_rule.get(n) != {True, False})
    assert missing == []


@pytest.mark.parametrize(
    "path", CASE_FILES, ids=[str(p.relative_to(CASES_DIR).with_suffix("")) for p in CASE_FILES]
)
def test_case_file_maps_to_a_rule(path: Path) -> None:
    """tests/rules/cases/<source>/<name>.yml mirrors sigma/rules/<source>/<name>.yml: a case file
    without its rule (renamed, moved, deleted) would silently test nothing."""
    assert rule_path_for(path, RULES_DIR) in RULE_FILES


@pytest.mark.parametrize("path", RULE_FILES, ids=RULE_IDS)
def test_rule_file_has_a_case_file(path: Path) -> None:
    """Every rule file (named like its alerting rule) has its case file at the mirrored path;
    the building blocks in it are exercised through the correlation's cases."""
    assert (CASES_DIR / path.relative_to(RULES_DIR)).is_file()


@pytest.mark.parametrize(
    "case", ALL_CASES, ids=[f"{c.source}/{c.rule}::{c.id}" for c in ALL_CASES]
)
def test_case_events_follow_the_schema(case: Case) -> None:
    problems = {i: schema.validate(e) for i, e in enumerate(case.events)}
    assert {i: p for i, p in problems.items() if p} == {}


@pytest.mark.parametrize(
    "case", ALL_CASES, ids=[f"{c.source}/{c.rule}::{c.id}" for c in ALL_CASES]
)
def test_case(case: Case, tmp_path: Path) -> None:
    config = Config.model_validate(deep_merge(Config().model_dump(), case.config))
    path = ruleset().by_name(case.rule).path  # the file holds every rule it references
    if ruleset().by_name(case.rule).embedded is False:
        # Target-only rules are skipped by `scan`; replay them here without the marker.
        text = path.read_text("utf-8")
        path = tmp_path / case.source / path.name
        path.parent.mkdir()
        path.write_text(re.sub(r"(?m)^embedded: false\n", "", text), "utf-8")
    rules = load_rules([path], config)
    assert [str(e) for e in rules.errors] == []
    engine = Engine(config)
    engine.load(case.events)
    findings = engine.run(rules)
    assert [str(e) for e in engine.errors] == []
    mine = [f for f in findings if f.rule_name == case.rule]
    assert len(mine) == case.expect, [f.to_json() for f in mine]
    assert {f.anomaly for f in mine} <= {ruleset().by_name(case.rule).anomaly}


def test_catalogue_lists_every_alerting_rule() -> None:
    text = (REPO / "docs" / "rules.md").read_text("utf-8")
    missing = sorted(m.name for m in ruleset().rules if m.emits and f"`{m.name}`" not in text)
    assert missing == []


def test_token_theft_finding_names_principal_and_credential() -> None:
    """dual_source_ip groups by credential.id, yet the finding's identity is the principal
    (user.id, user.name) and it carries the credential beside it."""
    (case,) = [c for c in ALL_CASES
               if c.rule == "dual_source_ip" and c.id == "pod_then_attacker_within_an_hour"]
    engine = Engine(Config())
    engine.load(case.events)
    (finding,) = [f for f in engine.run(load_rules([ruleset().by_name("dual_source_ip").path]))
                  if f.rule_name == "dual_source_ip"]
    assert (finding.user_id, finding.user_name, finding.credential_id) == (
        "6f0c1e2a-entity-payments", "kubernetes-payments", "hmac-sha256:tok_B9x2")
    assert finding.to_json()["credential"] == {"id": "hmac-sha256:tok_B9x2"}
    assert finding.who() == (
        "kubernetes-payments (6f0c1e2a-entity-payments) via hmac-sha256:tok_B9x2")
