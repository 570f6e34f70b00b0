"""`secretsight scan`: normalize audit logs, run every Sigma rule on the embedded engine and the
stateful detectors, print the findings.

Exit status: 0 no findings, 1 findings, 2 usage or input error (unreadable file, bad config,
bad store URL; a file that ends early, such as a truncated gzip, is reported after the findings
and summary of its readable prefix). Bad lines are not input errors: they are dead-lettered
with file:line, counted in the summary, and the scan goes on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import click

from secretsight.errors import SecretSightError
from secretsight.findings import Finding
from secretsight.findings_table import format_table, summary_line


@click.command(name="scan")
@click.argument("inputs", nargs=-1, required=True, metavar="FILE...")
@click.option("--source", type=click.Choice(["auto", "vault", "cloudtrail", "kubernetes"]),
              default="auto", show_default=True, help="Input source (auto-detected per line).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="SecretSight config YAML (thresholds, allowlists, ...).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="table: for people; json: one finding per line.")
@click.option("--store", "store_url", default=None,
              help="Detector state store: sqlite:///path.db or redis://host:port/db "
                   "(default: in memory, nothing kept between scans).")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True),
              help="Rule files or directories (default: the bundled sigma/rules).")
@click.option("--jobs", type=click.IntRange(1, 2), default=None,
              help="Processes: 2 runs the stateful detectors in a second process while "
                   "this one reads and normalizes the events (on inputs over 50 MB the "
                   "second process also inserts the table rows this one builds, and half of "
                   "the Sigma rules run in a forked process); same findings and counts, a "
                   "little more CPU in all, less wall time on two free cores. 1 runs "
                   "everything in one. Default: 2 on Linux when this process may use two or "
                   "more CPUs.")
@click.option("--timings", is_flag=True, hidden=True,
              help="Print the time of each phase and rule on stderr (profiling).")
@click.pass_context
def command(ctx: click.Context, inputs: tuple[str, ...], source: str, config_path: str | None,
            fmt: str, store_url: str | None, rule_paths: tuple[str, ...], jobs: int | None,
            timings: bool) -> None:
    """Normalize FILE... (files, directories, gzip, `-` for stdin), evaluate every rule and the
    stateful detectors, and print the findings. Exit 0: none, 1: findings, 2: error."""
    read_errors: list[SecretSightError] = []
    findings, stats, replayed = _scan(inputs, source, config_path, store_url, rule_paths,
                                      read_errors, default_jobs() if jobs is None else jobs)
    if timings:
        for phase, seconds in sorted(replayed.timings.items(), key=lambda kv: -kv[1]):
            click.echo(f"timing {phase}: {seconds:.3f}s", err=True)
    if fmt == "json":
        from secretsight.config import load_config

        alerting = load_config(config_path).alerting  # the runbook links' base URL
        for f in findings:
            click.echo(json.dumps(f.to_json(alerting), sort_keys=True))
    else:
        if findings:
            click.echo(format_table(findings))
            click.echo("")
        click.echo(summary_line(replayed.events, stats.duplicates + replayed.duplicates,
                                findings, stats.dead_lettered_total, stats.skipped_total))
    for err in read_errors:  # after the findings and summary of the readable prefix
        click.echo(f"error: {err}", err=True)
    ctx.exit(2 if read_errors else 1 if findings else 0)


def default_jobs() -> int:
    """2 when this process may run on two or more CPUs (its affinity, not the machine's), on
    Linux: elsewhere forking a process that has loaded system frameworks is not safe (macOS)."""
    import os
    import sys

    if not sys.platform.startswith("linux"):
        return 1
    return 2 if len(os.sched_getaffinity(0)) >= 2 and _can_fork() else 1


def _can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def _until_read_error(events: Iterator[Any], errors: list[SecretSightError]) -> Iterator[Any]:
    """The events up to a read error (a truncated gzip), which is kept to report after the
    findings of the readable prefix."""
    try:
        yield from events
    except SecretSightError as exc:
        errors.append(exc)


def _scan(inputs: tuple[str, ...], source: str, config_path: str | None, store_url: str | None,
          rule_paths: tuple[str, ...], read_errors: list[SecretSightError], jobs: int
          ) -> tuple[list[Finding], Any, Any]:
    from secretsight.config import load_config
    from secretsight.engine.replay import replay
    from secretsight.log_files import PROGRESS_MIN_BYTES, expand_inputs, total_bytes, with_progress
    from secretsight.normalize import Stats, iter_files
    from secretsight.rules import load_rules

    config = load_config(config_path)
    files = expand_inputs(inputs)
    if files.count("-") > 1:
        raise SecretSightError("`-` (stdin) can be given once")
    if store_url is not None and not store_url.startswith(("sqlite:", "redis:", "rediss:")):
        raise SecretSightError(f"--store: expected sqlite:///path or redis://host:port/db, "
                               f"got {store_url!r}")
    ruleset = load_rules(list(rule_paths) or None, config)
    for err in ruleset.errors:
        click.echo(f"warning: rule not loaded: {err}", err=True)

    def dead_letter(record: Any) -> None:
        click.echo(f"{record.file}:{record.line}: dead letter ({record.reason})", err=True)

    stats = Stats()
    events = _until_read_error(
        iter_files(files, source, stats, dead_letter_sink=dead_letter, dedupe=True, cells=True),
        read_errors)
    large = total_bytes(files) > PROGRESS_MIN_BYTES  # spill the events table to disk
    result = replay(with_progress(events, files, stats), config, ruleset, store_url=store_url,
                    on_disk=large, jobs=jobs if _can_fork() else 1)
    for err in result.errors:
        click.echo(f"warning: {err}", err=True)
    if result.rejected:
        click.echo(f"warning: detectors refused events: {result.rejected}", err=True)
    for name, dead in stats.files_without_events:  # issue 14: never a silent "0 findings"
        read_errors.append(SecretSightError(
            f"no event could be normalized ({dead} dead-lettered)", file=name))
    return result.incidents, stats, result  # one report per incident (secretsight.incidents)
