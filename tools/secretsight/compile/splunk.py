"""Splunk target: `savedsearches.conf` with one scheduled alert per rule (SPL, cron schedule,
dispatch window matching the rule, alert actions).

pySigma-backend-splunk 2.1.0 writes the SPL. Its only correlation method counts in fixed
`bin _time` buckets, which miss a burst straddling a bucket boundary; `StreamstatsSplunkBackend`
adds a `streamstats` method that counts over a true sliding window (`time_window=`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from sigma.backends.splunk import SplunkBackend
from sigma.correlations import SigmaCorrelationRule

from secretsight.alerting.runbooks import link_splunk_stanzas
from secretsight.compile import defects, stateful
from secretsight.compile.common import (
    RuleView,
    base_queries,
    convert,
    record_failure,
    refs,
    simple_condition,
    timespan,
    views,
)
from secretsight.compile.model import Status, Support, TargetOutput, Unsupported
from secretsight.compile.pipelines import full_pipeline, target_vars
from secretsight.config import Config, format_duration
from secretsight.rules import RuleSet

TARGET = "splunk"
CONF_FILE = "splunk/savedsearches.conf"
METHOD = "streamstats"

# Splunk alert.severity: 1 debug, 2 info, 3 warn, 4 error, 5 severe, 6 fatal.
ALERT_SEVERITY = {"informational": 2, "low": 3, "medium": 4, "high": 5, "critical": 6}
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
    vars_ = target_vars(TARGET)
    every = int(vars_.get("schedule_minutes", 5))
    alert_index = str(vars_.get("alert_index", "secretsight_alerts"))
    backend = StreamstatsSplunkBackend(processing_pipeline=full_pipeline(TARGET, config),
                                       collect_errors=True)
    base: dict[str, list[str]] = {}
    stanzas: dict[str, dict[str, str]] = {}
    for view in views(ruleset):
        try:
            defects.refuse_timestamp_parts(view.rule, "pySigma-backend-splunk")
            workarounds: tuple[str, ...] = ()
            if isinstance(view.rule, SigmaCorrelationRule):
                parts = _merge_parts(view.rule)
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
                query = summarise(query, view.rule)
                defects.check_no_fixed_buckets(query)
            else:
                convert(backend, view)
                base[view.name] = base_queries(view)
                if not view.meta.emits:
                    continue
                if len(base[view.name]) != 1:
                    raise Unsupported(f"rule converted to {len(base[view.name])} searches")
                query = base[view.name][0]
        except Exception as exc:  # noqa: BLE001 - sorted by record_failure: matrix or errors
            record_failure(out, view, TARGET, exc)
            continue
        if not view.meta.emits:
            continue
        one_line = " ".join(line.strip() for line in query.splitlines() if line.strip())
        out.queries[view.name] = [one_line]
        out.files[f"splunk/searches/{view.meta.source}/{view.name}.spl"] = query.strip() + "\n"
        stanzas[stanza_name(view)] = stanza(view, one_line, every, alert_index)
        status: Status = "workaround" if workarounds else "compiled"
        out.support.append(Support(view.name, TARGET, status, workarounds))
    # Target-native forms of the stateful classes (look-back searches).
    stanzas.update(stateful.compile_splunk(config, every, alert_index, out))
    link_splunk_stanzas(stanzas, config.alerting)  # runbook in the description, team
    out.files[CONF_FILE] = render_conf(stanzas)


def _merge_parts(rule: Any) -> list[SigmaCorrelationRule] | None:
    from secretsight.compile.elastic import _merge_parts as merge

    return merge(rule)


def merged_search(rule: SigmaCorrelationRule, parts: list[SigmaCorrelationRule],
                  base: dict[str, list[str]]) -> str:
    """A temporal correlation over count correlations of one base rule: one streamstats with
    every aggregate, all conditions required."""
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


def summarise(query: str, rule: SigmaCorrelationRule) -> str:
    """One result per group and run instead of one per event past the threshold."""
    by = f" by {' '.join(rule.group_by)}" if rule.group_by else ""
    return (query.rstrip() + "\n| stats min(_time) as first_seen max(_time) as last_seen"
            f" count as events_over_threshold{by}")


def stanza_name(view: RuleView) -> str:
    return f"SecretSight - {view.rule.title}"


def stanza(view: RuleView, search: str, every: int, alert_index: str) -> dict[str, str]:
    """A scheduled alert. Plain rules look at the last `every` minutes (contiguous runs);
    correlations at window + `every` minutes so no burst of the window's length falls between
    two runs, with suppression per group for one window to avoid re-alerting it."""
    schedule = timedelta(minutes=every)
    settings: dict[str, str] = {}
    if isinstance(view.rule, SigmaCorrelationRule):
        window = timespan(view.rule)
        earliest = window + schedule
        group = list(view.rule.group_by or [])
        if group:
            settings["alert.suppress.fields"] = ",".join(group)
        settings["alert.suppress"] = "1"
        settings["alert.suppress.period"] = format_duration(window)
    else:
        earliest = schedule
        settings["alert.suppress"] = "0"
    settings.update({
        "action.logevent": "1",
        "action.logevent.param.event": (
            f"secretsight_alert rule=\"{view.name}\" anomaly=\"{view.meta.anomaly}\" "
            f"severity=\"{view.level}\" search=\"$name$\" results=\"$job.resultCount$\""),
        "action.logevent.param.index": alert_index,
        "action.logevent.param.sourcetype": "secretsight:alert",
        "alert.digest_mode": "1",
        "alert.severity": str(ALERT_SEVERITY[view.level]),
        "alert.track": "1",
        "counttype": "number of events",
        "cron_schedule": f"*/{every} * * * *",
        "description": view.description,
        "disabled": "0",
        "dispatch.earliest_time": f"-{_splunk_span(earliest)}@m",
        "dispatch.latest_time": "@m",
        "enableSched": "1",
        "quantity": "0",
        "relation": "greater than",
        "search": search,
    })
    return dict(sorted(settings.items()))


def _splunk_span(td: timedelta) -> str:
    # Splunk relative times: s, m, h, d (same letters as format_duration).
    return format_duration(td)


def render_conf(stanzas: dict[str, dict[str, str]]) -> str:
    lines = ["# SecretSight scheduled alerts (generated by `secretsight compile --target splunk`;",
             "# do not edit). Install into an app's local/savedsearches.conf.", ""]
    for name in sorted(stanzas):
        lines.append(f"[{name}]")
        lines += [f"{key} = {value}" for key, value in stanzas[name].items()]
        lines.append("")
    return "\n".join(lines)
