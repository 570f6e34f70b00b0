"""`secretsight scan`: normalize audit logs, run every Sigma rule on the embedded engine and the
stateful detectors, print the findings.

Exit status: 0 no findings, 1 findings, 2 usage or input error (unreadable file, bad config,
bad store URL). Bad lines are not input errors: they are dead-lettered with file:line, counted
in the summary, and the scan goes on.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from secretsight.errors import SecretSightError
from secretsight.findings import SEVERITIES, Finding

PROGRESS_MIN_BYTES = 50 * 1024 * 1024  # show a progress bar from this much input (TTY only)
_SUFFIXES = (".log", ".json", ".ndjson", ".jsonl", ".gz", ".txt")


def expand_inputs(inputs: tuple[str, ...]) -> list[str]:
    """Files as given; directories expanded to their log files (recursive, sorted; a scenario's
    `config.yml` and dot-files are not logs)."""
    out: list[str] = []
    for item in inputs:
        if item == "-":
            out.append(item)
            continue
        path = Path(item)
        if path.is_dir():
            found = sorted(
                str(p) for p in path.rglob("*")
                if p.is_file() and p.name.endswith(_SUFFIXES) and not p.name.startswith(".")
                and p.name != "config.yml"
            )
            if not found:
                raise SecretSightError("no log files in directory", file=item)
            out.extend(found)
        elif path.exists():
            out.append(item)
        else:
            raise SecretSightError("no such file", file=item)
    return out


def _estimate_lines(path: str) -> int:
    """Lines in a file, estimated from the size and the first 256 KiB (gzip: x8 ratio)."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(262144)
    if head[:2] == b"\x1f\x8b":
        return max(1, size * 8 // 800)
    lines = head.count(b"\n") or 1
    return max(1, size * lines // max(1, len(head)))


def _progress_events(events: Iterator[dict[str, Any]], files: list[str],
                     stats: Any) -> Iterator[dict[str, Any]]:
    """Wrap the event stream in a progress bar (lines read / estimated lines) on stderr, only
    when stderr is a terminal and the input is large."""
    sizes = [os.path.getsize(f) for f in files if f != "-"]
    if not sys.stderr.isatty() or sum(sizes) < PROGRESS_MIN_BYTES:
        yield from events
        return
    total = sum(_estimate_lines(f) for f in files if f != "-")
    with click.progressbar(length=total, label="scanning", file=sys.stderr) as bar:
        shown = 0
        for n, event in enumerate(events):
            if n % 2000 == 0 and stats.lines > shown:
                bar.update(min(stats.lines, total) - shown)
                shown = min(stats.lines, total)
            yield event
        bar.update(total - shown)


def _short(ts: str) -> str:
    return ts.replace("T", " ").rstrip("Z").split(".")[0] if ts else "?"


def _window(f: Finding) -> str:
    start, end = _short(f.start), _short(f.end)
    if start == end:
        return start
    if start[:10] == end[:10]:
        return f"{start} -> {end[11:]}"
    return f"{start} -> {end}"


def _evidence_line(f: Finding) -> str:
    ev = f.evidence or {}
    parts = []
    if "events" in ev:
        parts.append(f"{ev['events']} events")
    if ev.get("distinct_paths"):
        sample = ", ".join(ev.get("paths", [])[:3])
        more = "" if ev["distinct_paths"] <= 3 else ", ..."
        parts.append(f"{ev['distinct_paths']} paths ({sample}{more})")
    if ev.get("source_ips"):
        parts.append("IPs " + ", ".join(ev["source_ips"][:4]))
    if not parts:  # detector evidence: show its scalar facts
        for key, value in ev.items():
            if isinstance(value, (str, int, float)) and len(parts) < 4:
                parts.append(f"{key}={value}")
            elif isinstance(value, list) and value and len(parts) < 4:
                parts.append(f"{key}={', '.join(map(str, value[:3]))}")
    return "; ".join(parts)


def format_table(findings: list[Finding]) -> str:
    rows = [("SEVERITY", "ANOMALY", "RULE", "IDENTITY", "WINDOW (UTC)")]
    for f in findings:
        rows.append((f.severity, f.anomaly, f.rule_name or f.rule, f.user_id or "-", _window(f)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    out = []
    for i, row in enumerate(rows):
        out.append("  ".join(c.ljust(widths[j]) for j, c in enumerate(row[:4])) + "  " + row[4])
        if i == 0:
            continue
        f = findings[i - 1]
        pad = " " * (widths[0] + 2)
        out.append(f"{pad}{f.title} [{f.rule}]")
        line = _evidence_line(f)
        if line:
            out.append(f"{pad}{line}")
    return "\n".join(out)


def summary_line(events: int, duplicates: int, findings: list[Finding], dead: int,
                 skipped: int) -> str:
    counts = Counter(f.severity for f in findings)
    by_sev = ", ".join(f"{s} {counts[s]}" for s in reversed(SEVERITIES) if counts[s])
    return (
        f"{events} events ({duplicates} duplicates, {skipped} skipped), "
        f"{len(findings)} findings" + (f" ({by_sev})" if by_sev else "")
        + f", {dead} dead letters"
    )


class _InputError(click.ClickException):
    """Unreadable input, bad config or store URL: exit 2 (also under CliRunner)."""

    exit_code = 2


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
@click.option("--timings", is_flag=True, hidden=True,
              help="Print the time of each phase and rule on stderr (profiling).")
@click.pass_context
def command(ctx: click.Context, inputs: tuple[str, ...], source: str, config_path: str | None,
            fmt: str, store_url: str | None, rule_paths: tuple[str, ...], timings: bool) -> None:
    """Normalize FILE... (files, directories, gzip, `-` for stdin), evaluate every rule and the
    stateful detectors, and print the findings. Exit 0: none, 1: findings, 2: error."""
    try:
        findings, stats, replayed = _scan(inputs, source, config_path, store_url, rule_paths)
    except SecretSightError as exc:
        raise _InputError(str(exc)) from exc
    if timings:
        for phase, seconds in sorted(replayed.timings.items(), key=lambda kv: -kv[1]):
            click.echo(f"timing {phase}: {seconds:.3f}s", err=True)
    if fmt == "json":
        for f in findings:
            click.echo(json.dumps(f.to_json(), sort_keys=True))
    else:
        if findings:
            click.echo(format_table(findings))
            click.echo("")
        click.echo(summary_line(replayed.events, stats.duplicates + replayed.duplicates,
                                findings, stats.dead_lettered_total, stats.skipped_total))
    ctx.exit(1 if findings else 0)


def _scan(inputs: tuple[str, ...], source: str, config_path: str | None, store_url: str | None,
          rule_paths: tuple[str, ...]) -> tuple[list[Finding], Any, Any]:
    from secretsight.config import load_config
    from secretsight.engine.replay import replay
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
    events = iter_files(files, source, stats, dead_letter_sink=dead_letter, dedupe=True)
    large = sum(os.path.getsize(f) for f in files if f != "-") > PROGRESS_MIN_BYTES
    result = replay(_progress_events(events, files, stats), config, ruleset, store_url=store_url,
                    on_disk=large)
    for err in result.errors:
        click.echo(f"warning: {err}", err=True)
    if result.rejected:
        click.echo(f"warning: detectors refused events: {result.rejected}", err=True)
    return result.incidents, stats, result  # one report per incident (secretsight.incidents)
