"""Every alerting file, from one config: what `compile --target alerting` writes."""

from __future__ import annotations

from secretsight.alerting import alertmanager, grafana, prometheus
from secretsight.config import Config


def build_files(config: Config) -> dict[str, str]:
    """Path (relative to the compile output directory) -> content."""
    return {
        alertmanager.CONFIG_FILE: alertmanager.render(config),
        prometheus.RULES_FILE: prometheus.render(config),
        grafana.DASHBOARD_FILE: grafana.render(config),
    }
