"""User configuration loading and the finding model."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from secretsight.config import Config, format_duration, load_config, parse_duration
from secretsight.errors import SecretSightError
from secretsight.findings import Finding


@pytest.mark.parametrize(
    ("text", "seconds"), [("60s", 60), ("5m", 300), ("24h", 86400), ("14d", 1209600), (90, 90)]
)
def test_parse_duration(text: object, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("seconds,text", [(300, "5m"), (3600, "1h"), (90, "90s"), (86400, "1d")])
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text


def test_defaults_match_the_design_numbers() -> None:
    c = Config()
    assert c.thresholds.bulk_read.count == 50
    assert c.thresholds.bulk_read.window == timedelta(minutes=5)
    assert c.thresholds.path_diversity.distinct_paths == 10
    assert c.thresholds.path_diversity.reads == 30
    assert c.thresholds.denied_burst.count == 10
    assert c.stateful.rotation_read_window == timedelta(minutes=30)
    assert c.stateful.audit_gap_max_silence == timedelta(seconds=60)
    assert "10.0.0.0/8" in c.internal_networks


def test_config_file_overrides_and_parses_durations(tmp_path: Path) -> None:
    f = tmp_path / "c.yml"
    f.write_text("thresholds:\n  bulk_read: {count: 80, window: 10m}\ndecoy_paths: [secret/honey/*]\n")
    c = load_config(f)
    assert c.thresholds.bulk_read.count == 80
    assert c.thresholds.bulk_read.window == timedelta(minutes=10)
    assert c.decoy_paths == ["secret/honey/*"]
    assert c.thresholds.denied_burst.count == 10  # untouched defaults survive


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("thresholds:\n  bulk_raed: {count: 1, window: 1m}\n", "thresholds.bulk_raed"),
        ("internal_networks: [10.0.0.0/33]\n", "internal_networks"),
        ("stateful:\n  dormant_after: soon\n", "not a duration"),
        ("- a list\n", "mapping at the top level"),
        ("a: [unclosed\n", "not valid YAML"),
    ],
    ids=["unknown-key", "bad-cidr", "bad-duration", "not-mapping", "bad-yaml"],
)
def test_config_errors_name_the_file_and_the_problem(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.yml"
    f.write_text(text)
    with pytest.raises(SecretSightError) as exc:
        load_config(f)
    assert message in str(exc.value)
    assert str(f) in str(exc.value)


def test_finding_rejects_unknown_vocabulary() -> None:
    with pytest.raises(ValueError):
        Finding("exfil", "r", "t", "high", "u", "a", "b")
    with pytest.raises(ValueError):
        Finding("bulk_read", "r", "t", "urgent", "u", "a", "b")


def test_finding_json_shape() -> None:
    f = Finding("bulk_read", "id-1", "Bulk read", "high", "tok", "s", "e", rule_name="vault_bulk_read",
                evidence={"count": 51})
    out = f.to_json()
    assert out["user"] == {"id": "tok"}
    assert out["window"] == {"start": "s", "end": "e"}
    assert {"anomaly", "rule", "severity", "evidence"} <= set(out)

