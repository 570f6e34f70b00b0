"""Streaming normalization of files: plain, gzipped or stdin (`-`); numbered lines; duplicates
removed; everything counted (`Stats`), dead letters handed to a sink with file and line."""

from __future__ import annotations

import gzip
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from secretsight.errors import SecretSightError
from secretsight.normalize.codes import MAX_LINE_BYTES
from secretsight.normalize.line import SOURCES, normalize_line

BOM = b"\xef\xbb\xbf"  # UTF-8 byte order mark
RAW_EXCERPT_BYTES = 4096  # dead letters carry at most this much of the raw line
SUMMARY_DEAD_LETTERS = 10  # dead letters Stats keeps by default (named in the summary)


@dataclass(frozen=True)
class DeadLetterRecord:
    file: str
    line: int
    reason: str
    raw: str  # the raw line, truncated to RAW_EXCERPT_BYTES, undecodable bytes escaped

    def to_json(self, *, include_raw: bool = False) -> dict[str, Any]:
        """The dead-letter file record. The raw excerpt is opt-in: a line that failed to parse
        can still hold secret values (a truncated Vault `log_raw` entry)."""
        out: dict[str, Any] = {"file": self.file, "line": self.line, "reason": self.reason}
        if include_raw:
            out["raw"] = self.raw
        return out


@dataclass
class Stats:
    """Counts of one run. Invariant: events_in == normalized + duplicates + skipped + dead."""

    files: int = 0
    lines: int = 0
    events_in: int = 0  # records seen: one per line, or one per element of a Records/Events batch
    normalized: int = 0
    duplicates: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    dead_lettered: Counter[str] = field(default_factory=Counter)
    # The first `dead_letter_limit` dead letters (None: all of them; the sink gets every one).
    dead_letters: list[DeadLetterRecord] = field(default_factory=list)
    dead_letter_limit: int | None = SUMMARY_DEAD_LETTERS
    # (file, dead letters) of each file that dead-lettered records and normalized none (e.g.
    # events without timestamps): `scan` reports them and exits 2. An empty file, or one of
    # skipped records only, is not listed.
    files_without_events: list[tuple[str, int]] = field(default_factory=list)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    @property
    def dead_lettered_total(self) -> int:
        return sum(self.dead_lettered.values())

    def balanced(self) -> bool:
        out = self.normalized + self.duplicates + self.skipped_total + self.dead_lettered_total
        return self.events_in == out

    def summary(self) -> str:
        lines = [
            (
                f"{self.events_in} events in ({self.lines} lines, {self.files} files): "
                f"{self.normalized} normalized, {self.duplicates} duplicates, "
                f"{self.skipped_total} skipped, {self.dead_lettered_total} dead-lettered"
            )
        ]
        if self.skipped:
            lines.append(
                "  skipped: " + ", ".join(f"{c}={n}" for c, n in sorted(self.skipped.items()))
            )
        if self.dead_lettered:
            lines.append(
                "  dead-lettered: "
                + ", ".join(f"{c}={n}" for c, n in sorted(self.dead_lettered.items()))
            )
            shown = self.dead_letters[:SUMMARY_DEAD_LETTERS]
            for dl in shown:
                lines.append(f"    {dl.file}:{dl.line}: {dl.reason}")
            more = self.dead_lettered_total - len(shown)
            if more > 0:
                lines.append(f"    ... and {more} more")
        return "\n".join(lines)


def _excerpt(raw: bytes) -> str:
    return raw[:RAW_EXCERPT_BYTES].decode("utf-8", errors="backslashreplace")


def _open(path: str) -> tuple[IO[bytes], IO[bytes]]:
    """(stream to read lines from, underlying stream to close); gzip detected by magic bytes."""
    raw: IO[bytes] = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    peek = getattr(raw, "peek", None)
    head = peek(2)[:2] if peek is not None else b""
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw  # type: ignore[return-value]
    return raw, raw


def iter_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes | None, bytes]]:
    """(line number, content without terminator or None when too long, excerpt source)."""
    limit = MAX_LINE_BYTES + 2
    readline = stream.readline
    number = 0
    while True:
        line = readline(limit)
        if not line:
            return
        number += 1
        if line[-1:] != b"\n" and len(line) >= limit:
            head = line[:RAW_EXCERPT_BYTES]
            while True:  # drain the rest of the oversized line without keeping it
                chunk = readline(limit)
                if not chunk or chunk[-1:] == b"\n":
                    break
            yield number, None, head
            continue
        if line[-1:] == b"\n":
            line = line[:-2] if line[-2:-1] == b"\r" else line[:-1]
        if number == 1 and line[:3] == BOM:  # editors and PowerShell write one: not data
            line = line[3:]
        yield number, line, line


def _guarded(
    lines: Iterator[tuple[int, bytes | None, bytes]], name: str, stats: Stats, stream: IO[bytes]
) -> Iterator[tuple[int, bytes | None, bytes]]:
    """A read error (corrupt or truncated gzip, I/O error) stops the run with file:line and
    the byte offset (decompressed, for gzip) where the readable prefix ends, after every
    complete line before it was normalized and counted. The caller prints the summary."""
    try:
        yield from lines
    except (OSError, EOFError) as exc:
        try:
            offset = f" (offset {stream.tell()})"
        except (OSError, ValueError, EOFError):
            offset = ""
        what = "truncated" if isinstance(exc, EOFError) else "read error"
        raise SecretSightError(
            f"{what} after line {stats.lines}{offset}: {exc}", file=name, line=stats.lines + 1
        ) from exc


def dedupe_key(event: dict[str, Any]) -> int:
    """What makes two normalized events the same audit record (the documented duplicates
    policy): Vault request.id + entry type, Kubernetes auditID + stage, CloudTrail eventID."""
    ds = event["event"]["dataset"]
    eid = event["event"]["id"]
    if ds == "vault.audit":
        return hash((ds, eid, (event.get("vault") or {}).get("entry_type")))
    if ds == "kubernetes.audit":
        return hash((ds, eid, (event.get("kubernetes") or {}).get("stage")))
    return hash((ds, eid))


def iter_files(
    paths: Iterable[str | Path],
    source: str = "auto",
    stats: Stats | None = None,
    *,
    dead_letter_sink: Callable[[DeadLetterRecord], None] | None = None,
    dedupe: bool = True,
) -> Iterator[dict[str, Any]]:
    """Yield the normalized events of `paths` (`-` is stdin; gzip is detected), in order,
    without duplicates (Vault request.id + entry type, CloudTrail eventID, Kubernetes
    auditID + stage). Counts go to `stats`; each dead letter to `dead_letter_sink`; a file
    that dead-lettered records and normalized none to `stats.files_without_events`."""
    if source != "auto" and source not in SOURCES:
        raise ValueError(f"unknown source {source!r} (expected auto, {', '.join(SOURCES)})")
    stats = stats if stats is not None else Stats()
    seen: set[int] = set()
    skipped = stats.skipped
    dead = stats.dead_lettered
    for path in paths:
        name = str(path)
        stats.files += 1
        try:
            stream, underlying = _open(name)
        except OSError as exc:
            raise SecretSightError(f"cannot read: {exc.strerror or exc}", file=name) from exc
        normalized_before = stats.normalized + stats.duplicates
        dead_before = stats.dead_lettered_total
        try:
            for number, content, excerpt_src in _guarded(iter_lines(stream), name, stats, stream):
                stats.lines += 1
                items: list[dict[str, Any]] = (
                    normalize_line(content, source)
                    if content is not None
                    else [{"dead_letter": "line_too_long"}]
                )
                stats.events_in += len(items)
                for item in items:
                    event = item.get("event")
                    if event is not None:
                        if dedupe:
                            key = dedupe_key(event)
                            if key in seen:
                                stats.duplicates += 1
                                continue
                            seen.add(key)
                        stats.normalized += 1
                        yield event
                    elif "skip" in item:
                        skipped[item["skip"]] += 1
                    else:
                        reason = item["dead_letter"]
                        dead[reason] += 1
                        limit = stats.dead_letter_limit
                        keep = limit is None or len(stats.dead_letters) < limit
                        if keep or dead_letter_sink is not None:
                            record = DeadLetterRecord(name, number, reason, _excerpt(excerpt_src))
                            if keep:
                                stats.dead_letters.append(record)
                            if dead_letter_sink is not None:
                                dead_letter_sink(record)
        finally:
            if stream is not underlying:
                stream.close()
            if underlying is not sys.stdin.buffer:
                underlying.close()
        if (
            stats.normalized + stats.duplicates == normalized_before
            and stats.dead_lettered_total > dead_before
        ):
            stats.files_without_events.append((name, stats.dead_lettered_total - dead_before))
