"""Splunk target: a Splunk app (secretsight.compile.splunk_app) with one scheduled alert per
rule (SPL through the app's macros, staggered cron schedule, lagged dispatch window matching
the rule, one alert per entity throttled per entity), and each search beside it.

pySigma-backend-splunk 2.1.0 writes the SPL. Its only correlation method counts in fixed
`bin _time` buckets, which miss a burst straddling a bucket boundary; `StreamstatsSplunkBackend`
adds a `streamstats` method that counts over a true sliding window (`time_window=`).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import ClassVar

from sigma.backends.splunk import SplunkBackend
from sigma.correlations import SigmaCorrelationRule

from secretsight.compile import defects, stateful
from secretsight.compile.common import (
    RuleView,
    base_queries,
    convert,
    merge_parts,
    part_bases,
    positive_placeholders,
    record_failure,
    refs,
    simple_condition,
    timespan,
    views,
)
from secretsight.compile.model import Status, Support, TargetOutput, Unsupported
from secretsight.compile.pipelines import full_pipeline
from secretsight.compile.splunk_app import (
    AppSearch,
    app_files,
    event_filter,
    lagged_window,
    literal_star_field,
    techniques,
)
from secretsight.compile.transformations import SERVICE_DATASETS
from secretsight.config import Config, format_duration
from secretsight.rules import EMPTY_LIST_SENTINEL, RuleSet, placeholder_values

TARGET = "splunk"
METHOD = "streamstats"
PLAIN_ENTITY = "user.id"  # a plain rule's alert names the identity

_SORT = "| sort 0 _time"  # streamstats time_window needs time-ordered events


def _m(base: dict[str, str], value: str) -> dict[str, str]:
    return {**base, METHOD: value}


class StreamstatsSplunkBackend(SplunkBackend):
    """SplunkBackend with a sliding-window correlation method."""

    correlation_methods: ClassVar[dict[str, str]] = _m(
        SplunkBackend.correlation_methods, "Correlation with streamstats time_window (sliding)")
    default_correlation_query: ClassVar[dict[str, str]] = _m(  # type: ignore[assignment]
        SplunkBackend.default_correlation_query,  # type: ignore[arg-type]
        "{search}\n{aggregate}\n{condition}")
    event_count_aggregation_expression: ClassVar[dict[str, str]] = _m(
        SplunkBackend.event_count_aggregation_expression,
        _SORT + "\n| streamstats time_window={timespan} count as event_count{groupby}")
    value_count_aggregation_expression: ClassVar[dict[str, str]] = _m(
        SplunkBackend.value_count_aggregation_expression,
        _SORT + "\n| streamstats time_window={timespan} dc({field}) as value_count{groupby}")
    temporal_aggregation_expression: ClassVar[dict[str, str]] = _m(
        SplunkBackend.temporal_aggregation_expression,
        _SORT + "\n| streamstats time_window={timespan} dc(event_type) as event_type_count{groupby}")
    groupby_expression: ClassVar[dict[str, str]] = _m(SplunkBackend.groupby_expression,
                                                       " by {fields}")
    groupby_field_expression: ClassVar[dict[str, str]] = _m(
        SplunkBackend.groupby_field_expression, "{field}")
    groupby_field_expression_joiner: ClassVar[dict[str, str]] = _m(
        SplunkBackend.groupby_field_expression_joiner, " ")
    event_count_condition_expression: ClassVar[dict[str, str]] = _m(
        SplunkBackend.event_count_condition_expression, "| where event_count {op} {count}")
    value_count_condition_expression: ClassVar[dict[str, str]] = _m(
        SplunkBackend.value_count_condition_expression, "| where value_count {op} {count}")
    temporal_condition_expression: ClassVar[dict[str, str]] = _m(
        SplunkBackend.temporal_condition_expression, "| where event_type_count {op} {count}")


_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "="}


def compile_rules(ruleset: RuleSet, config: Config, out: TargetOutput) -> None:
    every = timedelta(minutes=config.targets.splunk.schedule_minutes)
    backend = StreamstatsSplunkBackend(processing_pipeline=full_pipeline(TARGET, config),
                                       collect_errors=True)
    empty = {name for name, values in placeholder_values(config).items()
             if values == [EMPTY_LIST_SENTINEL]}
    base: dict[str, list[str]] = {}
    searches: list[AppSearch] = []
    star_fields: set[str] = set()
    for view in views(ruleset):
        # Read before conversion: the pipeline replaces the placeholders in place.
        positive = positive_placeholders(view.rule)
        try:
            defects.refuse_timestamp_parts(view.rule, "pySigma-backend-splunk")
            workarounds: tuple[str, ...] = ()
            if isinstance(view.rule, SigmaCorrelationRule):
                parts = merge_parts(view.rule)
                if parts is not None:
                    query, workarounds = merged_search(view.rule, parts, base), (
                        "splunk_streamstats", "splunk_merged_aggregates")
                elif not view.meta.emits:
                    convert(backend, view, method=METHOD)
                    continue
                else:
                    queries = [str(q) for q in convert(backend, view, method=METHOD)]
                    if len(queries) != 1:
                        raise Unsupported(f"rule converted to {len(queries)} searches")
                    query, workarounds = queries[0], ("splunk_streamstats",)
                query = summarise(query, list(view.rule.group_by or []))
                defects.check_no_fixed_buckets(query)
            else:
                convert(backend, view)
                base[view.name] = base_queries(view)
                if not view.meta.emits:
                    continue
                if len(base[view.name]) != 1:
                    raise Unsupported(f"rule converted to {len(base[view.name])} searches")
                query = summarise(base[view.name][0], [PLAIN_ENTITY], fill=True)
        except Exception as exc:  # noqa: BLE001 - sorted by record_failure: matrix or errors
            record_failure(out, view, TARGET, exc)
            continue
        if not view.meta.emits:
            continue
        try:
            query = literal_stars(with_events(query, view.meta.source), star_fields)
        except Unsupported as exc:
            out.support.append(Support(view.name, TARGET, "unsupported", (exc.reason,)))
            continue
        one_line = " ".join(line.strip() for line in query.splitlines() if line.strip())
        out.queries[view.name] = [one_line]
        out.files[f"splunk/searches/{view.meta.source}/{view.name}.spl"] = query.strip() + "\n"
        searches.append(app_search(view, config, one_line, every, positive & empty))
        if literal_star_field("") in query:
            workarounds += ("splunk_literal_star",)
        status: Status = "workaround" if workarounds else "compiled"
        out.support.append(Support(view.name, TARGET, status, workarounds))
    # Target-native forms of the stateful classes (lookup baselines, tstats).
    searches += stateful.compile_splunk(config, out)
    out.files.update(app_files(config, searches, sorted(star_fields)))


_STAR_EQ = re.compile(r'(?P<f>"[^"]+"|[\w.@{}]+)="\\\*"')
_STAR_IN = re.compile(r'(?P<f>"[^"]+"|[\w.@{}]+) IN \((?P<v>[^)]*)\)')


def literal_stars(query: str, fields: set[str]) -> str:
    """SPL's search cannot escape `*` (`"\\*"` is no escape): a value that is exactly a literal
    `*` becomes a test of the app's calculated field `secretsight_literal_star_<field>`
    (props.conf, eval `==`, which has no wildcards). `fields` collects the fields that need one;
    any other escaped `*` is refused."""

    def eq(m: re.Match[str]) -> str:
        field = m.group("f").strip('"')
        fields.add(field)
        return f'{literal_star_field(field)}="true"'

    def in_list(m: re.Match[str]) -> str:
        values = [v.strip() for v in m.group("v").split(",")]
        if '"\\*"' not in values:
            return m.group(0)
        field = m.group("f").strip('"')
        fields.add(field)
        rest = [v for v in values if v != '"\\*"']
        star = f'{literal_star_field(field)}="true"'
        return f"({m.group('f')} IN ({', '.join(rest)}) OR {star})" if rest else star

    query = _STAR_IN.sub(in_list, _STAR_EQ.sub(eq, query))
    if "\\*" in query:
        raise Unsupported("a value with an escaped `*` inside other text cannot be matched "
                          "literally by SPL's search")
    return query


def with_events(query: str, source: str) -> str:
    """The search restricted to the rule's events: the index and the sourcetype(s) of its
    dataset through the app's macros; the rule's condition in parentheses (in SPL's search,
    OR binds tighter than AND: grouping keeps that from mattering to a reader)."""
    first, _, rest = query.partition("\n")
    dataset = SERVICE_DATASETS.get(source)
    if first.startswith("| multisearch "):  # merged parts over several bases: filter each
        first = _SUBSEARCH.sub(
            lambda m: f"[ search {event_filter(dataset)} ({m['cond']}) | eval _part={m['part']} ]",
            first)
        return first + (f"\n{rest}" if rest else "")
    return f"{event_filter(dataset)} ({first})" + (f"\n{rest}" if rest else "")


_SUBSEARCH = re.compile(r"\[ search (?P<cond>.*?) \| eval _part=(?P<part>\d+) \]")


def merged_search(rule: SigmaCorrelationRule, parts: list[SigmaCorrelationRule],
                  base: dict[str, list[str]]) -> str:
    """A temporal correlation over count correlations of one base rule: one streamstats with
    every aggregate, all conditions required."""
    if len({tuple(r.reference for r in refs(p)) for p in parts}) != 1:
        return merged_search_bases(rule, parts, base)
    searches = []
    for ref in refs(parts[0]):
        q = base.get(ref.reference)
        if not q or len(q) != 1:
            raise Unsupported(f"base rule {ref.reference} has no single search")
        searches.append(q[0])
    search = searches[0] if len(searches) == 1 else " OR ".join(f"({s})" for s in searches)
    window = format_duration(timespan(rule))
    aggs, conds = [], []
    for i, part in enumerate(parts):
        kind = part.type.name.lower()
        name = f"{kind}_{i}"
        cond = simple_condition(part)
        aggs.append(f"dc({cond.fieldref}) as {name}" if kind == "value_count"
                    else f"count as {name}")
        conds.append(f"{name} {_OPS[cond.op.name.lower()]} {int(cond.count)}")
    by = f" by {' '.join(rule.group_by)}" if rule.group_by else ""
    return (f"{search}\n{_SORT}\n| streamstats time_window={window} {' '.join(aggs)}{by}\n"
            f"| where {' AND '.join(conds)}")


def merged_search_bases(rule: SigmaCorrelationRule, parts: list[SigmaCorrelationRule],
                        base: dict[str, list[str]]) -> str:
    """Parts over different base rules: each base's events tagged with its part (`multisearch`
    runs the searches side by side), one streamstats whose aggregates count only their own
    part's events, all conditions required."""
    searches = part_bases(parts, base, "single search")
    window = format_duration(timespan(rule))
    subs, aggs, conds = [], [], []
    for i, (part, search) in enumerate(zip(parts, searches, strict=True)):
        kind = part.type.name.lower()
        name = f"{kind}_{i}"
        cond = simple_condition(part)
        subs.append(f"[ search {search} | eval _part={i} ]")
        aggs.append(f"dc(eval(if(_part={i}, '{cond.fieldref}', null()))) as {name}"
                    if kind == "value_count" else f"count(eval(_part={i})) as {name}")
        conds.append(f"{name} {_OPS[cond.op.name.lower()]} {int(cond.count)}")
    by = f" by {' '.join(rule.group_by)}" if rule.group_by else ""
    return (f"| multisearch {' '.join(subs)}\n{_SORT}\n"
            f"| streamstats time_window={window} {' '.join(aggs)}{by}\n"
            f"| where {' AND '.join(conds)}")


def summarise(query: str, group: list[str], *, fill: bool = False) -> str:
    """One result per entity and run instead of one per event: the alert fires per result and
    is throttled per entity. `fill`: a missing entity field still yields one result."""
    by = f" by {' '.join(group)}" if group else ""
    filled = f'\n| fillnull value="-" {" ".join(group)}' if fill and group else ""
    return (query.rstrip() + filled + "\n| stats min(_time) as first_seen max(_time) as last_seen"
            f" count as events{by}")


def stanza_name(view: RuleView) -> str:
    return f"SecretSight - {view.rule.title}"


def app_search(view: RuleView, config: Config, search: str, every: timedelta,
               empty_lists: set[str]) -> AppSearch:
    """Plain rules look at the last schedule interval; correlations at window + interval, so no
    burst of the window's length falls between two runs, throttled per group for one window
    so the overlap does not alert twice. Both end `targets.splunk.lag` ago (late events)."""
    if isinstance(view.rule, SigmaCorrelationRule):
        window = timespan(view.rule)
        span, entity, suppress = window + every, tuple(view.rule.group_by or ()), window
    else:
        span, entity, suppress = every, (PLAIN_ENTITY,), None
    earliest, latest = lagged_window(config, span)
    disabled = None
    if empty_lists:
        disabled = (f"the config list(s) {', '.join(sorted(empty_lists))} it matches on are "
                    "empty; fill them and compile again.")
    return AppSearch(
        stanza=stanza_name(view), rule=view.name, anomaly=view.meta.anomaly, level=view.level,
        description=view.description, search=search, earliest=earliest, latest=latest,
        entity=entity, suppress_period=suppress, techniques=techniques(view.tags),
        disabled_reason=disabled)
