"""From finding to pager: the alerting pieces `secretsight compile --target alerting` writes.

- `alertmanager`: an Alertmanager config (route tree by anomaly and severity, named receiver
  placeholders, `time_intervals` from the config's `maintenance_windows`);
- `prometheus`: recording and alerting rules over `watch`'s /metrics;
- `grafana`: a dashboard built with grafana-foundation-sdk (Loki and Prometheus panels);
- `runbooks`: the runbook link every alert and finding carries (docs/runbooks/<anomaly>.md);
- `settings`: the `alerting:` section of the config.

This package's __init__ imports nothing: `secretsight.config` imports `settings`, and the
builders import the config.
"""
