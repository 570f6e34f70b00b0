"""Pieces every target shares: walking a rule set with one fresh pySigma collection per target,
rule metadata for the outputs, and deterministic serialisation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sigma.conversion.base import Backend
from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationRule,
    SigmaRuleReference,
)
from sigma.exceptions import SigmaError
from sigma.rule import SigmaDetection, SigmaRule
from sigma.types import Placeholder, SigmaString

from secretsight.compile.model import Support, TargetOutput, Unsupported
from secretsight.config import format_duration, parse_duration
from secretsight.errors import SecretSightError
from secretsight.rules import RuleMeta, RuleSet

AnyRule = SigmaRule | SigmaCorrelationRule


@dataclass(frozen=True)
class RuleView:
    """A rule with its SecretSight metadata, as the target writers need it."""

    rule: AnyRule
    meta: RuleMeta

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def is_correlation(self) -> bool:
        return isinstance(self.rule, SigmaCorrelationRule)

    @property
    def level(self) -> str:
        return (self.meta.level or "medium").lower()

    @property
    def description(self) -> str:
        return " ".join((self.rule.description or self.rule.title).split())

    @property
    def tags(self) -> list[str]:
        return [f"{t.namespace}.{t.name}" for t in self.rule.tags]


def views(ruleset: RuleSet) -> Iterator[RuleView]:
    """Rules in the collection order (a correlation after the rules it references)."""
    for rule in ruleset.collection.rules:
        meta = ruleset.meta_for(rule)
        if meta is not None:
            yield RuleView(rule, meta)


def convert(backend: Backend, view: RuleView, output_format: str = "default",
            method: str | None = None) -> list[Any]:
    """Convert one rule; pySigma errors become SecretSightErrors with the rule's file/line."""
    if getattr(backend, "last_processing_pipeline", None) is None:
        backend.init_processing_pipeline(output_format)  # convert() would; we convert per rule
    try:
        if isinstance(view.rule, SigmaCorrelationRule):
            result = backend.convert_correlation_rule(view.rule, output_format, method)
        else:
            result = backend.convert_rule(view.rule, output_format)
    except (SigmaError, NotImplementedError) as exc:
        raise rule_error(view, exc) from exc
    for failed, error in list(backend.errors):
        if failed is view.rule:
            backend.errors.remove((failed, error))
            raise rule_error(view, error)
    return result


def base_queries(view: RuleView) -> list[str]:
    """The converted query of a plain rule (also when `generate: false` hid it from output)."""
    result = view.rule._conversion_result  # set by convert_rule even for building blocks
    if not result:
        raise SecretSightError(f"rule {view.name} has no converted query", file=str(view.meta.path))
    return [str(q) for q in result]


def rule_error(view: RuleView, exc: BaseException) -> SecretSightError:
    line = getattr(getattr(exc, "source", None), "line", None)
    message = str(exc).split(" (while ")[0]
    return SecretSightError(message, file=str(view.meta.path), line=line)


def record_failure(out: TargetOutput, view: RuleView, target: str, exc: Exception) -> None:
    """Why one rule did not compile for `target`: a known limit goes to the support matrix as
    unsupported; our own error or a backend failure (with the rule's file) to the errors."""
    if isinstance(exc, Unsupported):
        out.support.append(Support(view.name, target, "unsupported", (exc.reason,)))
    elif isinstance(exc, SecretSightError):
        out.errors.append(exc)
    else:
        out.errors.append(rule_error(view, exc))


def rule_values(rule: AnyRule) -> list[Any]:
    """Every value of a rule's detection items (through the rules a correlation references)."""
    if isinstance(rule, SigmaCorrelationRule):
        return [v for ref in refs(rule) for v in rule_values(ref.rule)]
    out: list[Any] = []

    def walk(det: SigmaDetection) -> None:
        for item in det.detection_items:
            if isinstance(item, SigmaDetection):
                walk(item)
            else:
                out.extend(item.value)

    for det in rule.detection.detections.values():
        walk(det)
    return out


def positive_placeholders(rule: AnyRule) -> set[str]:
    """Names of the `%placeholder%` lists a rule matches ON (not in a `filter*` detection, the
    exclusions): with every such list empty the rule can match nothing. Read before conversion
    (the pipeline fills the placeholders in place); through the rules a correlation references."""
    if isinstance(rule, SigmaCorrelationRule):
        return {p for ref in refs(rule) for p in positive_placeholders(ref.rule)}
    out: set[str] = set()

    def walk(det: SigmaDetection) -> None:
        for item in det.detection_items:
            if isinstance(item, SigmaDetection):
                walk(item)
                continue
            for value in item.value or []:
                if isinstance(value, SigmaString):
                    out.update(p.name for p in value.s if isinstance(p, Placeholder))

    for name, det in rule.detection.detections.items():
        if not name.startswith("filter"):
            walk(det)
    return out


def timespan(rule: SigmaCorrelationRule) -> timedelta:
    return parse_duration(str(rule.timespan.spec))


def duration(td: timedelta) -> str:
    return format_duration(td)


def refs(rule: SigmaCorrelationRule) -> list[SigmaRuleReference]:
    return list(rule.rules or [])


def simple_condition(rule: SigmaCorrelationRule) -> SigmaCorrelationCondition:
    """The rule's `op: count` condition; extended (boolean) conditions are not compiled."""
    if not isinstance(rule.condition, SigmaCorrelationCondition):
        raise Unsupported("extended (boolean) correlation conditions are not compiled")
    return rule.condition


def threshold_count(rule: SigmaCorrelationRule) -> int:
    """The smallest count that satisfies a `gt`/`gte`/`eq` condition (what `runs=`, Kibana
    thresholds and `>=` comparisons need)."""
    condition = simple_condition(rule)
    op = condition.op.name.lower()
    count = int(condition.count)
    if op == "gt":
        return count + 1
    if op in ("gte", "eq"):
        return count
    raise Unsupported(f"correlation condition {op} cannot be expressed as a minimum count")


def dump_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def merge_parts(rule: AnyRule) -> list[SigmaCorrelationRule] | None:
    """A temporal correlation over count correlations with one group-by (e.g. path_diversity:
    >= 10 distinct paths and >= 30 reads of ONE base rule; cloudtrail_list_secrets: a list AND
    >= 3 distinct reads, two base rules) is one aggregation with every condition; the backends
    cannot convert correlations of correlations. None otherwise."""
    if not isinstance(rule, SigmaCorrelationRule) or rule.type.name.lower() != "temporal":
        return None
    parts = [ref.rule for ref in refs(rule)]
    counts = [p for p in parts if isinstance(p, SigmaCorrelationRule)
              and p.type.name.lower() in ("event_count", "value_count")]
    if len(counts) != len(parts) or not counts:
        return None
    groups = {tuple(p.group_by or ()) for p in counts} | {tuple(rule.group_by or ())}
    if len(groups) != 1:
        return None
    return counts


def one_base(parts: list[SigmaCorrelationRule]) -> bool:
    """Do the merged parts all count the same base rule(s)?"""
    return len({tuple(r.reference for r in refs(p)) for p in parts}) == 1


def part_bases(parts: list[SigmaCorrelationRule], queries: dict[str, Any], what: str
               ) -> list[str]:
    """Each part's base condition (its referenced rules OR-ed), from the converted queries."""
    out = []
    for part in parts:
        conds = []
        for ref in refs(part):
            q = queries.get(ref.reference)
            if not isinstance(q, list) or len(q) != 1:
                raise Unsupported(f"base rule {ref.reference} has no {what}")
            conds.append(q[0])
        out.append(conds[0] if len(conds) == 1 else " or ".join(f"({c})" for c in conds))
    return out
