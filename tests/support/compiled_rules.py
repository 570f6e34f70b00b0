"""The repo's rules compiled once per target per test session (compiling takes about a
second); shared by the tests in this directory so parametrised ids can name rules."""

from __future__ import annotations

import json
from functools import cache

import yaml

# Grafana's LogQL grammar (tests/support/logql.py), used by this directory's tests.
from support.logql import parse_logql  # noqa: F401 - re-exported

from secretsight.compile import TargetOutput, compile_target


@cache
def compiled(target: str) -> TargetOutput:
    return compile_target(target)


def ndjson_rules() -> list[dict]:
    text = compiled("elastic").files["elastic/secretsight-rules.ndjson"]
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def ruler_rules() -> list[dict]:
    doc = yaml.safe_load(compiled("loki").files["loki/secretsight-rules.yaml"])
    return [rule for group in doc["groups"] for rule in group["rules"]]
