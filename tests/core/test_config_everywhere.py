"""Each config value once: a partial config file merges over the defaults for every command, and
the text targets show (rule descriptions, alert annotations) states the configured numbers."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from pydantic import BaseModel

from secretsight.cli import cli
from secretsight.compile import compile_targets
from secretsight.config import Config, config_from_mapping, load_config
from secretsight.errors import SecretSightError
from secretsight.rules import config_value, load_rules, rule_files
from secretsight.rules.tuning import describe_value

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"

# Every threshold a rule description can name, set away from its default.
NON_DEFAULT: dict[str, Any] = {
    "thresholds": {
        "bulk_read": {"count": 77, "window": "7m"},
        "path_diversity": {"distinct_paths": 13, "reads": 37, "window": "11m"},
        "path_diversity_secretsmanager": {"distinct": 23, "window": "17m"},
        "dual_source_ip_window": "3h",
        "denied_burst": {"count": 19, "window": "23m"},
        "cross_store_harvest": {"count": 3, "window": "13m"},
        "long_ttl_token_max": "48h",
        "namespace_enumeration": {"distinct": 7, "window": "19m"},
        "list_then_read": {"distinct": 4, "window": "29m"},
        "kubernetes_namespace_sweep": {"distinct": 6, "window": "31m"},
        "multi_region_read": {"distinct": 4, "window": "2h"},
    },
}
_KEY = re.compile(r"\{([a-z_]+(?:\.[a-z_]+)+)\}")


def _templated_keys() -> set[str]:
    keys: set[str] = set()
    for path in rule_files():
        for doc in yaml.safe_load_all(path.read_text("utf-8")):
            if doc:
                keys.update(_KEY.findall(doc.get("description", "")))
    return keys


TEMPLATED = sorted(_templated_keys())


# --- partial config files ----------------------------------------------------------------------


def test_one_nested_key_alone_is_a_valid_config(tmp_path: Path) -> None:
    f = tmp_path / "c.yml"
    f.write_text("thresholds:\n  bulk_read:\n    count: 5\n")
    c = load_config(f)
    assert c.thresholds.bulk_read.count == 5
    assert c.thresholds.bulk_read.window == Config().thresholds.bulk_read.window
    assert c.model_dump(exclude={"thresholds"}) == Config().model_dump(exclude={"thresholds"})


@pytest.mark.parametrize(("data", "check"), [
    ({"stateful": {"first_path_access": {"min_history": 7}}},
     lambda c: (c.stateful.first_path_access.min_history,
                c.stateful.first_path_access.learning_period) == (7, timedelta(days=14))),
    ({"allowlists": {"bulk_read": ["svc-*"]}},
     lambda c: (c.allowlists.bulk_read, c.allowlists.secret_destruction)
     == (["svc-*"], Config().allowlists.secret_destruction)),
    ({"admin_identities": {"aws_arns": ["arn:aws:iam::1:role/ops"]}},
     lambda c: c.admin_identities.vault_policies == ["root", "admin"]),
    ({"internal_networks": ["10.1.0.0/16"]},  # a list replaces the default list whole
     lambda c: c.internal_networks == ["10.1.0.0/16"]),
], ids=["depth-3", "one-allowlist", "one-admin-list", "list-replaces"])
def test_partial_mappings_merge_at_every_depth(data: dict[str, Any], check: Any) -> None:
    assert check(config_from_mapping(data))


def test_a_misspelt_key_in_a_partial_config_is_still_an_error() -> None:
    with pytest.raises(SecretSightError, match="thresholds.bulk_read.cuont"):
        config_from_mapping({"thresholds": {"bulk_read": {"cuont": 5}}})


@pytest.fixture()
def partial_config(tmp_path: Path) -> Path:
    f = tmp_path / "partial.yml"
    f.write_text("thresholds:\n  bulk_read:\n    count: 5\n")
    return f


def test_scan_takes_a_partial_config(partial_config: Path) -> None:
    result = CliRunner().invoke(cli, ["scan", "--config", str(partial_config), "--format", "json",
                                      str(EXAMPLES / "vault-audit.log")])
    assert result.exit_code in (0, 1), result.output
    assert "Field required" not in result.output


def test_compile_takes_a_partial_config(partial_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["compile", "-t", "loki", "-c", str(partial_config),
                                      "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "[5m])) > 5" in (out / "loki" / "secretsight-rules.yaml").read_text("utf-8")


def test_watch_takes_a_partial_config(partial_config: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, [
        "watch", "--config", str(partial_config), "--input", str(EXAMPLES / "vault-audit.log"),
        "--state", f"sqlite:///{tmp_path / 'state.db'}", "--exit-at-eof"])
    assert result.exit_code == 0, result.output


# --- compiled text follows the config ----------------------------------------------------------


@cache
def _compiled() -> Any:
    return compile_targets(["loki", "elastic", "splunk"], config=config_from_mapping(NON_DEFAULT))


@cache
def _descriptions() -> dict[str, list[str]]:
    """target -> every description / annotation text in its compiled rule files."""
    files = _compiled().files
    loki = yaml.safe_load(files["loki/secretsight-rules.yaml"])
    elastic = [json.loads(line) for line in files["elastic/secretsight-rules.ndjson"].splitlines()]
    splunk = [line.partition(" = ")[2] for line in files["splunk/secretsight/default/savedsearches.conf"].splitlines()
              if line.startswith("description = ")]
    return {
        "loki": [r["annotations"]["description"] for g in loki["groups"] for r in g["rules"]],
        "elastic": [d["description"] for d in elastic if "description" in d],
        "splunk": splunk,
    }


@cache
def _default_rules() -> Any:
    return load_rules()


def _raw(rule: str) -> dict[str, Any]:
    path = _default_rules().by_name(rule).path
    return next(d for d in yaml.safe_load_all(path.read_text("utf-8")) if d and d["name"] == rule)


def _tuned_keys(rule: str) -> list[str]:
    """The config keys whose values a rule's query uses (`config_threshold`), a
    {count|distinct, window} setting split into its fields."""
    spec = _raw(rule).get("config_threshold") or {}
    keys = [spec] if isinstance(spec, str) else list(spec.values())
    out = []
    for key in keys:
        value = config_value(Config(), key)
        fields = type(value).model_fields if isinstance(value, BaseModel) else None
        out += [f"{key}.{f}" for f in fields] if fields else [key]
    return sorted(set(out))


def _tuned_rules() -> list[tuple[str, str]]:
    """(target, rule) for every alerting rule with configured numbers that the target compiles."""
    rules = _default_rules()
    names = {m.name for m in rules.rules}
    return sorted((c.target, c.rule) for c in _compiled().support
                  if c.status != "unsupported" and c.rule in names
                  and rules.by_name(c.rule).emits and _tuned_keys(c.rule))


@cache
def _tuned_ruleset() -> Any:
    return load_rules(config=config_from_mapping(NON_DEFAULT))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def test_every_templated_key_is_set_away_from_its_default() -> None:
    tuned = config_from_mapping(NON_DEFAULT)
    same = [k for k in TEMPLATED if config_value(tuned, k) == config_value(Config(), k)]
    assert same == []


@pytest.mark.parametrize(("target", "rule"), _tuned_rules(),
                         ids=[f"{t}:{r}" for t, r in _tuned_rules()])
def test_compiled_description_states_the_configured_numbers(target: str, rule: str) -> None:
    tuned_config = config_from_mapping(NON_DEFAULT)
    text = _one_line(_tuned_ruleset().collection[rule].description or "")
    # contained: Splunk descriptions end with the runbook link and team (secretsight.alerting)
    assert any(text in _one_line(t) for t in _descriptions()[target])
    for key in _tuned_keys(rule):
        default = describe_value(config_value(Config(), key))
        tuned = describe_value(config_value(tuned_config, key))
        # the default is gone (as a whole word: "50", "5 minutes"), the configured value is there
        assert not re.search(rf"(?<![\w.]){re.escape(default)}(?!\w)", text), (key, default)
        assert tuned in text, (key, tuned)


def test_rule_descriptions_render_from_the_config() -> None:
    rules = load_rules(config=config_from_mapping(NON_DEFAULT))
    bulk = rules.collection["bulk_read"].description or ""
    assert bulk.startswith("More than 77 read or list operations") and "within 7 minutes" in bulk
    assert "{" not in "".join(r.description or "" for r in rules.collection)


def test_an_unknown_key_in_a_description_is_a_rule_error(tmp_path: Path) -> None:
    src = (REPO / "sigma" / "rules" / "vault" / "vault_root_token.yml").read_text("utf-8")
    bad = tmp_path / "vault" / "vault_root_token.yml"
    bad.parent.mkdir()
    bad.write_text(src.replace("description: >-\n  ", "description: >-\n  {thresholds.nope.count} ", 1))
    errors = load_rules([tmp_path]).errors
    assert [(e.file, "thresholds.nope.count" in e.message) for e in errors] == [(str(bad), True)]


_NUMBER = re.compile(r"(?<![\w.])\d+(?![\w.])")


def _doc_cells() -> dict[str, str]:
    """rule name -> the "what it means" cell of its row in docs/rules.md's rule tables."""
    text = (REPO / "docs" / "rules.md").read_text("utf-8")
    rows = re.finditer(r"^\| `([a-z0-9_]+)` \| [a-z_]+ \| [^|]+ \| [a-z]+ \| (.+?) \| [^|]+ \|$",
                       text, re.MULTILINE)
    return {m[1]: m[2] for m in rows}


@pytest.mark.parametrize("rule", sorted({r for _, r in _tuned_rules()}))
def test_docs_state_the_default_numbers(rule: str) -> None:
    """docs/rules.md writes the defaults in prose: each number the rule's description takes
    from the default config is in the rule's row (a changed default fails here)."""
    keys = set(_KEY.findall(_raw(rule).get("description", "")))
    stated = {n for k in keys for n in _NUMBER.findall(describe_value(config_value(Config(), k)))}
    assert stated, rule
    assert stated <= set(_NUMBER.findall(_doc_cells()[rule])), _doc_cells()[rule]
