"""pySigma transformations SecretSight adds to the target pipelines, shared by `secretsight
compile` (its backend subclasses) and sigma-cli users of the plain backends (`-p
secretsight_<target>`, see `pipelines.sigma_cli_pipeline`).

This module imports no target module and no pySigma backend: the target modules and the
pipelines both import it, never each other.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionOR,
)
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

from secretsight import schema
from secretsight.rules.introspect import rule_fields

# A per-source rule's `logsource.service` -> the event.dataset its events carry.
SERVICE_DATASETS: dict[str, str] = {
    "vault": "vault.audit",
    "cloudtrail": "aws.cloudtrail",
    "kubernetes": "kubernetes.audit",
}
DATASET_FIELD = "event.dataset"
# Values a line filter may look for as `"<key>":"<value>"` in the JSON line: characters JSON
# writes as they are, so the filter is a necessary condition of the field comparison.
_PLAIN_VALUE = re.compile(r"^[A-Za-z0-9_.:/@ -]+$")
MAX_LINE_FILTERS = 2


def array_fields() -> list[str]:
    """The schema's keyword[] fields (JSON arrays in the events)."""
    return sorted(n for n, f in schema.load().fields.items() if f.type.endswith("[]"))


@cache
def loki_array_labels() -> dict[str, str]:
    """`| json` label -> JSON path of the schema's keyword[] fields."""
    return {sanitize_label_key(f): f for f in array_fields()}


def loki_array_extraction(rule: SigmaRule, parser: str) -> str:
    """`parser` followed by `| json <label>="<path>"` for the JSON array fields `rule` uses
    (defect loki_array_fields: `| json` skips arrays)."""
    labels = loki_array_labels()
    used = sorted(rule_fields(rule) & set(labels))
    if not used:
        return parser
    return f"{parser} | json " + ", ".join(f'{label}="{labels[label]}"' for label in used)


def string_regex(value: SigmaString, *, array: bool = False) -> SigmaRegularExpression:
    """A case-insensitive, whole-value regex for a Sigma string; for an array label (the JSON
    text of the array) one quoted element of it. Built from the string's parts: the Loki
    backend's own conversion renders an escaped `\\*` as "backslash then anything"."""
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


@dataclass
class BooleanAsStringTransformation(ValueTransformation):
    """A boolean value becomes the string `true` / `false`: Loki's `| json` parser yields JSON
    booleans as those strings, and pySigma-backend-loki refuses boolean values (defect
    loki_boolean)."""

    # pySigma applies the transformation to the values of the annotated type only.
    def apply_value(  # type: ignore[override]
        self, field: str | None, val: SigmaBool
    ) -> SigmaCasedString:
        # Cased: `| json` writes exactly `true` / `false`.
        return SigmaCasedString("true" if val.boolean else "false")


@dataclass
class ArrayLabelParserTransformation(PreprocessingTransformation):
    """Add `| json <label>="<path>"` for the JSON array fields a rule uses (defect
    loki_array_fields). Runs after the field mapping: fields are `| json` label names here."""

    def apply(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        super().apply(rule)
        if isinstance(rule, SigmaRule):
            parser = str(rule.custom_attributes.get("loki_parser", "json"))
            rule.custom_attributes["loki_parser"] = loki_array_extraction(rule, parser)


@dataclass
class StringRegexTransformation(ValueTransformation):
    """Field strings as `string_regex` builds them (defect loki_escaped_wildcard; one quoted
    element for an array label)."""

    # pySigma applies the transformation to the values of the annotated type only.
    def apply_value(  # type: ignore[override]
        self, field: str | None, val: SigmaString
    ) -> SigmaRegularExpression | None:
        if field is None or isinstance(val, SigmaCasedString):
            return None
        return string_regex(val, array=field in loki_array_labels())


Required = dict[str, frozenset[str]]


def required_values(node: object) -> Required:
    """Field -> the plain string values one of which every event matching `node` has (a
    necessary condition; fields the condition does not pin are absent)."""
    if isinstance(node, ConditionFieldEqualsValueExpression):
        value = node.value
        if (isinstance(value, SigmaString) and not value.contains_special()
                and not value.contains_placeholder() and _PLAIN_VALUE.match(str(value))):
            return {node.field: frozenset({str(value)})}
        return {}
    if isinstance(node, ConditionAND):
        out: dict[str, frozenset[str]] = {}
        for arg in node.args:
            for field, values in required_values(arg).items():
                out[field] = out[field] & values if field in out else values
        return out
    if isinstance(node, ConditionOR):
        parts = [required_values(arg) for arg in node.args]
        common = set(parts[0]).intersection(*parts[1:]) if parts else set()
        return {f: frozenset().union(*(p[f] for p in parts)) for f in common}
    return {}  # NOT, a keyword or anything else pins nothing


def rule_required_values(rule: SigmaRule) -> Required:
    """`required_values` of the rule's condition(s): with several conditions, any may match."""
    parts = [required_values(c.parsed) for c in rule.detection.parsed_condition]
    if not parts:
        return {}
    common = set(parts[0]).intersection(*parts[1:])
    return {f: frozenset().union(*(p[f] for p in parts)) for f in common}


def loki_line_filter(field: str, values: frozenset[str]) -> str:
    """A line filter every JSON line with `field` equal (case-insensitively, as the rules
    compare) to one of `values` passes: `"<last key>": "<value>"`, a `/` also as `\\/` (JSON
    may escape it). Go's RE2 takes Python's escapes of punctuation as the literal."""
    key = re.escape(field.rsplit(".", 1)[-1])
    alternatives = "|".join(re.escape(v).replace("/", r"\\?/") for v in sorted(values))
    return f'|~ `"{key}":\\s*"(?i:{alternatives})"`'


@dataclass
class LokiStreamSelectionTransformation(PreprocessingTransformation):
    """The stream selector and line filters of a rule's log query, before `| json`: the
    dataset label narrowed to the datasets the rule can match (its log source's, or those its
    condition requires), one equality when that is one dataset; then up to two line filters on
    the values the condition requires, so most lines are dropped before they are parsed."""

    dataset_label: str = "dataset"

    def apply(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        super().apply(rule)
        if not isinstance(rule, SigmaRule):
            return
        required = rule_required_values(rule)
        datasets = set(schema.load().datasets)
        service = SERVICE_DATASETS.get(rule.logsource.service or "")
        if service is not None:
            datasets &= {service}
        if DATASET_FIELD in required:
            datasets &= set(required[DATASET_FIELD])
        if not datasets:
            datasets = set(schema.load().datasets)  # contradictory: let the query say so
        selector = loki_stream_selector(self.dataset_label, sorted(datasets))
        filters = [loki_line_filter(f, v) for f, v in line_filter_fields(required)]
        rule.custom_attributes["logsource_loki_selection"] = " ".join([selector, *filters])


def line_filter_fields(required: Required) -> list[tuple[str, frozenset[str]]]:
    """The most specific required fields first (fewest values), event.dataset excluded (the
    stream selector has it). Only string fields: an array is `"key":["a","b"]` in the line, a
    number or boolean is not quoted."""
    types = {n: f.type for n, f in schema.load().fields.items()}
    fields = sorted(((f, v) for f, v in required.items()
                     if f != DATASET_FIELD and types.get(f) in ("keyword", "text")),
                    key=lambda fv: (len(fv[1]), fv[0]))
    return fields[:MAX_LINE_FILTERS]


def loki_stream_selector(label: str, datasets: list[str]) -> str:
    """The stream selector of events from `datasets`: one equality for one dataset."""
    if len(datasets) == 1:
        return f'{{{label}="{datasets[0]}"}}'
    alternatives = "|".join(d.replace(".", "\\\\.") for d in sorted(datasets))
    return f'{{{label}=~"{alternatives}"}}'
