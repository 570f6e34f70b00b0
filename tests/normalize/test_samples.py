"""Every real-format sample in ../shared/samples normalizes without a dead letter, except the
shapes deliberately not supported (listed here and in docs/normalization.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.samples import SAMPLES, params_or_missing

from secretsight.normalize import DeadLetterRecord, Stats, iter_files
from secretsight.schema import validate

SAMPLE_FILES = params_or_missing(sorted(
    p.relative_to(SAMPLES).as_posix()
    for p in SAMPLES.glob("*/*")
    if p.suffix in (".ndjson", ".json")
), 1, "*/*.json or */*.ndjson")

# Panther rule-test stubs: hand-written fragments without eventTime/eventID (CloudTrail) or any
# timestamp/auditID (Kubernetes). Real sources always write them; we dead-letter, not invent.
PANTHER_K8S_STUBS = {n: "missing_timestamp" for n in range(1, 25) if n != 11}
UNSUPPORTED: dict[str, dict[int, str]] = {
    "cloudtrail/panther-labs_panther-analysis_rule-tests.ndjson": {
        n: "missing_timestamp" for n in range(4, 9)
    },
    "k8s/panther-labs_panther-analysis_k8s-rule-tests.ndjson": PANTHER_K8S_STUBS,
}


@pytest.mark.samples
@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_sample_normalizes(samples_dir: Path, name: str) -> None:
    stats = Stats()
    dead: list[DeadLetterRecord] = []
    events = list(iter_files([samples_dir / name], "auto", stats, dead_letter_sink=dead.append))
    assert {d.line: d.reason for d in dead} == UNSUPPORTED.get(name, {})
    assert stats.balanced()
    for event in events:
        assert validate(event) == []
    if name not in UNSUPPORTED or len(UNSUPPORTED[name]) < stats.lines:
        assert stats.normalized > 0 or stats.skipped_total > 0


@pytest.mark.samples
@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unsupported_list_names_existing_samples(samples_dir: Path, name: str) -> None:
    assert (samples_dir / name).is_file()
