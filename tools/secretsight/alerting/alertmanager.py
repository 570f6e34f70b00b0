"""The Alertmanager config: route tree by anomaly and severity, receivers as named
placeholders, and `time_intervals` generated from the config's `maintenance_windows`.

Routing (under one route matching `team="<alerting.team>"`, so the subtree can be pasted
under an existing organisation's root):
1. `alerting.page_anomalies` (bulk_read, dual_source_ip) -> the page receiver. No mute or
   active intervals, and no inhibit rule can target them: every inhibit rule here targets
   `component="sidecar"` alerts only, which finding alerts never carry.
2. admin_off_hours (the SIEM targets' `admin_activity` fires on every admin action) -> the
   on-call chat receiver, muted inside every maintenance window: what is left is admin
   activity outside them.
3. the side-car's own health (`component="sidecar"`) -> chat.
4. by severity: `alerting.page_severities` -> page, `alerting.chat_severities` -> chat;
   everything else -> the ticket receiver.

The maintenance windows are validated by the detectors' own parser
(`secretsight.detect.maintenance.MaintenanceCalendar`) and written from the same config
models, so Alertmanager mutes exactly when the admin_off_hours detector stays silent.
"""

from __future__ import annotations

from typing import Any

import yaml

from secretsight.config import Config, MaintenanceWindow
from secretsight.detect.maintenance import MaintenanceCalendar
from secretsight.errors import SecretSightError

CONFIG_FILE = "alerting/alertmanager/alertmanager.yml"
ADMIN_ANOMALY = "admin_off_hours"
SIDECAR_MATCHER = 'component="sidecar"'
SIDECAR_DOWN = "SecretSightSidecarDown"


def _regex_alternatives(values: list[str]) -> str:
    # Anomaly classes and severities are [a-z_] words: no regex metacharacters to escape.
    return "|".join(sorted(set(values)))


def time_intervals(windows: list[MaintenanceWindow]) -> list[dict[str, Any]]:
    """Alertmanager `time_intervals` for the maintenance windows (the same YAML shape, empty
    constraints left out, the window's `location` on each interval)."""
    MaintenanceCalendar(windows)  # the detectors' validation: a bad window fails here too
    names = [w.name for w in windows]
    if len(set(names)) != len(names):
        raise SecretSightError(f"maintenance_windows: duplicate names in {names}")
    out = []
    for w in windows:
        intervals = []
        for ti in w.time_intervals:
            entry: dict[str, Any] = {}
            if ti.times:
                entry["times"] = [{"start_time": t.start_time, "end_time": t.end_time}
                                  for t in ti.times]
            for key in ("weekdays", "days_of_month", "months", "years"):
                if getattr(ti, key):
                    entry[key] = list(getattr(ti, key))
            entry["location"] = w.location
            intervals.append(entry)
        out.append({"name": w.name, "time_intervals": intervals})
    return out


def route_tree(config: Config) -> dict[str, Any]:
    a = config.alerting
    r = a.receivers
    windows = [w.name for w in config.maintenance_windows]
    admin: dict[str, Any] = {"matchers": [f'anomaly="{ADMIN_ANOMALY}"'], "receiver": r.chat}
    if windows:
        admin["mute_time_intervals"] = windows
    routes: list[dict[str, Any]] = []
    if a.page_anomalies:
        routes.append({
            "matchers": [f'anomaly=~"{_regex_alternatives(a.page_anomalies)}"'],
            "receiver": r.page,
            # Harvesting is over in minutes: notify at once and remind often.
            "group_wait": "0s",
            "repeat_interval": "1h",
        })
    routes += [admin, {"matchers": [SIDECAR_MATCHER], "receiver": r.chat}]
    if a.page_severities:
        routes.append({"matchers": [f'severity=~"{_regex_alternatives(a.page_severities)}"'],
                       "receiver": r.page, "repeat_interval": "1h"})
    if a.chat_severities:
        routes.append({"matchers": [f'severity=~"{_regex_alternatives(a.chat_severities)}"'],
                       "receiver": r.chat})
    return {
        "receiver": r.ticket,
        "group_by": ["alertname", "anomaly", "user_id", "dataset", "instance"],
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
        "routes": [{"matchers": [f'team="{a.team}"'], "receiver": r.ticket, "routes": routes}],
    }


def inhibit_rules(config: Config) -> list[dict[str, Any]]:
    """A side-car that is down explains its other health alerts. Nothing inhibits a finding:
    the targets are side-car alerts only."""
    return [{
        "source_matchers": [f'alertname="{SIDECAR_DOWN}"', f'team="{config.alerting.team}"'],
        "target_matchers": [SIDECAR_MATCHER, f'team="{config.alerting.team}"'],
        "equal": ["instance"],
    }]


def receivers(config: Config) -> list[dict[str, Any]]:
    names = sorted({*config.alerting.receivers.model_dump().values()})
    return [{"name": n} for n in names]


def check_vocabulary(config: Config) -> None:
    """The anomaly classes and severities named in `alerting` exist (checked here, not in the
    settings model: the vocabulary lives in findings.py, which imports the settings)."""
    from secretsight.findings import ANOMALY_CLASSES, SEVERITIES

    a = config.alerting
    for key, values, known in (("page_anomalies", a.page_anomalies, ANOMALY_CLASSES),
                               ("page_severities", a.page_severities, SEVERITIES),
                               ("chat_severities", a.chat_severities, SEVERITIES)):
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise SecretSightError(f"alerting.{key}: unknown {', '.join(unknown)} "
                                   f"(choose from {', '.join(known)})")


def render(config: Config) -> str:
    check_vocabulary(config)
    doc = {
        "route": route_tree(config),
        "inhibit_rules": inhibit_rules(config),
        "receivers": receivers(config),
        "time_intervals": time_intervals(config.maintenance_windows),
    }
    header = (
        "# SecretSight Alertmanager config (generated by `secretsight compile --target alerting`"
        "; do not edit).\n"
        "# Receivers are named placeholders: add your integration (pagerduty_configs,\n"
        "# slack_configs, webhook_configs, ...) under each name, or merge the route under\n"
        "# `team` into your own tree. time_intervals come from `maintenance_windows`.\n")
    return header + yaml.safe_dump(doc, sort_keys=False, width=1_000_000)
