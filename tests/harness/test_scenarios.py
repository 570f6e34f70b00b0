"""Every labelled scenario through every normalizer implementation, the embedded engine and the
stateful detectors: the findings must be EXACTLY those of `tests/scenarios/<name>.expect.yml`."""

from __future__ import annotations

import pytest
from support.expectations import describe, diff, load_expectation, observed
from support.harness import Harness, Outcome
from support.normalizers import IMPLEMENTATIONS, Unavailable

from secretsight.scenarios import SCENARIOS

DATASET_SOURCE = {"vault.audit": "vault", "aws.cloudtrail": "cloudtrail",
                  "kubernetes.audit": "kubernetes"}
CASES = [(name, impl) for name in sorted(SCENARIOS) for impl in IMPLEMENTATIONS]


@pytest.mark.parametrize(("scenario", "normalizer"), CASES, ids=[f"{s}/{n}" for s, n in CASES])
def test_scenario_findings_are_exactly_the_expected(
    harness: Harness, scenario: str, normalizer: str
) -> None:
    expectation = load_expectation(scenario)
    record = Outcome(scenario, normalizer, "fail",
                     expected={" / ".join(map(str, k)): v for k, v in expectation.findings.items()})
    harness.outcomes.append(record)
    try:
        events, dead = harness.events(scenario, normalizer)
    except Unavailable as exc:
        record.status, record.reason = "skip", str(exc)
        pytest.skip(f"{normalizer} normalizer unavailable: {exc}")
    assert events, f"{normalizer} produced no events for {scenario}"
    result = harness.replay(scenario, normalizer)
    got = observed(result.findings)
    record.observed = {" / ".join(map(str, k)): v for k, v in got.items()}
    for f in result.findings:
        source = DATASET_SOURCE.get(f.dataset or "", "multi")
        record.sources.setdefault(f.anomaly, [])
        if source not in record.sources[f.anomaly]:
            record.sources[f.anomaly].append(source)
    problems = [f"engine error: {e}" for e in result.errors]
    if dead:
        problems.append(f"{dead} raw line(s) dead-lettered by the {normalizer} normalizer")
    differences = diff(expectation.findings, got)
    details = [
        f"  {key}: {describe(result.findings, key)}"
        for key in got if got[key] > expectation.findings[key]
    ]
    problems += differences + details
    record.status = "fail" if problems else "pass"
    record.reason = "; ".join(differences)[:500]
    assert not problems, f"{scenario} via {normalizer}:\n" + "\n".join(problems)


PARITY = [(name, impl) for name in sorted(SCENARIOS) for impl in IMPLEMENTATIONS[1:]]


@pytest.mark.parametrize(("scenario", "normalizer"), PARITY, ids=[f"{s}/{n}" for s, n in PARITY])
def test_normalizers_emit_the_same_events_as_python(
    harness: Harness, scenario: str, normalizer: str
) -> None:
    """On scenario logs the VRL and Lua normalizers must produce exactly the Python events."""
    import json

    try:
        other, _ = harness.events(scenario, normalizer)
    except Unavailable as exc:
        pytest.skip(f"{normalizer} normalizer unavailable: {exc}")
    python, _ = harness.events(scenario, "python")
    want = sorted(json.dumps(e, sort_keys=True) for e in python)
    got = sorted(json.dumps(e, sort_keys=True) for e in other)
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    assert want == got, (
        f"{len(missing)} python-only, {len(extra)} {normalizer}-only events; first:\n"
        f"  python: {missing[:1]}\n  {normalizer}: {extra[:1]}")
