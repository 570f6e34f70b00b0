"""Elastic target: a Kibana detection-rules NDJSON file that the detection engine's import API
(`POST /api/detection_engine/rules/_import`) accepts, plus each rule's query beside it.

* plain rules -> `query` rules in Lucene (pySigma-backend-elasticsearch LuceneBackend);
* event_count -> `eql` rules: `sequence by <group> with maxspan=<window> [<query>] with runs=N`,
  a true sliding window, generated here with the right N (the backend emits `runs=<count>` for
  `gt: count`, one short); above EQL's limit of 100 runs, a `threshold` rule instead;
* value_count and temporal -> `esql` rules from the ES|QL backend with its fixed `date_trunc`
  buckets removed: the count runs over the rule's look-back (window + interval), so a burst
  never falls between two runs (the EQL backend's value_count counts one repeated value);
* `threat` from the bundled ATT&CK table: the backend's siem_rule formats download ATT&CK.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sigma.backends.elasticsearch import EqlBackend, ESQLBackend, LuceneBackend
from sigma.correlations import SigmaCorrelationRule

from secretsight.alerting.runbooks import link_kibana_rules
from secretsight.compile import attack, defects, stateful
from secretsight.compile.common import (
    RuleView,
    base_queries,
    convert,
    dump_json,
    merge_parts,
    one_base,
    part_bases,
    record_failure,
    refs,
    simple_condition,
    threshold_count,
    timespan,
    views,
)
from secretsight.compile.elastic_template import template_files
from secretsight.compile.model import Status, Support, TargetOutput, Unsupported
from secretsight.compile.pipelines import full_pipeline
from secretsight.config import Config, format_duration, parse_duration
from secretsight.errors import SecretSightError
from secretsight.rules import RuleSet

TARGET = "elastic"
NDJSON_FILE = "elastic/secretsight-rules.ndjson"
MAX_EQL_RUNS = 100  # Elasticsearch refuses `with runs` above 100


def compile_rules(ruleset: RuleSet, config: Config, out: TargetOutput) -> None:
    index = config.targets.elastic.read_from
    interval = parse_duration(config.targets.elastic.interval)
    pipeline = full_pipeline(TARGET, config)
    lucene = LuceneBackend(processing_pipeline=pipeline, collect_errors=True)
    eql = EqlBackend(processing_pipeline=full_pipeline(TARGET, config), collect_errors=True)
    esql = ESQLBackend(processing_pipeline=full_pipeline(TARGET, config), collect_errors=True)
    # The three backends each convert every plain rule once (fresh rule objects per backend
    # would need three loads; pipelines are idempotent on already-transformed rules).
    conversions: dict[str, dict[str, list[str] | Exception]] = {"lucene": {}, "eql": {},
                                                                  "esql": {}}
    documents: list[dict[str, Any]] = []
    for view in views(ruleset):
        try:
            defects.refuse_timestamp_parts(view.rule, "pySigma-backend-elasticsearch")
            if not view.is_correlation:
                # ES|QL last: its result stays on the rule for the correlations that use it.
                for key, backend in (("lucene", lucene), ("eql", eql), ("esql", esql)):
                    view.rule._conversion_result = None
                    try:
                        convert(backend, view)
                        conversions[key][view.name] = base_queries(view)
                    except SecretSightError as exc:
                        conversions[key][view.name] = exc
                lucene_q = conversions["lucene"][view.name]
                if isinstance(lucene_q, Exception):
                    raise lucene_q
                if not view.meta.emits:
                    continue
                doc, workarounds = query_rule(view, config, lucene_q, index, interval)
            else:
                if not view.meta.emits:
                    # A building block of another correlation: convert it for that one.
                    if merge_parts(view.rule) is None:
                        convert(esql, view)
                    continue
                doc, workarounds = correlation_rule(view, config, conversions, esql, index,
                                                      interval)
        except Exception as exc:  # noqa: BLE001 - sorted by record_failure: matrix or errors
            record_failure(out, view, TARGET, exc)
            continue
        documents.append(doc)
        ext = {"lucene": "lucene", "eql": "eql", "esql": "esql"}[doc["language"]]
        out.files[f"elastic/queries/{view.meta.source}/{view.name}.{ext}"] = doc["query"] + "\n"
        out.queries[view.name] = [doc["query"]]
        status: Status = "workaround" if workarounds else "compiled"
        out.support.append(Support(view.name, TARGET, status, workarounds))
    # Target-native forms of the stateful classes (new_terms, ES|QL absence).
    documents.extend(stateful.compile_elastic(config, index, interval, out))
    for d in documents:
        if d["language"] == "esql":
            d["query"] = esql_keep(d["query"])
            out.queries[d["name_key"]] = [d["query"]]
            for path in [p for p in out.files if p.endswith(f"/{d['name_key']}.esql")]:
                out.files[path] = d["query"] + "\n"
    link_kibana_rules(documents, config.alerting)  # runbook in `note`, team tag
    documents.sort(key=lambda d: d["name_key"])
    for d in documents:
        del d["name_key"]
    out.files[NDJSON_FILE] = "".join(dump_json(d) + "\n" for d in documents)
    out.files.update(template_files(config))


def _top_level_split(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def esql_keep(query: str) -> str:
    """End an ES|QL rule with `keep` of what its alert shows: the group (the entity) and the
    aggregates of its last `stats`, in that order, so the alert's columns are stated, not
    whatever the stats left."""
    stats = [line for line in query.splitlines() if line.lstrip().startswith("| stats ")]
    if not stats:
        raise Unsupported("ES|QL rule without `stats`: no columns to keep")
    body = stats[-1].split("| stats ", 1)[1]
    aggs, _, by = body.partition(" by ")
    names = [a.split("=", 1)[0].strip() for a in _top_level_split(aggs)]
    groups = _top_level_split(by)
    return query.rstrip() + f"\n| keep {', '.join(groups + names)}"


def _common(view: RuleView, config: Config, look_back: timedelta, interval: timedelta
            ) -> dict[str, Any]:
    tags = view.tags
    _, _, unknown = attack.split_tags(tags)
    if unknown:
        raise SecretSightError(
            f"ATT&CK tag(s) {', '.join(unknown)} not in the bundled table "
            f"({attack.TABLE.name}); add them there", file=str(view.meta.path))
    return {
        "name_key": view.name,
        "rule_id": view.meta.id,
        "name": view.rule.title,
        "description": view.description,
        "risk_score": config.targets.elastic.risk_score[view.level],
        "severity": config.targets.elastic.severity[view.level],
        "interval": format_duration(interval),
        "from": f"now-{format_duration(look_back)}",
        "to": "now",
        "enabled": True,
        "author": [view.rule.author] if view.rule.author else [],
        "license": "Apache-2.0",
        "references": list(view.rule.references),
        "false_positives": list(view.rule.falsepositives),
        "tags": sorted({"SecretSight", f"anomaly:{view.meta.anomaly}", f"source:{view.meta.source}",
                        f"rule:{view.name}"}),
        "threat": attack.threat(tags),
        "max_signals": 100,
        "version": 1,
        "meta": {"secretsight": {"anomaly": view.meta.anomaly, "rule_name": view.name}},
    }


def query_rule(view: RuleView, config: Config, queries: list[str], index: list[str],
               interval: timedelta) -> tuple[dict[str, Any], tuple[str, ...]]:
    if len(queries) != 1:
        raise Unsupported(f"rule converted to {len(queries)} Lucene queries, expected 1")
    # One extra minute of look-back covers ingestion delay (Kibana's own default: 5m + 1m).
    doc = _common(view, config, interval + timedelta(minutes=1), interval)
    doc.update({"type": "query", "language": "lucene", "query": queries[0], "index": index})
    return doc, ()


def correlation_rule(
    view: RuleView,
    config: Config,
    conversions: dict[str, dict[str, list[str] | Exception]],
    esql: ESQLBackend,
    index: list[str],
    interval: timedelta,
) -> tuple[dict[str, Any], tuple[str, ...]]:
    rule = view.rule
    assert isinstance(rule, SigmaCorrelationRule)
    window = timespan(rule)
    look_back = window + interval
    kind = rule.type.name.lower()
    ref_names = [str(ref.rule.name) for ref in refs(rule)]
    if kind == "event_count":
        n = threshold_count(rule)
        eql_parts = _single_queries(conversions["eql"], ref_names)
        if n <= MAX_EQL_RUNS and eql_parts is not None:
            doc = _common(view, config, look_back, interval)
            query = eql_sequence(rule, eql_parts, n, window)
            doc.update({"type": "eql", "language": "eql", "index": index, "query": query})
            fixes: tuple[str, ...] = ("eql_runs_fixed",)
            if any(_NUMERIC_LIKE.search(p) for p in eql_parts):
                fixes += ("eql_numeric_in",)
            return doc, fixes
        lucene_parts = _single_queries(conversions["lucene"], ref_names)
        if lucene_parts is None:
            raise Unsupported("referenced rules did not convert to one query each")
        query = " OR ".join(f"({p})" for p in lucene_parts) if len(lucene_parts) > 1 \
            else lucene_parts[0]
        doc = _common(view, config, look_back, interval)
        doc.update({"type": "threshold", "language": "lucene", "index": index, "query": query,
                    "threshold": {"field": list(rule.group_by or []), "value": n}})
        return doc, ("threshold_rule",)
    if kind == "temporal" and (parts := merge_parts(rule)) is not None:
        doc = _common(view, config, look_back, interval)
        doc.update({"type": "esql", "language": "esql",
                    "query": esql_merged(rule, parts, conversions, index)})
        return doc, ("esql_merged_aggregates", "esql_sliding_lookback")
    if kind in ("value_count", "temporal"):
        queries = [str(q) for q in convert(esql, view)]
        if len(queries) != 1:
            raise Unsupported(f"rule converted to {len(queries)} ES|QL queries, expected 1")
        query = esql_without_buckets(queries[0], index)
        doc = _common(view, config, look_back, interval)
        doc.update({"type": "esql", "language": "esql", "query": query})
        workarounds = ["esql_sliding_lookback"]
        if kind == "value_count":
            workarounds.insert(0, "esql_distinct_count")
        return doc, tuple(workarounds)
    raise Unsupported(f"correlation type {kind} is not compiled for Elastic")


_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "=="}


def _single_queries(converted: dict[str, list[str] | Exception], names: list[str]
                    ) -> list[str] | None:
    """One query per named rule, or None when any did not convert to exactly one."""
    out = []
    for name in names:
        q = converted.get(name)
        if not isinstance(q, list) or len(q) != 1:
            return None
        out.append(q[0])
    return out


def esql_merged(rule: SigmaCorrelationRule, parts: list[SigmaCorrelationRule],
                conversions: dict[str, dict[str, list[str] | Exception]],
                index: list[str]) -> str:
    if not one_base(parts):
        return esql_merged_bases(rule, parts, conversions, index)
    wheres = []
    for ref in refs(parts[0]):
        q = conversions["esql"].get(ref.reference)
        if not isinstance(q, list) or len(q) != 1:
            raise Unsupported(f"base rule {ref.reference} has no ES|QL query")
        wheres.append(q[0])
    where = wheres[0] if len(wheres) == 1 else " or ".join(f"({w})" for w in wheres)
    aggs, conds = [], []
    for i, part in enumerate(parts):
        name = f"{part.type.name.lower()}_{i}"
        cond = simple_condition(part)
        field = cond.fieldref if part.type.name.lower() == "value_count" else None
        aggs.append(f"{name}=count_distinct({field})" if field else f"{name}=count()")
        conds.append(f"{name} {_OPS[cond.op.name.lower()]} {int(cond.count)}")
    by = f" by {', '.join(rule.group_by)}" if rule.group_by else ""
    return (f"from {','.join(index)} metadata _id, _index, _version | where {where}\n"
            f"| stats {', '.join(aggs)}{by}\n| where {' and '.join(conds)}")


def esql_merged_bases(rule: SigmaCorrelationRule, parts: list[SigmaCorrelationRule],
                      conversions: dict[str, dict[str, list[str] | Exception]],
                      index: list[str]) -> str:
    """Parts over different base rules: every event matching any base, each part's aggregate
    over its own base's events only (a `case` that is null elsewhere), all conditions."""
    bases = part_bases(parts, conversions["esql"], "ES|QL query")
    where = " or ".join(f"({b})" for b in bases)
    evals, aggs, conds = [], [], []
    for i, (part, base) in enumerate(zip(parts, bases, strict=True)):
        kind = part.type.name.lower()
        name = f"{kind}_{i}"
        cond = simple_condition(part)
        if kind == "value_count":
            evals.append(f"_part_{i}=case({base}, {cond.fieldref})")
            aggs.append(f"{name}=count_distinct(_part_{i})")
        else:
            evals.append(f"_part_{i}=case({base}, 1, 0)")
            aggs.append(f"{name}=sum(_part_{i})")
        conds.append(f"{name} {_OPS[cond.op.name.lower()]} {int(cond.count)}")
    by = f" by {', '.join(rule.group_by)}" if rule.group_by else ""
    return (f"from {','.join(index)} metadata _id, _index, _version | where {where}\n"
            f"| eval {', '.join(evals)}\n"
            f"| stats {', '.join(aggs)}{by}\n| where {' and '.join(conds)}")


_NUMERIC_LIKE = re.compile(r"\blike~ \((-?\d+(?:, -?\d+)*)\)")


def eql_numbers_in(query: str) -> str:
    """The EQL backend writes a list of numbers as `field like~ (401, 403)`, which EQL rejects
    (`like~` takes strings): use `in`."""
    return _NUMERIC_LIKE.sub(r"in (\1)", query)


def eql_sequence(rule: SigmaCorrelationRule, base: list[str], runs: int, window: timedelta) -> str:
    """`sequence by <group> with maxspan=<window> [any where q] with runs=N`: N matching events
    of one group within the window, evaluated on every event (a sliding window)."""
    conditions = [eql_numbers_in(re.sub(r"^any where ", "", q, count=1)) for q in base]
    cond = conditions[0] if len(conditions) == 1 else " or ".join(f"({c})" for c in conditions)
    by = f" by {', '.join(rule.group_by)}" if rule.group_by else ""
    return f"sequence{by} with maxspan={format_duration(window)}\n  [any where {cond}] with runs={runs}"


_BUCKET_EVAL = re.compile(r"\| eval timebucket=date_trunc\([^)]*\) ")


def esql_without_buckets(query: str, index: list[str]) -> str:
    """Drop the ES|QL backend's fixed `date_trunc` buckets (the rule's look-back is the window)
    and read from the SecretSight indices instead of `*`."""
    if not query.startswith("from * metadata "):
        raise Unsupported("unexpected ES|QL query shape (no `from * metadata`)")
    query = "from " + ",".join(index) + query[len("from *"):]
    query = _BUCKET_EVAL.sub("", query)
    query = query.replace(" by timebucket, ", " by ").replace(" by timebucket\n", "\n")
    defects.check_no_fixed_buckets(query)
    if "timebucket" in query:
        raise Unsupported("could not remove the ES|QL time buckets")
    return query
