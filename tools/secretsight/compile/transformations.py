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

from sigma.correlations import SigmaCorrelationRule
from sigma.processing.transformations.base import PreprocessingTransformation, ValueTransformation
from sigma.rule import SigmaDetection, SigmaRule
from sigma.shared import sanitize_label_key
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaRegularExpression,
    SigmaString,
    SpecialChars,
)

from secretsight import schema


def rule_fields(rule: SigmaRule) -> set[str]:
    """Field names of a plain rule's detection items (after the pipeline renamed them)."""
    out: set[str] = set()

    def walk(det: SigmaDetection) -> None:
        for item in det.detection_items:
            if isinstance(item, SigmaDetection):
                walk(item)
            elif item.field:
                out.add(item.field)

    for det in rule.detection.detections.values():
        walk(det)
    return out


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
