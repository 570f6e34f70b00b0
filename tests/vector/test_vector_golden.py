"""Every golden case through the VRL programs on Vector's own VRL compiler (vrl-python).

A case's source picks the program: vault.vrl, cloudtrail.vrl, kubernetes.vrl, or auto.vrl
(the detecting one) for `auto`.
"""

from __future__ import annotations

import pytest
from support.vrl_programs import load_golden

from secretsight.schema import validate

CASES = load_golden()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_golden_case(programs, case):
    assert programs.items(case.source, case.raw) == list(case.expect)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_golden_events_validate(programs, case):
    items = programs.items(case.source, case.raw)
    events = [item["event"] for item in items if "event" in item]
    assert [validate(e) for e in events] == [[] for _ in events]
