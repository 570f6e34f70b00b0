"""`secretsight release`: build the versioned content pack, or check/refresh the rule lock."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--version", "version", help="Release version (default: the package version).")
@click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Where to write the tarball (default: build/release).")
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="SecretSight config the compiled output is built with (default: defaults).")
@click.option("--coverage", "coverage_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="The replay harness's coverage report to ship "
              "(default: build/coverage, written by `bash scripts/test.sh tests/harness`).")
@click.option("--no-coverage", is_flag=True,
              help="Build without the coverage report (a pack that cannot show its evidence).")
@click.option("--update-lock", is_flag=True,
              help="Rewrite sigma/rules.lock for this version (after a version bump).")
@click.option("--check-lock", is_flag=True,
              help="Only check that no released rule changed without a version bump.")
def command(version: str | None, out_dir: Path | None, config_path: Path | None,
            coverage_dir: Path | None, no_coverage: bool, update_lock: bool,
            check_lock: bool) -> int:
    """Build secretsight-<version>.tar.gz: rules, pipelines, compiled outputs, normalizers,
    support matrix, changelog entry and a SHA-256 manifest; byte-identical on rebuild."""
    from secretsight import __version__, release

    version = version or __version__
    if check_lock:
        problems = release.check_lock(release.read_lock(), release.rule_hashes(), version)
        for problem in problems:
            click.echo(f"{release.LOCK}: {problem}", err=True)
        if problems:
            return 2
        click.echo(f"rule lock OK for {version}")
        return 0
    if no_coverage:
        click.echo("warning: building without the coverage report (--no-coverage)", err=True)
    path = release.build_release(
        version, out_dir or release.REPO / "build" / "release", update_lock=update_lock,
        config_path=config_path,
        coverage_dir=None if no_coverage else (coverage_dir or release.COVERAGE_DIR))
    digest = release.sha256(path.read_bytes())
    click.echo(f"{path}\nsha256 {digest}")
    return 0
