"""`secretsight compile`: Sigma rules -> Loki / Elastic / Splunk outputs, the alerting pieces, and a
support matrix."""

from __future__ import annotations

from pathlib import Path

import click

from secretsight.compile import TARGETS

_EPILOG = """
Outputs land under OUT/<target>/ (Loki: queries + ruler file; Elastic: Kibana NDJSON for the
detection engine import API + index templates; Splunk: an app; alerting: Alertmanager config,
Prometheus rules for `watch` /metrics, Grafana dashboard), with support-matrix.md and .json in
OUT. Errors in rules are collected and reported together (file:line); exit status 2 when there
are any, unless --pass-on-error.
"""


@click.command(epilog=_EPILOG)
@click.option("--target", "-t", "targets", multiple=True, required=True,
              type=click.Choice([*TARGETS, "all"]), help="Target to compile for (repeatable).")
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="SecretSight config (thresholds, lists); defaults apply without it.")
@click.option("--out", "-o", "out_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path), help="Output directory.")
@click.option("--fail-on-error/--pass-on-error", default=True, show_default=True,
              help="Exit 2 when a rule has an error (CI) or report and exit 0.")
@click.option("--quiet", "-q", is_flag=True, help="Print the matrix summary, not the table.")
@click.argument("rules", nargs=-1, type=click.Path(exists=True, path_type=Path))
def command(targets: tuple[str, ...], config_path: Path | None, out_dir: Path,
            fail_on_error: bool, quiet: bool, rules: tuple[Path, ...]) -> int:
    """Compile Sigma RULES (files or directories; default: the repo's sigma/rules)."""
    from secretsight.compile import compile_targets, matrix, write_output
    from secretsight.config import load_config

    config = load_config(config_path)
    chosen = list(TARGETS) if "all" in targets else list(targets)
    output = compile_targets(chosen, config=config, paths=list(rules) or None)
    written = write_output(output, out_dir)
    if not quiet:
        click.echo(matrix.to_markdown(output.support), nl=False)
    click.echo(matrix.summary(output.support))
    click.echo(f"wrote {len(written)} files to {out_dir}")
    if output.errors:
        click.echo(f"{len(output.errors)} error(s):", err=True)
        for err in output.errors:
            click.echo(f"  {err}", err=True)
        if fail_on_error:
            return 2
    return 0
