"""The sigma-cli / pySigma plugin (tools/sigma/pipelines/secretsight): pySigma's plugin
autodiscovery finds it, and `sigma convert` uses it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from secretsight.rules import RULES_DIR, rule_files

TOOLS = Path(__file__).resolve().parents[2] / "tools"


def test_namespace_packages_stay_namespaces() -> None:
    # An __init__.py here would shadow pySigma's own sigma / sigma.pipelines packages.
    assert not (TOOLS / "sigma" / "__init__.py").exists()
    assert not (TOOLS / "sigma" / "pipelines" / "__init__.py").exists()


def test_autodiscovery_finds_pipelines() -> None:
    from sigma.plugins import InstalledSigmaPlugins

    plugins = InstalledSigmaPlugins.autodiscover()
    for name in ("secretsight", "secretsight_loki", "secretsight_elastic", "secretsight_splunk"):
        assert name in plugins.pipelines
    pipeline = plugins.pipelines["secretsight"]()
    assert pipeline.priority == 10 and "internal_networks" in pipeline.vars


def test_placeholder_pipeline_reads_secretsight_config(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from sigma.pipelines.secretsight import pipelines

    config = tmp_path / "c.yml"
    config.write_text("internal_networks: [10.1.0.0/16]\n")
    monkeypatch.setenv("SECRETSIGHT_CONFIG", str(config))
    assert pipelines["secretsight"]().vars["internal_networks"] == ["10.1.0.0/16"]


# sigma-cli limits: it reads the `*.cases.yml` fixtures beside the rules as rules, and pySigma
# 1.5.1 may convert a correlation of correlations (path_diversity) before the correlations it
# references ("Conversion result not available"); `secretsight compile` orders them itself.
SIGMA_CLI_RULES = {"bulk_read", "secret_reads"}


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """The repo's Vault rules plus bulk_read and its building block, linked, not copied."""
    root = tmp_path / "rules"
    for path in rule_files():
        if path.parent.name != "vault" and path.stem not in SIGMA_CLI_RULES:
            continue
        link = root / path.relative_to(RULES_DIR)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)
    return root


def sigma_convert(*args: str) -> tuple[int, str]:
    from sigma.cli.convert import convert  # the click command behind `sigma convert`

    result = CliRunner().invoke(convert, list(args))
    return result.exit_code, result.output


def test_sigma_convert_loki(rules_dir: Path) -> None:
    # No CloudTrail rules: the plain Loki backend refuses their boolean values (secretsight
    # compile's backend subclass handles them) and sigma-cli stops on those.
    code, output = sigma_convert("-t", "loki", "-p", "secretsight", "-p", "secretsight_loki",
                                 str(rules_dir))
    assert code == 0, output
    assert "| json |" in output and "logfmt" not in output
    assert 'sum by (user_id) (count_over_time({dataset=~' in output  # bulk_read


def test_sigma_convert_with_placeholders_only(rules_dir: Path) -> None:
    code, output = sigma_convert("-t", "loki", "-p", "secretsight", str(rules_dir / "vault"))
    assert code == 0, output
    assert "%" not in output  # every placeholder filled


def test_sigma_convert_splunk(rules_dir: Path) -> None:
    code, output = sigma_convert("-t", "splunk", "-p", "secretsight", "-p", "secretsight_splunk",
                                 str(rules_dir / "vault"))
    assert code == 0, output
    assert 'index="secretsight"' in output
