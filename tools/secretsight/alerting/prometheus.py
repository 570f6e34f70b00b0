"""Prometheus recording and alerting rules over `secretsight watch`'s /metrics.

Recording rules (per identity, summed over side-car replicas; distinct paths take the max, as
distinct counts do not add):
- `secretsight:identity_reads:window`, `secretsight:identity_distinct_paths:window`: the
  side-car's window gauges (bulk_read / path_diversity windows of the config);
- `secretsight:identity_reads:rate5m`: reads per second per identity from the counter.

Alerts: bulk reads and path diversity per identity (thresholds of the config), first-path
accesses, an audit source gone silent (continuity as the audit_gap detector defines it, from
the last-event and continuous-since gauges), and the side-car's own health (down, restarting,
parse errors, output errors, dropped findings, lag, state commit failures). Every alert carries
`team`, `severity` and either `anomaly` (what it detects) or `component="sidecar"`, and a
`runbook_url` annotation.
"""

from __future__ import annotations

from typing import Any

import yaml

from secretsight import anomalies
from secretsight.alerting.runbooks import SIDECAR_RUNBOOK, runbook_url
from secretsight.config import Config, format_duration

RULES_FILE = "alerting/prometheus/secretsight-rules.yaml"
GROUP_INTERVAL = "1m"
READS_WINDOW = "secretsight:identity_reads:window"
PATHS_WINDOW = "secretsight:identity_distinct_paths:window"
READS_RATE = "secretsight:identity_reads:rate5m"
# Parse errors above this share of input lines are a broken shipper or format change.
PARSE_ERROR_RATIO = 0.01
# A first-path access stays visible this long (longer than a scrape interval or two).
FIRST_PATH_RANGE = "5m"


def identity_filter(globs: list[str]) -> str:
    """A label matcher excluding allowlisted identities (`*` globs, case-sensitive as the
    metric's label), or '' when the allowlist is empty."""
    if not globs:
        return ""
    # Not fnmatch.translate: its Python regex ends in \Z, which RE2 (Prometheus) lacks; RE2
    # anchors label matchers itself, so `*`/`?` are translated by hand.
    parts = []
    for g in sorted(set(globs)):
        out = ""
        for ch in g:
            out += {"*": ".*", "?": "."}.get(ch) or _re2_escape(ch)
        parts.append(out)
    return f'identity!~"{"|".join(parts)}"'


def _re2_escape(ch: str) -> str:
    if ch in r"\.+()[]{}|^$":
        return "\\\\" + ch  # backslash escaped once more inside the PromQL string
    if ch == '"':
        return '\\"'
    return ch


def _alert(name: str, expr: str, *, severity: str, summary: str, description: str,
           runbook: str, config: Config, labels: dict[str, str], for_: str = "0m"
           ) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {**labels, "severity": severity, "team": config.alerting.team},
        "annotations": {"summary": summary, "description": description,
                        "runbook_url": runbook_url(runbook, config.alerting)},
    }


def _job(config: Config) -> str:
    return f'job="{config.alerting.prometheus_job}"'


def recording_rules(config: Config) -> list[dict[str, Any]]:
    job = _job(config)
    return [
        {"record": READS_WINDOW,
         "expr": f"sum by (identity) (secretsight_identity_window_reads{{{job}}})"},
        {"record": PATHS_WINDOW,
         "expr": f"max by (identity) (secretsight_identity_window_distinct_paths{{{job}}})"},
        {"record": READS_RATE,
         "expr": f'sum by (identity) (rate(secretsight_identity_reads_total{{{job}, '
                 f'identity!="other"}}[5m]))'},
    ]


def detection_alerts(config: Config) -> list[dict[str, Any]]:
    t = config.thresholds
    s = config.stateful
    bulk, pd_, fpa, gap = (anomalies.anomaly(n) for n in
                           ("bulk_read", "path_diversity", "first_path_access", "audit_gap"))

    def sel(metric: str, globs: list[str]) -> str:
        f = identity_filter(globs)
        return f"{metric}{{{f}}}" if f else metric

    reads = sel(READS_WINDOW, config.allowlists.bulk_read)
    pd_paths = sel(PATHS_WINDOW, config.allowlists.path_diversity)
    pd_reads = sel(READS_WINDOW, config.allowlists.path_diversity)
    silence = int(s.audit_gap_max_silence.total_seconds())
    baseline = int(s.audit_gap_baseline.total_seconds())
    job = _job(config)
    age = f"time() - max by (source) (secretsight_last_event_timestamp_seconds{{{job}}})"
    run = (f"max by (source) (secretsight_last_event_timestamp_seconds{{{job}}} "
           f"- secretsight_source_continuous_since_timestamp_seconds{{{job}}})")
    return [
        _alert("SecretSightBulkRead", f"{reads} > {t.bulk_read.count}", severity=bulk.severity,
               summary=f"{bulk.title}: {{{{ $labels.identity }}}}",
               description=(f"{{{{ $labels.identity }}}} read secrets {{{{ $value }}}} times within "
                            f"{format_duration(t.bulk_read.window)} (more than "
                            f"{t.bulk_read.count}: thresholds.bulk_read)."),
               runbook="bulk_read", config=config,
               labels={"anomaly": "bulk_read", "user_id": "{{ $labels.identity }}"}),
        _alert("SecretSightPathDiversity",
               f"{pd_paths} >= {t.path_diversity.distinct_paths} "
               f"and on (identity) {pd_reads} >= {t.path_diversity.reads}",
               severity=pd_.severity,
               summary=f"{pd_.title}: {{{{ $labels.identity }}}}",
               description=(f"{{{{ $labels.identity }}}} read {{{{ $value }}}} distinct secret paths "
                            f"within {format_duration(t.path_diversity.window)} (at least "
                            f"{t.path_diversity.distinct_paths} paths and "
                            f"{t.path_diversity.reads} reads: thresholds.path_diversity)."),
               runbook="path_diversity", config=config,
               labels={"anomaly": "path_diversity", "user_id": "{{ $labels.identity }}"}),
        _alert("SecretSightFirstPathAccess",
               f"sum by (job, instance) (increase(secretsight_first_path_accesses_total{{{job}}}"
               f"[{FIRST_PATH_RANGE}])) > 0",
               severity=fpa.severity, summary=fpa.title,
               description=(f"{{{{ $value }}}} first_path_access finding(s) in the last "
                            f"{FIRST_PATH_RANGE} on "
                            "{{ $labels.instance }}: the findings output names the identity and "
                            "the path."),
               runbook="first_path_access", config=config,
               labels={"anomaly": "first_path_access"}),
        _alert("SecretSightAuditSourceSilent",
               f'label_replace(({age}) > {silence} and on (source) {run} >= {baseline}, '
               f'"dataset", "$1", "source", "(.*)")',
               severity=gap.severity, summary=f"{gap.title}: {{{{ $labels.source }}}}",
               description=(f"No {{{{ $labels.source }}}} event for {{{{ $value | humanizeDuration }}}}"
                            f" after at least {format_duration(s.audit_gap_baseline)} of "
                            f"continuous flow (stateful.audit_gap_max_silence "
                            f"{format_duration(s.audit_gap_max_silence)}): log shipping broke, "
                            "or the audit device was disabled."),
               runbook="audit_gap", config=config, labels={"anomaly": "audit_gap"}),
    ]


def sidecar_alerts(config: Config) -> list[dict[str, Any]]:
    a = config.alerting
    job = _job(config)
    health = {"component": "sidecar"}
    errors = f"sum by (job, instance) (rate(secretsight_parse_errors_total{{{job}}}[10m]))"

    def alert(name: str, expr: str, summary: str, description: str, severity: str = "medium",
              for_: str = a.sidecar_for) -> dict[str, Any]:
        return _alert(name, expr, severity=severity, summary=summary, description=description,
                      runbook=SIDECAR_RUNBOOK, config=config, labels=health, for_=for_)

    return [
        alert("SecretSightSidecarDown", f"up{{{job}}} == 0",
              "SecretSight side-car {{ $labels.instance }} is down",
              "Prometheus cannot scrape the side-car: no detection runs on its inputs.",
              severity="high", for_="5m"),
        # errors / (errors + events): every input (file lines and HTTP bodies alike) ends as
        # an event, an error or a deliberate skip; a side-car with errors and no event at all
        # (`or ... * 0`: no events series to match) has a ratio of 1.
        alert("SecretSightParseErrors",
              f"{errors} / ({errors} + (sum by (job, instance) "
              f"(rate(secretsight_events_processed_total{{{job}}}[10m])) or {errors} * 0)) "
              f"> {PARSE_ERROR_RATIO}",
              "Side-car {{ $labels.instance }} cannot use its input",
              f"More than {PARSE_ERROR_RATIO:.0%} of its input fails to parse or normalize "
              "(ratio {{ $value | humanizePercentage }}): a shipper or audit format changed."),
        alert("SecretSightOutputErrors",
              f"sum by (job, instance, output) (increase(secretsight_output_errors_total{{{job}}}"
              f"[5m])) > 0",
              "Side-car {{ $labels.instance }} fails to deliver findings to {{ $labels.output }}",
              "Finding deliveries fail: findings are not reaching their receiver.",
              severity="high"),
        alert("SecretSightLagging",
              f"max by (job, instance) (secretsight_end_to_end_lag_seconds{{{job}}}) > "
              f"{seconds(a.sidecar_max_lag)}",
              "Side-car {{ $labels.instance }} is behind",
              f"The last event processed is {{{{ $value | humanizeDuration }}}} old (more than "
              f"{a.sidecar_max_lag}): detection is late."),
        alert("SecretSightFindingsDropped",
              f'sum by (job, instance, output) (increase(secretsight_spool_findings_total'
              f'{{{job}, event="dropped"}}[5m])) > 0',
              "Side-car {{ $labels.instance }} drops findings for {{ $labels.output }}",
              "The HTTP output's spool is full and its oldest findings are dropped: the "
              "receiver has been unreachable for long; those findings are lost.",
              severity="high", for_="0m"),
        # A state store that fails a commit ends the run (exit 2, after emitting what was
        # computed): under a supervisor that is a restart loop, which this sees.
        alert("SecretSightRestarting",
              f"changes(secretsight_start_time_seconds{{{job}}}[15m]) >= 2",
              "Side-car {{ $labels.instance }} keeps restarting",
              "It restarted {{ $value }} times in 15 minutes: a crash loop (a failing state "
              "store ends the run with status 2).", severity="high", for_="0m"),
        alert("SecretSightStateCommitFailing",
              f"sum by (job, instance) (increase(secretsight_state_commit_failures_total{{{job}}}"
              f"[5m])) > 0",
              "Side-car {{ $labels.instance }} cannot commit its state",
              "State + offset commits fail (store unreachable, disk full): a restart would "
              "re-read from the last good commit.", severity="high", for_="0m"),
    ]


def seconds(duration: str) -> int:
    from secretsight.config import parse_duration

    return int(parse_duration(duration).total_seconds())


def groups(config: Config) -> list[dict[str, Any]]:
    return [
        {"name": "secretsight-recording", "interval": GROUP_INTERVAL,
         "rules": recording_rules(config)},
        {"name": "secretsight-detections", "interval": GROUP_INTERVAL,
         "rules": detection_alerts(config)},
        {"name": "secretsight-sidecar", "interval": GROUP_INTERVAL,
         "rules": sidecar_alerts(config)},
    ]


def render(config: Config) -> str:
    header = ("# SecretSight Prometheus rules for `secretsight watch` /metrics (generated by "
              "`secretsight compile --target alerting`; do not edit).\n")
    return header + yaml.safe_dump({"groups": groups(config)}, sort_keys=False,
                                   width=1_000_000, allow_unicode=True)
