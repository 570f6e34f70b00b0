"""What a parsed rule names: the event fields it reads and the placeholders it uses (the
loader's contract checks and the meta-tests compare them with the schema and PLACEHOLDERS)."""

from __future__ import annotations

from collections.abc import Iterator

from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import Placeholder, SigmaString


def _detection_items(detection: SigmaDetection) -> Iterator[SigmaDetectionItem]:
    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            yield from _detection_items(item)
        else:
            yield item


def rule_fields(rule: SigmaRule | SigmaCorrelationRule) -> set[str]:
    """Every event field a rule names (detection items, group-by, value_count field)."""
    if isinstance(rule, SigmaCorrelationRule):
        fields = set(rule.group_by or [])
        ref = getattr(rule.condition, "fieldref", None)
        if isinstance(ref, str):
            fields.add(ref)
        elif isinstance(ref, list):
            fields.update(ref)
        return fields
    return {
        item.field
        for detection in rule.detection.detections.values()
        for item in _detection_items(detection)
        if item.field is not None
    }


def rule_placeholders(rule: SigmaRule | SigmaCorrelationRule) -> set[str]:
    """Names of every `%placeholder%` a plain rule uses."""
    if isinstance(rule, SigmaCorrelationRule):
        return set()
    names: set[str] = set()
    for detection in rule.detection.detections.values():
        for item in _detection_items(detection):
            for value in item.value:
                if isinstance(value, SigmaString):
                    names.update(p.name for p in value.s if isinstance(p, Placeholder))
    return names

