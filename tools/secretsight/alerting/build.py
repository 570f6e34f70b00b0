"""Every alerting file, from one config: what `compile --target alerting` writes."""

from __future__ import annotations

from secretsight import yamlio
from secretsight.alerting import alertmanager, grafana, prometheus
from secretsight.compile.model import Support, TargetOutput
from secretsight.config import Config

TARGET = "alerting"


def build_files(config: Config) -> dict[str, str]:
    """Path (relative to the compile output directory) -> content."""
    return {
        alertmanager.CONFIG_FILE: alertmanager.render(config),
        prometheus.RULES_FILE: prometheus.render(config),
        grafana.DASHBOARD_FILE: grafana.render(config),
    }


def compile_output(config: Config) -> TargetOutput:
    """The `alerting` compile target: the files, and one support-matrix row per Prometheus
    alerting rule (the Alertmanager config and the dashboard have no rules of their own)."""
    out = TargetOutput(target=TARGET)
    out.files.update(build_files(config))
    doc = yamlio.load(out.files[prometheus.RULES_FILE])
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                out.queries[rule["alert"]] = [rule["expr"]]
                out.support.append(Support(rule["alert"], TARGET, "compiled"))
    out.support.sort(key=lambda c: (c.rule, c.target))
    return out
