"""The anomaly catalogue (tools/secretsight/anomalies.yml) against everything that states an
anomaly fact: the Sigma rules, the stateful detectors, the target-native stateful forms, the
config and docs/rules.md. One case per rule or class, so one disagreement never hides another."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from secretsight import anomalies
from secretsight.compile import attack, stateful
from secretsight.config import Config
from secretsight.detect.detectors import DETECTORS
from secretsight.findings import ANOMALY_CLASSES, SEVERITIES
from secretsight.rules import (
    PLACEHOLDERS,
    config_value,
    load_rules,
    rule_documents,
    rule_placeholders,
)

REPO = Path(__file__).resolve().parents[2]
CLASSES = list(anomalies.catalogue().values())
CLASS_IDS = [c.name for c in CLASSES]


@cache
def ruleset():  # type: ignore[no-untyped-def]
    return load_rules()


RULE_NAMES = sorted(m.name for m in ruleset().rules)
ALERTING = sorted(m.name for m in ruleset().emitting())
NAMED_LIKE_A_CLASS = sorted(n for n in RULE_NAMES if n == ruleset().by_name(n).anomaly)


def _raw(name: str) -> dict[str, Any]:
    (raw,) = [d for d in rule_documents(ruleset().by_name(name).path) if d["name"] == name]
    return raw


def _covered(key: str, keys: tuple[str, ...]) -> bool:
    """`key` is one of `keys` or lies under one (thresholds.path_diversity.reads under
    thresholds.path_diversity)."""
    return any(key == k or key.startswith(k + ".") for k in keys)


def test_findings_use_the_catalogue_vocabulary() -> None:
    assert ANOMALY_CLASSES == tuple(CLASS_IDS)
    assert len(set(ANOMALY_CLASSES)) == len(ANOMALY_CLASSES) == 27
    assert SEVERITIES == anomalies.SEVERITIES


@pytest.mark.parametrize("cls", CLASSES, ids=CLASS_IDS)
def test_class_config_keys_exist(cls: anomalies.AnomalyClass) -> None:
    for key in cls.config:
        config_value(Config(), key)  # KeyError names the key that does not exist


@pytest.mark.parametrize("cls", CLASSES, ids=CLASS_IDS)
def test_class_techniques_are_in_the_attack_table(cls: anomalies.AnomalyClass) -> None:
    assert [t for t in cls.mitre if t not in attack.table()["techniques"]] == []


@pytest.mark.parametrize("cls", CLASSES, ids=CLASS_IDS)
def test_class_engine_matches_what_implements_it(cls: anomalies.AnomalyClass) -> None:
    alerting = {m.anomaly for m in ruleset().rules if m.emits}
    detected = {d.anomaly for d in DETECTORS.values()}
    assert (cls.name in alerting, cls.name in detected) == (cls.sigma, cls.detector)


@pytest.mark.parametrize("cls", CLASSES, ids=CLASS_IDS)
def test_level_exceptions_name_alerting_rules_of_the_class(cls: anomalies.AnomalyClass) -> None:
    for name, level in cls.rule_levels.items():
        meta = ruleset().by_name(name)
        assert (meta.anomaly, meta.emits) == (cls.name, True)
        assert level != cls.severity, f"{name}: not an exception, drop it from rule_levels"


@pytest.mark.parametrize("name", RULE_NAMES)
def test_rule_level_follows_its_class(name: str) -> None:
    meta = ruleset().by_name(name)
    cls = anomalies.anomaly(meta.anomaly)
    expected = cls.rule_level(name) if meta.emits else "informational"
    assert meta.level == expected


@pytest.mark.parametrize("name", NAMED_LIKE_A_CLASS)
def test_rule_named_like_its_class_has_the_class_title(name: str) -> None:
    assert ruleset().by_name(name).title.casefold() == anomalies.anomaly(name).title.casefold()


@pytest.mark.parametrize("name", ALERTING)
def test_rule_techniques_are_listed_for_its_class(name: str) -> None:
    tags = [t[len("attack."):].upper() for t in _raw(name).get("tags", [])
            if t.startswith("attack.t")]
    cls = anomalies.anomaly(ruleset().by_name(name).anomaly)
    assert [t for t in tags if t not in cls.mitre] == []


@pytest.mark.parametrize("name", RULE_NAMES)
def test_rule_config_keys_are_listed_for_its_class(name: str) -> None:
    meta = ruleset().by_name(name)
    spec = _raw(name).get("config_threshold") or {}
    keys = {spec} if isinstance(spec, str) else set(spec.values())
    keys |= {PLACEHOLDERS[p] for p in rule_placeholders(ruleset().collection[name])}
    cls = anomalies.anomaly(meta.anomaly)
    assert sorted(k for k in keys if not _covered(k, cls.config)) == []


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_detector_states_no_title_or_severity_of_its_own(name: str) -> None:
    """A detector's findings take title and severity from the catalogue (Detector properties)."""
    detector = DETECTORS[name]
    assert not {"title", "severity"} & set(vars(detector)), name
    assert detector.anomaly in ANOMALY_CLASSES


@pytest.mark.parametrize("rule", stateful.RULES, ids=[r.name for r in stateful.RULES])
def test_target_native_stateful_form_has_the_class_title_and_severity(
        rule: stateful.StatefulRule) -> None:
    cls = anomalies.anomaly(rule.anomaly)
    assert (rule.title, rule.level) == (cls.title, cls.severity)


def test_docs_show_the_catalogue() -> None:
    assert anomalies.markdown_table() in (REPO / "docs" / "rules.md").read_text("utf-8")


_DOC_ROW = re.compile(r"^\| `(?P<rule>[a-z0-9_]+)` \| (?P<anomaly>[a-z_]+) \| [^|]+ \| "
                      r"(?P<level>[a-z]+) \|", re.MULTILINE)


def _doc_rows() -> dict[str, tuple[str, str]]:
    text = (REPO / "docs" / "rules.md").read_text("utf-8")
    return {m["rule"]: (m["anomaly"], m["level"]) for m in _DOC_ROW.finditer(text)}


@pytest.mark.parametrize("name", ALERTING)
def test_docs_rule_row_matches_the_rule(name: str) -> None:
    meta = ruleset().by_name(name)
    assert _doc_rows().get(name) == (meta.anomaly, meta.level)
