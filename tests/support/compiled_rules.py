"""The repo's rules compiled once per target per test session with the default config (compiling
takes about a second), and the rule lists of the Elastic and Loki outputs; shared by
tests/compile and tests/alerting so parametrised ids can name rules."""

from __future__ import annotations

import json
from functools import cache

import yaml

from secretsight.compile import TargetOutput, compile_target


@cache
def compiled(target: str) -> TargetOutput:
    return compile_target(target)


def ndjson_rules() -> list[dict]:
    """The Kibana detection rules of the Elastic output, one per NDJSON line."""
    text = compiled("elastic").files["elastic/secretsight-rules.ndjson"]
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def ruler_rules() -> list[dict]:
    """The Loki ruler rules, every group flattened: their label sets are the alerts Alertmanager
    routes."""
    doc = yaml.safe_load(compiled("loki").files["loki/secretsight-rules.yaml"])
    return [rule for group in doc["groups"] for rule in group["rules"]]
