"""The SecretSight Grafana dashboard, built with grafana-foundation-sdk (Grafana's own typed
builders), not hand-written JSON.

Data sources are variables (`$loki`, `$prometheus`) so one JSON imports into any Grafana; the
`$dataset` variable narrows the Loki panels to some audit sources. Windows and thresholds come
from the config (the same numbers the rules use); every query is a fixed string apart from those
variables, so tests check each LogQL with Grafana's LogQL grammar and each PromQL with promtool.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import loki, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.variants import Dataquery
from grafana_foundation_sdk.models import dashboard as dm

from secretsight.alerting import prometheus as rules
from secretsight.config import Config, format_duration

DASHBOARD_FILE = "alerting/grafana/secretsight-dashboard.json"
UID = "secretsight-overview"
DATASETS = ("aws.cloudtrail", "kubernetes.audit", "vault.audit")
TOP = 20  # series per "per identity" panel
LOKI = dm.DataSourceRef(type_val="loki", uid="${loki}")
PROM = dm.DataSourceRef(type_val="prometheus", uid="${prometheus}")


@dataclass(frozen=True)
class Query:
    kind: str  # "logql" | "promql"
    expr: str
    legend: str


def _stream(config: Config) -> str:
    # The audit events as the shippers label them in Loki (the stream label of
    # targets.loki.dataset_label, the normalized event as the JSON line).
    label = config.targets.loki.dataset_label
    return f'{{{label}=~"$dataset"}} | json | secretsight_category="secret"'


def panel_queries(config: Config) -> dict[str, list[Query]]:
    """Panel title -> its queries (what the dashboard shows; tests parse each one)."""
    job = f'job="{config.alerting.prometheus_job}"'
    label = config.targets.loki.dataset_label
    bulk = format_duration(config.thresholds.bulk_read.window)
    paths = format_duration(config.thresholds.path_diversity.window)
    return {
        "Secret reads per identity (Loki)": [Query("logql", (
            f"topk({TOP}, sum by (user_id) (count_over_time({_stream(config)} "
            f'| secret_operation=~"read|list" [{bulk}])))'), "{{user_id}}")],
        "Secret reads per identity (side-car)": [Query(
            "promql", f"topk({TOP}, {rules.READS_WINDOW})", "{{identity}}")],
        "Distinct secret paths per identity (Loki)": [Query("logql", (
            f"topk({TOP}, count by (user_id) (sum by (user_id, secret_path) (count_over_time("
            f'{_stream(config)} | secret_operation="read" | secret_path!="" [{paths}]))))'),
            "{{user_id}}")],
        "Distinct secret paths per identity (side-car)": [Query(
            "promql", f"topk({TOP}, {rules.PATHS_WINDOW})", "{{identity}}")],
        "Findings by anomaly and severity (1h)": [Query("promql", (
            f"sum by (anomaly, severity) (increase(secretsight_findings_by_severity_total{{{job}}}"
            "[1h])) > 0"), "{{anomaly}} ({{severity}})")],
        "First-path accesses (1h)": [Query("promql", (
            f"sum(increase(secretsight_first_path_accesses_total{{{job}}}[1h]))"), "first path")],
        "Seconds since the last audit event": [Query("promql", (
            f"time() - max by (source) (secretsight_last_event_timestamp_seconds{{{job}}})"),
            "{{source}}")],
        "Audit events per source (Loki)": [Query(
            "logql", f"sum by ({label}) (count_over_time({{{label}=~\"$dataset\"}} [1m]))",
            f"{{{{{label}}}}}")],
        "Side-car: parse and output errors": [
            Query("promql", (f"sum by (instance, reason) (rate(secretsight_parse_errors_total"
                             f"{{{job}}}[5m]))"), "parse {{instance}} {{reason}}"),
            Query("promql", (f"sum by (instance, output) (rate(secretsight_output_errors_total"
                             f"{{{job}}}[5m]))"), "output {{instance}} {{output}}"),
        ],
        "Side-car: end-to-end lag": [Query(
            "promql", f"max by (instance) (secretsight_end_to_end_lag_seconds{{{job}}})",
            "{{instance}}")],
        "Side-car: state commit failures, restarts and scrape": [
            Query("promql", (f"sum by (instance) (increase("
                             f"secretsight_state_commit_failures_total{{{job}}}[5m]))"),
                  "commit failures {{instance}}"),
            Query("promql", f"changes(secretsight_start_time_seconds{{{job}}}[15m])",
                  "restarts (15m) {{instance}}"),
            Query("promql", f"up{{{job}}}", "up {{instance}}"),
        ],
        "Side-car: findings waiting and dropped": [
            Query("promql", f"sum by (instance, output) (secretsight_spool_depth{{{job}}})",
                  "waiting {{instance}} {{output}}"),
            Query("promql", (f'sum by (instance, output) (increase(secretsight_spool_findings_total'
                             f'{{{job}, event="dropped"}}[5m]))'), "dropped {{instance}} {{output}}"),
        ],
    }


def _targets(queries: list[Query]) -> list[Builder[Dataquery]]:
    out: list[Builder[Dataquery]] = []
    for i, q in enumerate(queries):
        ref = chr(ord("A") + i)
        if q.kind == "logql":
            out.append(loki.Dataquery().expr(q.expr).legend_format(q.legend).ref_id(ref)
                       .datasource(LOKI))
        else:
            out.append(prometheus.Dataquery().expr(q.expr).legend_format(q.legend).ref_id(ref)
                       .datasource(PROM))
    return out


def _thresholds(red_at: float) -> gd.ThresholdsConfig:
    return gd.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps([
        dm.Threshold(value=None, color="green"), dm.Threshold(value=red_at, color="red")])


def build(config: Config) -> gd.Dashboard:
    q = panel_queries(config)
    t = config.thresholds
    silence = config.stateful.audit_gap_max_silence.total_seconds()
    ids = itertools.count(1)  # stable panel ids: Grafana links and provisioning key on them

    def row(title: str) -> gd.Row:
        return gd.Row(title).id(next(ids))

    def series(title: str, description: str, unit: str = "short",
               red_at: float | None = None) -> timeseries.Panel:
        p = (timeseries.Panel().title(title).description(description).unit(unit)
             .targets(_targets(q[title])).height(8).span(12).id(next(ids)))
        p = p.datasource(LOKI if q[title][0].kind == "logql" else PROM)
        if red_at is not None:
            p = p.thresholds(_thresholds(red_at))
        return p

    def big(title: str, description: str, unit: str, red_at: float) -> stat.Panel:
        return (stat.Panel().title(title).description(description).unit(unit)
                .datasource(PROM).targets(_targets(q[title])).thresholds(_thresholds(red_at))
                .height(6).span(12).id(next(ids)))

    variables = [
        gd.DatasourceVariable("loki").label("Loki").type("loki"),
        gd.DatasourceVariable("prometheus").label("Prometheus").type("prometheus"),
        gd.CustomVariable("dataset").label("Audit source").values(",".join(DATASETS))
        .multi(True).include_all(True).all_value(".+"),
    ]
    return (
        gd.Dashboard("SecretSight: secret-store access").uid(UID)
        .tags(["secretsight", "security"]).time("now-6h", "now").refresh("1m")
        .timezone("utc").variables(variables)
        .with_row(row("Who reads secrets"))
        .with_panel(series("Secret reads per identity (Loki)",
                           f"Reads and lists per identity (user.id) over "
                           f"{format_duration(t.bulk_read.window)}; above "
                           f"{t.bulk_read.count} is bulk_read.", red_at=t.bulk_read.count))
        .with_panel(series("Secret reads per identity (side-car)",
                           "The side-car's window gauge (top identities), summed over replicas.",
                           red_at=t.bulk_read.count))
        .with_panel(series("Distinct secret paths per identity (Loki)",
                           "Harvesting reads many paths; a renewal agent one.",
                           red_at=t.path_diversity.distinct_paths))
        .with_panel(series("Distinct secret paths per identity (side-car)",
                           "The side-car's window gauge (top identities).",
                           red_at=t.path_diversity.distinct_paths))
        .with_row(row("Findings"))
        .with_panel(series("Findings by anomaly and severity (1h)",
                           "Findings the side-car emitted, by anomaly class and severity."))
        .with_panel(big("First-path accesses (1h)",
                        "Identities reading a secret path for the first time: a spike is lateral "
                        "movement or a new deployment.", "short", 1))
        .with_row(row("Audit streams"))
        .with_panel(big("Seconds since the last audit event",
                        "Above stateful.audit_gap_max_silence: shipping broke, or the audit "
                        "device was disabled (runbook audit_gap).", "s", silence))
        .with_panel(series("Audit events per source (Loki)",
                           "A source dropping to zero is an audit gap."))
        .with_row(row("Side-car health"))
        .with_panel(series("Side-car: parse and output errors",
                           "Lines it cannot use; findings it cannot deliver.", "ops"))
        .with_panel(series("Side-car: end-to-end lag",
                           "Wall clock minus @timestamp of the last event processed.", "s",
                           red_at=float(rules.seconds(config.alerting.sidecar_max_lag))))
        .with_panel(series("Side-car: state commit failures, restarts and scrape",
                           "Failed state commits, restarts (a failing store ends the run); up 0 "
                           "means Prometheus cannot scrape it."))
        .with_panel(series("Side-car: findings waiting and dropped",
                           "Findings spooled for an unreachable HTTP receiver, and those dropped "
                           "when the spool is full (lost)."))
    )


def render(config: Config) -> str:
    model = build(config).build()
    return json.dumps(model, cls=JSONEncoder, sort_keys=True, indent=2) + "\n"
