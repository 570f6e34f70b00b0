"""The log files a batch run reads: files as given, directories expanded to their log files,
and a progress bar over a large input (what `secretsight scan` shows on a terminal)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from secretsight.errors import SecretSightError

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


def estimate_lines(path: str) -> int:
    """Lines in a file, estimated from the size and the first 256 KiB (gzip: x8 ratio)."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(262144)
    if head[:2] == b"\x1f\x8b":
        return max(1, size * 8 // 800)
    lines = head.count(b"\n") or 1
    return max(1, size * lines // max(1, len(head)))


def with_progress(events: Iterator[dict[str, Any]], files: list[str],
                     stats: Any) -> Iterator[dict[str, Any]]:
    """Wrap the event stream in a progress bar (lines read / estimated lines) on stderr, only
    when stderr is a terminal and the input is large."""
    if not sys.stderr.isatty() or total_bytes(files) < PROGRESS_MIN_BYTES:
        yield from events
        return
    total = sum(estimate_lines(f) for f in files if f != "-")
    with click.progressbar(length=total, label="scanning", file=sys.stderr) as bar:
        shown = 0
        for n, event in enumerate(events):
            if n % 2000 == 0 and stats.lines > shown:
                bar.update(min(stats.lines, total) - shown)
                shown = min(stats.lines, total)
            yield event
        bar.update(total - shown)


def total_bytes(files: list[str]) -> int:
    """Size of the named files (stdin, `-`, counts 0)."""
    return sum(os.path.getsize(f) for f in files if f != "-")
