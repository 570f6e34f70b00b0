"""Loki target: one LogQL query per rule and a Loki ruler rules file (Prometheus-style groups).

pySigma-backend-loki 0.15.1 does the translation; this module works around its defects (see
`defects.py`): `| json` instead of `| logfmt` and label names via sigma/pipelines/loki.yml, JSON
array fields extracted explicitly, and the ruler file written here from the `default` queries
because the backend's `ruler` format embeds a dict repr in correlation expressions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import yaml
from sigma.backends.loki import LogQLBackend
from sigma.conditions import ConditionFieldEqualsValueExpression
from sigma.correlations import SigmaCorrelationRule
from sigma.processing.transformations.base import PreprocessingTransformation, ValueTransformation
from sigma.rule import SigmaRule
from sigma.shared import sanitize_label_key
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaRegularExpression,
    SigmaString,
    SpecialChars,
)

from secretsight.alerting.runbooks import link_loki_groups
from secretsight.compile import defects, stateful
from secretsight.compile.common import (
    RuleView,
    array_fields,
    convert,
    record_failure,
    rule_fields,
    rule_values,
    views,
)
from secretsight.compile.model import Support, TargetOutput, Unsupported
from secretsight.compile.pipelines import full_pipeline, target_vars
from secretsight.config import Config, parse_duration
from secretsight.rules import RuleSet

TARGET = "loki"
RULER_FILE = "loki/secretsight-rules.yaml"


class SecretSightLokiBackend(LogQLBackend):
    """LogQLBackend with SecretSight's fixes: JSON array labels (`| json` skips arrays), string
    values turned into regexes without mangling escaped wildcards, and boolean values."""

    # `| json` renders JSON booleans as the strings true/false; the backend refuses booleans.
    bool_values: ClassVar[dict[bool, str | None]] = {True: "`true`", False: "`false`"}
    # label -> JSON path of the schema's keyword[] fields
    array_labels: ClassVar[dict[str, str]] = {sanitize_label_key(f): f for f in array_fields()}

    def select_log_parser(self, rule: SigmaRule) -> Any:
        parser = super().select_log_parser(rule)
        used = sorted(rule_fields(rule) & set(self.array_labels))
        if not used:
            return parser
        extract = ", ".join(f'{label}="{self.array_labels[label]}"' for label in used)
        return f"{parser} | json {extract}"

    def update_parsed_conditions(self, condition: Any, negated: bool = False) -> Any:
        # The backend's own string->regex (sigma.shared.convert_str_to_re) renders an escaped
        # `\*` as "backslash then anything"; build the regex from the string's parts instead.
        if (
            isinstance(condition, ConditionFieldEqualsValueExpression)
            and isinstance(condition.value, SigmaString)
            and not isinstance(condition.value, SigmaCasedString)
            and not self.case_sensitive
        ):
            condition.value = string_regex(condition.value, array=condition.field in self.array_labels)
        return super().update_parsed_conditions(condition, negated)


def string_regex(value: SigmaString, *, array: bool = False) -> SigmaRegularExpression:
    """A case-insensitive, whole-value regex for a Sigma string; for an array label (the JSON
    text of the array) one quoted element of it."""
    parts = []
    for part in value.s:
        if part == SpecialChars.WILDCARD_MULTI:
            parts.append('[^"]*' if array else ".*")
        elif part == SpecialChars.WILDCARD_SINGLE:
            parts.append('[^"]' if array else ".")
        else:
            text = json.dumps(str(part))[1:-1] if array else str(part)
            parts.append(re.escape(text))
    body = "".join(parts)
    return SigmaRegularExpression(f'(?i).*"{body}".*' if array else f"(?i)^{body}$")


# The same fixes as processing-pipeline items, for sigma-cli users of the plain LogQLBackend
# (`-p secretsight_loki`, see secretsight.compile.pipelines.sigma_cli_pipeline). They run after
# the field mapping, so fields are `| json` label names here.


@dataclass
class ArrayLabelParserTransformation(PreprocessingTransformation):
    """Add `| json <label>="<path>"` for the JSON array fields a rule uses (defect
    loki_array_fields: `| json` skips arrays), as SecretSightLokiBackend.select_log_parser."""

    def apply(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        super().apply(rule)
        if not isinstance(rule, SigmaRule):
            return
        labels = SecretSightLokiBackend.array_labels
        used = sorted(rule_fields(rule) & set(labels))
        if used:
            parser = rule.custom_attributes.get("loki_parser", "json")
            extract = ", ".join(f'{label}="{labels[label]}"' for label in used)
            rule.custom_attributes["loki_parser"] = f"{parser} | json {extract}"


@dataclass
class StringRegexTransformation(ValueTransformation):
    """Field strings as the regexes SecretSightLokiBackend.update_parsed_conditions builds
    (defect loki_escaped_wildcard; one quoted element for an array label)."""

    # pySigma applies the transformation to the values of the annotated type only.
    def apply_value(  # type: ignore[override]
        self, field: str | None, val: SigmaString
    ) -> SigmaRegularExpression | None:
        if field is None or isinstance(val, SigmaCasedString):
            return None
        return string_regex(val, array=field in SecretSightLokiBackend.array_labels)


def compile_rules(ruleset: RuleSet, config: Config, out: TargetOutput) -> None:
    vars_ = target_vars(TARGET)
    interval = str(vars_.get("ruler_interval", "1m"))
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
    if any(f'{label}="' in query for label in SecretSightLokiBackend.array_labels):
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
    annotations = {"summary": view.rule.title, "description": view.description}
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

