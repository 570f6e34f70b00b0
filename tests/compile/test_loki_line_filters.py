"""The Loki stream selection and line filters (secretsight.compile.transformations): what a
rule's condition requires, and a line filter that every matching JSON line passes, whatever
the encoder's spacing, letter case or `/` escaping. The same filters over the real shipped
lines of the Lua path: tests/fluentbit/test_loki_output.py."""

from __future__ import annotations

import json
import re

import pytest
from sigma.collection import SigmaCollection

from secretsight.compile.transformations import (
    line_filter_fields,
    loki_line_filter,
    rule_required_values,
)


def _rule(detection: str):  # noqa: ANN202 - a pySigma rule
    return SigmaCollection.from_yaml(
        "title: t\nlogsource: {product: secretsight}\ndetection:\n" + detection).rules[0]


@pytest.mark.parametrize(("detection", "expected"), [
    ("  sel: {secret.operation: [read, list], secretsight.category: secret}\n"
     "  condition: sel\n",
     {"secret.operation": {"read", "list"}, "secretsight.category": {"secret"}}),
    ("  a: {event.dataset: vault.audit, event.action: read}\n"
     "  b: {event.dataset: kubernetes.audit, event.action: get}\n  condition: a or b\n",
     {"event.dataset": {"vault.audit", "kubernetes.audit"}, "event.action": {"read", "get"}}),
    ("  a: {event.action: read}\n  f: {event.action: list}\n  condition: a and not f\n",
     {"event.action": {"read"}}),
    ("  a: {event.action: read}\n  b: {user.id: x}\n  condition: a or b\n", {}),
    ("  a: {secret.path: 'kv/*'}\n  condition: a\n", {}),  # a glob pins no value
], ids=["and_lists", "or_common_fields", "not_pins_nothing", "or_no_common", "glob"])
def test_required_values(detection: str, expected: dict) -> None:
    got = {f: set(v) for f, v in rule_required_values(_rule(detection)).items()}
    assert got == expected


@pytest.mark.parametrize("line", [
    json.dumps({"vault": {"path": "sys/audit/file"}}, separators=(",", ":")),
    json.dumps({"vault": {"path": "sys/audit/file"}}),  # spaces after `:`
    '{"vault":{"path":"sys\\/audit\\/file"}}',  # an encoder escaping `/`
    '{"vault":{"path":"SYS/Audit/File"}}',  # the rules compare case-insensitively
], ids=["compact", "spaced", "escaped_slash", "case"])
def test_line_filter_passes_every_encoding(line: str) -> None:
    pattern = re.fullmatch(r"\|~ `(.*)`", loki_line_filter(
        "vault.path", frozenset({"sys/audit/file"}))).group(1)
    assert re.search(pattern, line)


def test_line_filter_drops_other_values() -> None:
    pattern = re.fullmatch(r"\|~ `(.*)`", loki_line_filter(
        "vault.path", frozenset({"sys/audit/file"}))).group(1)
    assert not re.search(pattern, '{"vault":{"path":"sys/auditXfile"}}')
    assert not re.search(pattern, '{"vault":{"path":"sys/audit/file2"}}')


def test_only_string_fields_get_line_filters() -> None:
    """Arrays are `"k":["a"]`, numbers and booleans unquoted: no filter for them."""
    required = {"user.roles": frozenset({"root"}), "kubernetes.response_code": frozenset({"403"}),
                "aws.logging_disabled": frozenset({"true"}),
                "secret.operation": frozenset({"read"}),
                "event.dataset": frozenset({"vault.audit"})}
    assert [f for f, _ in line_filter_fields(required)] == ["secret.operation"]
