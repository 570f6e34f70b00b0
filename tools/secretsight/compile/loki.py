"""Loki target: one LogQL query per rule and a Loki ruler rules file (Prometheus-style groups).

pySigma-backend-loki 0.15.1 does the translation; this module works around its defects (see
`defects.py`): `| json` instead of `| logfmt` and label names via sigma/pipelines/loki.yml, JSON
array fields extracted explicitly, and the ruler file written here from the `default` queries
because the backend's `ruler` format embeds a dict repr in correlation expressions.
"""

from __future__ import annotations

from typing import Any, ClassVar

import yaml
from sigma.backends.loki import LogQLBackend
from sigma.conditions import ConditionFieldEqualsValueExpression
from sigma.rule import SigmaRule
from sigma.types import SigmaBool, SigmaCasedString, SigmaString

from secretsight.alerting.runbooks import link_loki_groups
from secretsight.compile import attack, defects, stateful
from secretsight.compile.common import (
    RuleView,
    convert,
    record_failure,
    rule_values,
    views,
)
from secretsight.compile.model import Support, TargetOutput, Unsupported
from secretsight.compile.pipelines import full_pipeline
from secretsight.compile.transformations import (
    loki_array_extraction,
    loki_array_labels,
    string_regex,
)
from secretsight.config import Config, parse_duration
from secretsight.rules import RuleSet

TARGET = "loki"
RULER_FILE = "loki/secretsight-rules.yaml"


class SecretSightLokiBackend(LogQLBackend):
    """LogQLBackend with SecretSight's fixes: JSON array labels (`| json` skips arrays), string
    values turned into regexes without mangling escaped wildcards, and boolean values (the same
    fixes as the pipeline items sigma-cli users get, secretsight.compile.transformations)."""

    # `| json` renders JSON booleans as the strings true/false; the backend refuses booleans.
    bool_values: ClassVar[dict[bool, str | None]] = {True: "`true`", False: "`false`"}

    def select_log_parser(self, rule: SigmaRule) -> Any:
        parser = super().select_log_parser(rule)
        # A str when the pipeline set `loki_parser` (always, for SecretSight rules).
        return loki_array_extraction(rule, parser) if isinstance(parser, str) else parser

    def update_parsed_conditions(self, condition: Any, negated: bool = False) -> Any:
        # The backend's own string->regex (sigma.shared.convert_str_to_re) renders an escaped
        # `\*` as "backslash then anything"; build the regex from the string's parts instead.
        if (
            isinstance(condition, ConditionFieldEqualsValueExpression)
            and isinstance(condition.value, SigmaString)
            and not isinstance(condition.value, SigmaCasedString)
            and not self.case_sensitive
        ):
            condition.value = string_regex(condition.value,
                                           array=condition.field in loki_array_labels())
        return super().update_parsed_conditions(condition, negated)


def compile_rules(ruleset: RuleSet, config: Config, out: TargetOutput) -> None:
    interval = config.targets.loki.ruler_interval.strip()
    backend = SecretSightLokiBackend(processing_pipeline=full_pipeline(TARGET, config),
                                     collect_errors=True)
    groups: dict[str, list[dict[str, Any]]] = {}
    for view in views(ruleset):
        try:
            defects.refuse_timestamp_parts(view.rule, "pySigma-backend-loki")
            queries = [str(q) for q in convert(backend, view)]
        except Exception as exc:  # noqa: BLE001 - sorted by record_failure: matrix or errors
            record_failure(out, view, TARGET, exc)
            continue
        if not view.meta.emits:
            continue  # building block: converted inside the correlations that use it
        try:
            for query in queries:
                defects.check_loki(query)
            # The backend splits a log query longer than ~4 KiB into several (Loki's query size
            # limit); a correlation must stay one metric query.
            if not queries or (view.is_correlation and len(queries) != 1):
                raise Unsupported(f"rule converted to {len(queries)} LogQL queries, expected 1")
        except Unsupported as exc:
            out.support.append(Support(view.name, TARGET, "unsupported", (exc.reason,)))
            continue
        out.queries[view.name] = queries
        out.files[f"loki/queries/{view.meta.source}/{view.name}.logql"] = "\n".join(queries) + "\n"
        groups.setdefault(view.meta.source, []).append(ruler_rule(view, queries, interval))
        out.support.append(Support(view.name, TARGET, "workaround",
                                   _workarounds(view, "\n".join(queries))))
    # Target-native forms of the stateful classes (absence: audit_gap).
    groups.update(stateful.compile_loki(config, parse_duration(interval), out))
    link_loki_groups(groups, config.alerting)  # team label, runbook_url annotation
    out.files[RULER_FILE] = ruler_file(groups, interval)


def _workarounds(view: RuleView, query: str) -> tuple[str, ...]:
    used = ["loki_json_parser", "loki_label_mapping", "loki_ruler_rebuilt"]
    if any(f'{label}="' in query for label in loki_array_labels()):
        used.append("loki_array_extraction")
    values = rule_values(view.rule)
    if any(isinstance(v, SigmaBool) for v in values):
        used.append("loki_boolean")
    if any(isinstance(v, SigmaString) and any(isinstance(p, str) and ("*" in p or "?" in p)
                                              for p in v.s) for v in values):
        used.append("loki_literal_wildcard")
    return tuple(used)


def ruler_rule(view: RuleView, queries: list[str], interval: str) -> dict[str, Any]:
    """One Prometheus-style alerting rule. A plain rule's log query becomes a count per identity
    over the evaluation interval (several split queries: their union); a correlation is already
    a metric query with its threshold."""
    if view.is_correlation:
        expr = queries[0]
    else:
        counts = [f"sum by (user_id) (count_over_time({q} [{interval}]))" for q in queries]
        expr = f"{counts[0]} > 0" if len(counts) == 1 else f"({' or '.join(counts)}) > 0"
    annotations = {"summary": view.rule.title, "description": view.description,
                   **attack.alert_annotations(view.tags)}
    if view.rule.references:
        annotations["references"] = " ".join(view.rule.references)
    return {
        "alert": view.name,
        "expr": expr,
        "for": "0m",
        "labels": {
            "anomaly": view.meta.anomaly,
            "rule_id": view.meta.id,
            "rule_name": view.name,
            "severity": view.level,
            "source": view.meta.source,
        },
        "annotations": annotations,
    }


def ruler_file(groups: dict[str, list[dict[str, Any]]], interval: str) -> str:
    doc: dict[str, Any] = {
        "groups": [
            {"name": f"secretsight-{source}", "interval": interval,
             "rules": sorted(rules, key=lambda r: str(r["alert"]))}
            for source, rules in sorted(groups.items())
        ]
    }
    header = ("# SecretSight alerting rules for the Loki ruler (generated by `secretsight compile"
              " --target loki`; do not edit).\n")
    return header + yaml.safe_dump(doc, sort_keys=False, width=1_000_000, allow_unicode=True)

