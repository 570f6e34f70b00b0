"""`secretsight release`: the pack is reproducible, complete, and its manifest is right."""

from __future__ import annotations

import hashlib
import shutil
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from secretsight import release
from secretsight.cli import cli
from secretsight.errors import SecretSightError

REPO = release.REPO
VERSION = "0.1.0"


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a release reads, copied out of the repo so tests may change it freely."""
    root = tmp_path_factory.mktemp("repo")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules")
    for rel in ("sigma", "vector", "fluentbit", "config", "deploy", "docs"):
        if (REPO / rel).is_dir():
            shutil.copytree(REPO / rel, root / rel, ignore=ignore)
    shutil.copy(REPO / "CHANGELOG.md", root / "CHANGELOG.md")
    return root


@pytest.fixture(scope="module")
def coverage_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for the report tests/harness writes to build/coverage (this module must not
    depend on the harness having run first)."""
    d = tmp_path_factory.mktemp("coverage")
    (d / "coverage.md").write_text("# SecretSight coverage\n| rule | loki |\n")
    (d / "coverage.html").write_text("<html><body><table></table></body></html>\n")
    return d


@pytest.fixture(scope="module")
def built(repo_copy: Path, coverage_dir: Path,
          tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("out")
    first = release.build_release(VERSION, out / "a", root=repo_copy, update_lock=True,
                                  coverage_dir=coverage_dir)
    second = release.build_release(VERSION, out / "b", root=repo_copy, coverage_dir=coverage_dir)
    return first, second


def test_coverage_report_is_shipped(built: tuple[Path, Path], coverage_dir: Path) -> None:
    for name in release.COVERAGE_FILES:
        shipped = read(built[0], f"secretsight-{VERSION}/coverage/{name}")
        assert shipped == (coverage_dir / name).read_bytes()


def test_missing_coverage_report_refuses_release(repo_copy: Path, tmp_path: Path) -> None:
    with pytest.raises(SecretSightError, match="no coverage report yet") as exc:
        release.build_release(VERSION, tmp_path / "out", root=repo_copy,
                              coverage_dir=tmp_path / "nowhere")
    # says how to get one, and names the path once (as the error's file)
    assert "bash scripts/test.sh tests/harness" in str(exc.value)
    assert str(exc.value).count("nowhere") == 1


def test_partial_coverage_report_refuses_release(repo_copy: Path, tmp_path: Path) -> None:
    for name in release.COVERAGE_FILES:
        (tmp_path / name).write_text("PARTIAL RUN: 3 of 126 scenario x normalizer cases.\n")
    with pytest.raises(SecretSightError, match="partial test run"):
        release.build_release(VERSION, tmp_path / "out", root=repo_copy, coverage_dir=tmp_path)


def members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return {m.name: m for m in tar.getmembers()}


def read(path: Path, name: str) -> bytes:
    with tarfile.open(path) as tar:
        member = tar.extractfile(name)
        assert member is not None
        return member.read()


def test_rebuild_is_byte_identical(built: tuple[Path, Path]) -> None:
    first, second = built
    assert first.name == f"secretsight-{VERSION}.tar.gz"
    assert first.read_bytes() == second.read_bytes()


def test_members_sorted_with_fixed_metadata(built: tuple[Path, Path]) -> None:
    with tarfile.open(built[0]) as tar:
        infos = tar.getmembers()
    names = [m.name for m in infos]
    assert names == sorted(names)
    assert all(n.startswith(f"secretsight-{VERSION}/") for n in names)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in infos} == {
        (release.FIXED_MTIME, 0, 0, "", "")}
    raw = built[0].read_bytes()
    assert raw[4:8] == b"\0\0\0\0"  # gzip header mtime


@pytest.mark.parametrize("expected", [
    "sigma/rules/cross/bulk_read.yml",
    "sigma/rules.lock",
    "sigma/pipelines/loki.yml",
    "compiled/loki/secretsight-rules.yaml",
    "compiled/elastic/secretsight-rules.ndjson",
    "compiled/splunk/secretsight/default/savedsearches.conf",
    "compiled/splunk/secretsight.tgz",
    "compiled/elastic/templates/component-secretsight-mappings.json",
    "compiled/elastic/templates/index-secretsight-data-streams.json",
    "compiled/support-matrix.md",
    "compiled/support-matrix.json",
    "compiled/alerting/alertmanager/alertmanager.yml",
    "compiled/alerting/prometheus/secretsight-rules.yaml",
    "compiled/alerting/grafana/secretsight-dashboard.json",
    "deploy/kubernetes/audit-policy.yaml",
    "docs/runbooks/bulk_read.md",
    "docs/runbooks/contain-credential.md",
    "docs/deployment.md",
    "vector",
    "fluentbit",
    "CHANGELOG.md",
    "RELEASE-NOTES.md",
    "MANIFEST.sha256",
])
def test_pack_contains(built: tuple[Path, Path], expected: str) -> None:
    prefix = f"secretsight-{VERSION}/{expected}"
    assert any(n == prefix or n.startswith(prefix + "/") for n in members(built[0]))


def test_pack_ships_the_rule_tree_as_sigma_cli_reads_it(built: tuple[Path, Path]) -> None:
    """Users run `sigma convert ... sigma/rules` on the unpacked tree: every .yml in it is a
    rule file, all of them shipped, and no test fixture (tests/rules/cases) comes along."""
    prefix = f"secretsight-{VERSION}/"
    shipped = sorted(n[len(prefix):] for n in members(built[0])
                     if n.startswith(prefix + "sigma/rules/") and n.endswith(".yml"))
    rules = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "sigma" / "rules").rglob("*.yml"))
    assert shipped == rules
    assert not [n for n in members(built[0]) if "/tests/" in n or n.endswith(".cases.yml")]


def test_manifest_covers_every_file_with_its_hash(built: tuple[Path, Path]) -> None:
    prefix = f"secretsight-{VERSION}/"
    manifest = read(built[0], prefix + "MANIFEST.sha256").decode()
    listed = {}
    for line in manifest.splitlines():
        digest, rel = line.split("  ", 1)
        listed[rel] = digest
    files = {n[len(prefix):] for n in members(built[0])} - {"MANIFEST.sha256"}
    assert set(listed) == files
    for rel, digest in sorted(listed.items()):
        assert hashlib.sha256(read(built[0], prefix + rel)).hexdigest() == digest, rel


def test_release_notes_are_the_version_entry(built: tuple[Path, Path]) -> None:
    notes = read(built[0], f"secretsight-{VERSION}/RELEASE-NOTES.md").decode()
    assert notes.startswith(f"## [{VERSION}]")
    assert "## [" not in notes[3:]


def test_missing_changelog_entry_fails_clearly(repo_copy: Path, tmp_path: Path) -> None:
    with pytest.raises(SecretSightError) as exc:
        release.build_release("9.9.9", tmp_path, root=repo_copy, update_lock=True)
    assert "no changelog entry for version 9.9.9" in str(exc.value)
    assert str(exc.value).startswith(str(repo_copy / "CHANGELOG.md"))
    assert not list(tmp_path.iterdir())


def test_stale_lock_refuses_release(repo_copy: Path, tmp_path: Path) -> None:
    lock = repo_copy / "sigma" / "rules.lock"
    saved = lock.read_text()
    lock.write_text(saved.replace("version: 0.1.0", "version: 0.0.9"))
    try:
        with pytest.raises(SecretSightError, match="--update-lock"):
            release.build_release(VERSION, tmp_path, root=repo_copy)
    finally:
        lock.write_text(saved)


def test_changelog_entry_parsing(tmp_path: Path) -> None:
    path = tmp_path / "CHANGELOG.md"
    path.write_text("# Changelog\n\n## [1.1.0] - 2026-12-01\n- new\n\n## 1.0.0\n- first\n")
    assert release.changelog_entry("1.1.0", path) == "## [1.1.0] - 2026-12-01\n- new\n"
    assert release.changelog_entry("1.0.0", path) == "## 1.0.0\n- first\n"
    with pytest.raises(SecretSightError):
        release.changelog_entry("1.0", path)


def test_cli_release_missing_entry_fails(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["release", "--version", "9.9.9", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "error: " in result.output and "no changelog entry for version 9.9.9" in result.output
