"""The scenario generator: deterministic, native formats, every scenario labelled, and the
committed examples/ equal to what `secretsight generate demo` writes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from secretsight.cli import cli
from secretsight.scenarios import SCENARIOS, generate
from secretsight.scenarios.world import hmac_value

REPO = Path(__file__).resolve().parents[2]
EXPECT_DIR = REPO / "tests" / "scenarios"


def test_every_scenario_has_exactly_one_expectation_file() -> None:
    files = {p.name[: -len(".expect.yml")] for p in EXPECT_DIR.glob("*.expect.yml")}
    assert files == set(SCENARIOS)


@pytest.mark.parametrize("name", ["vault_rotation_without_deploy", "cross_store_harvest"])
def test_generation_is_deterministic(name: str, tmp_path: Path) -> None:
    a = generate(name, tmp_path / "a")
    b = generate(name, tmp_path / "b")
    assert [p.read_bytes() for p in a.files] == [p.read_bytes() for p in b.files]
    c = generate(name, tmp_path / "c", seed=99)
    assert [p.read_bytes() for p in c.files] != [p.read_bytes() for p in a.files]


def test_examples_are_the_generated_demo(tmp_path: Path) -> None:
    fresh = generate("demo", tmp_path)
    for path in fresh.files:
        committed = REPO / "examples" / path.name
        assert committed.is_file(), f"examples/{path.name} missing: secretsight generate demo --out examples"
        assert committed.read_bytes() == path.read_bytes(), (
            f"examples/{path.name} is stale: secretsight generate demo --out examples")
    assert sum(p.stat().st_size for p in fresh.files) < 500_000


@pytest.fixture(scope="module")
def rotation(tmp_path_factory: pytest.TempPathFactory):
    return generate("vault_rotation_without_deploy", tmp_path_factory.mktemp("rot"))


def test_vault_entries_come_in_request_response_pairs_with_hmac_values(rotation) -> None:
    log = next(p for p in rotation.files if p.name == "vault-audit.log")
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    kinds = Counter((e["request"]["id"], e["type"]) for e in entries)
    assert {t for _, t in kinds} == {"request", "response"}
    assert all(n == 1 for n in kinds.values())
    raw = log.read_text()
    assert "sk_live_x" not in raw and hmac_value("sk_live_x") in raw  # values never in clear
    assert all(e["auth"]["client_token"].startswith("hmac-sha256:") for e in entries)
    assert any(e["request"]["path"].startswith("secret/data/") for e in entries)


def test_kubernetes_requests_have_several_stages(rotation) -> None:
    log = next(p for p in rotation.files if p.name == "kube-audit.log")
    stages: dict[str, list[str]] = {}
    for line in log.read_text().splitlines():
        e = json.loads(line)
        stages.setdefault(e["auditID"], []).append(e["stage"])
    assert all(s[0] == "RequestReceived" and s[-1] == "ResponseComplete" for s in stages.values())


def test_cloudtrail_in_s3_batches_and_single_lines(tmp_path: Path) -> None:
    g = generate("aws_secret_sweep", tmp_path)
    names = {p.name for p in g.files}
    assert names == {"cloudtrail-s3.json", "cloudtrail-cwl.ndjson"}
    s3 = [json.loads(line) for line in (tmp_path / "cloudtrail-s3.json").read_text().splitlines()]
    assert all(set(doc) == {"Records"} and doc["Records"] for doc in s3)
    single = [json.loads(line) for line in (tmp_path / "cloudtrail-cwl.ndjson").read_text().splitlines()]
    assert all("eventID" in e for e in single)
    assert sum(len(d["Records"]) for d in s3) + len(single) == 49


def test_generate_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(cli, ["generate", "--list"])
    assert listed.exit_code == 0 and "vault_harvest" in listed.output
    made = runner.invoke(cli, ["generate", "vault_decoy_access", "--out", str(tmp_path)])
    assert made.exit_code == 0, made.output
    assert (tmp_path / "vault-audit.log").is_file() and (tmp_path / "config.yml").is_file()
    bad = runner.invoke(cli, ["generate", "no_such_scenario", "--out", str(tmp_path)])
    assert bad.exit_code == 2


def test_churn_expects_exactly_the_findings_without_churn() -> None:
    """Issue 14: renewing credentials must not change the long-memory findings."""
    from support.expectations import load_expectation

    churn = load_expectation("identity_churn").findings
    assert churn and churn == load_expectation("identity_no_churn").findings


def test_churn_scenario_really_renews_credentials(tmp_path: Path) -> None:
    """Not vacuous: with churn every principal acts through many credentials, without it one."""
    from secretsight.normalize import iter_files

    def credentials(name: str) -> dict[str, set[str]]:
        per_principal: dict[str, set[str]] = {}
        for event in iter_files(generate(name, tmp_path / name).files):
            user, credential = event.get("user", {}), event.get("credential", {})
            if "id" in user and "id" in credential:
                per_principal.setdefault(user["id"], set()).add(credential["id"])
        return per_principal

    churn, steady = credentials("identity_churn"), credentials("identity_no_churn")
    assert set(churn) == set(steady) and len(churn) == 4
    assert all(len(ids) == 1 for ids in steady.values())
    assert all(len(ids) >= 10 for ids in churn.values()), {k: len(v) for k, v in churn.items()}
