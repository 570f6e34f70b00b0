"""Streaming normalization of files: plain, gzipped or stdin (`-`); numbered lines; duplicates
removed; everything counted (`Stats`), dead letters handed to a sink with file and line."""

from __future__ import annotations

import gzip
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import IO, Any, NamedTuple

from secretsight.errors import SecretSightError
from secretsight.normalize.codes import MAX_LINE_BYTES, DeadLetter
from secretsight.normalize.line import (
    SOURCES,
    detect_source,
    fast_loads,
    line_items,
    object_items,
    strict_loads,
)
from secretsight.normalize.vault import vault_cells, vault_record

BOM = b"\xef\xbb\xbf"  # UTF-8 byte order mark
RAW_EXCERPT_BYTES = 4096  # dead letters carry at most this much of the raw line
SUMMARY_DEAD_LETTERS = 10  # dead letters Stats keeps by default (named in the summary)
READ_BYTES = 1 << 20  # one read of a file; its lines are split in C


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


class TooLong(NamedTuple):
    """A line longer than MAX_LINE_BYTES, skipped over: only its first bytes were kept."""

    excerpt: bytes


def line_content(line: bytes) -> bytes:
    """A line without its terminator (`\n` or `\r\n`; the last line of a file may have none)."""
    if line[-1:] == b"\n":
        return line[:-2] if line[-2:-1] == b"\r" else line[:-1]
    return line


def iter_line_batches(stream: IO[bytes], name: str = "-") -> Iterator[list[bytes] | TooLong]:
    """The lines of `stream` in order, as lists of lines as read (terminator included: JSON
    allows the trailing whitespace, and `line_content` strips it where the content matters;
    the first line without a UTF-8 BOM), or a `TooLong` for a line whose content is longer
    than MAX_LINE_BYTES. Lines are cut from 1 MiB reads in C (a memchr scan, not a Python call
    per line); a line that spans reads is joined, and one over the limit is skipped over to its
    end while only its excerpt is kept, so no more than the limit plus one read is held.

    A read error (corrupt or truncated gzip, I/O error) raises SecretSightError with the
    file's line after the last one yielded and the byte offset (decompressed, for gzip) where
    the readable prefix ends; the caller has handled every line yielded before it."""
    limit = MAX_LINE_BYTES
    cap = min(RAW_EXCERPT_BYTES, limit + 2)
    read = getattr(stream, "read1", None) or stream.read
    parts: list[bytes] = []  # the start of a line whose end is in a later read
    held = 0
    skipping: bytes | None = None  # the excerpt of an over-long line whose end is not read yet
    first = True
    yielded = 0  # lines of this file yielded: where a read error stops
    while True:
        try:
            data = read(READ_BYTES)
        except (OSError, EOFError) as exc:
            raise _read_error(exc, name, yielded, stream) from exc
        if first:
            # A UTF-8 BOM (editors and PowerShell write one) is not data: taken off the
            # stream's first bytes, even when the reads that carry it are tiny (pipes).
            while 0 < len(data) < 3 and BOM.startswith(data):
                try:
                    more = read(READ_BYTES)
                except (OSError, EOFError) as exc:
                    raise _read_error(exc, name, yielded, stream) from exc
                if not more:
                    break
                data += more
            if data[:3] == BOM:
                data = data[3:]
                if not data:
                    continue
            first = False
        if not data:
            break
        if skipping is not None or parts:
            end = data.find(b"\n")
            if end < 0:
                if skipping is None:
                    parts.append(data)
                    held += len(data)
                    if held > limit + 1:  # longer than the limit whatever its terminator
                        skipping = b"".join(parts)[:cap]
                        parts, held = [], 0
                continue
            if skipping is not None:
                yielded += 1
                yield TooLong(skipping)
                skipping = None
            else:
                parts.append(data[: end + 1])
                line = b"".join(parts)
                parts, held = [], 0
                content = line_content(line)
                yielded += 1
                yield [line] if len(content) <= limit else TooLong(content[:cap])
            if end + 1 == len(data):
                continue
            buffer = BytesIO(data)
            buffer.seek(end + 1)  # the rest of the read, not copied
        else:
            buffer = BytesIO(data)
        lines = buffer.readlines()
        if lines[-1][-1:] != b"\n":  # the last line ends in a later read
            last = lines.pop()
            if len(last) > limit + 1:
                skipping = last[:cap]
            else:
                parts, held = [last], len(last)
            if not lines:
                continue
        yielded += len(lines)
        if len(data) <= limit:  # no line of this read can be over the limit
            yield lines
            continue
        batch: list[bytes] = []
        for line in lines:
            content = line_content(line)
            if len(content) <= limit:
                batch.append(line)
                continue
            if batch:
                yield batch
                batch = []
            yield TooLong(content[:cap])
        if batch:
            yield batch
    if skipping is not None:
        yield TooLong(skipping)
    elif parts:  # the last line has no terminator: kept as written (a \r included)
        line = b"".join(parts)
        yield [line] if len(line) <= limit else TooLong(line[:cap])


def _read_error(
    exc: OSError | EOFError, name: str, lines: int, stream: IO[bytes]
) -> SecretSightError:
    try:
        offset = f" (offset {stream.tell()})"
    except (OSError, ValueError, EOFError):
        offset = ""
    what = "truncated" if isinstance(exc, EOFError) else "read error"
    return SecretSightError(f"{what} after line {lines}{offset}: {exc}", file=name, line=lines + 1)


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
    cells: bool = False,
) -> Iterator[Any]:
    """Yield the normalized events of `paths` (`-` is stdin; gzip is detected), in order,
    without duplicates (Vault request.id + entry type, CloudTrail eventID, Kubernetes
    auditID + stage). Counts go to `stats`; each dead letter to `dead_letter_sink`; a file
    that dead-lettered records and normalized none to `stats.files_without_events`.

    A Vault line (the bulk of most inputs) takes a direct path: parsed once, normalized by
    `vault_record` into the event itself (no item wrappers), its duplicate key taken from
    fields the normalizer already checked. Every other line goes through the items of
    `normalize_line`, parsing included only when the fast parse refused the line.

    `cells`: a Vault event comes as (`vault.CELLS`, its cells) (`vault_cells`: no event is
    built; `engine.table.rows` takes the pair as the event's row, and makes the event of
    that row only where it is needed); other events as themselves."""
    if source != "auto" and source not in SOURCES:
        raise ValueError(f"unknown source {source!r} (expected auto, {', '.join(SOURCES)})")
    stats = stats if stats is not None else Stats()
    seen: set[int] = set()
    skipped = stats.skipped
    dead = stats.dead_lettered
    loads = fast_loads or strict_loads
    auto = source == "auto"
    record = vault_cells if cells else vault_record

    def dead_letter(name: str, number: int, reason: str, line: bytes) -> None:
        dead[reason] += 1
        limit = stats.dead_letter_limit
        keep = limit is None or len(stats.dead_letters) < limit
        if keep or dead_letter_sink is not None:
            record = DeadLetterRecord(name, number, reason, _excerpt(line_content(line)))
            if keep:
                stats.dead_letters.append(record)
            if dead_letter_sink is not None:
                dead_letter_sink(record)

    for path in paths:
        name = str(path)
        stats.files += 1
        try:
            stream, underlying = _open(name)
        except OSError as exc:
            raise SecretSightError(f"cannot read: {exc.strerror or exc}", file=name) from exc
        normalized_before = stats.normalized + stats.duplicates
        dead_before = stats.dead_lettered_total
        number = 0
        try:
            for batch in iter_line_batches(stream, name):
                if type(batch) is TooLong:
                    number += 1
                    stats.lines += 1
                    stats.events_in += 1
                    dead_letter(name, number, "line_too_long", batch.excerpt)
                    continue
                stats.lines += len(batch)  # lines read (the batch is handled before the next read)
                first_number, number = number + 1, number + len(batch)
                for line_number, line in enumerate(batch, first_number):
                    try:
                        obj = loads(line)
                    except ValueError:  # empty, not JSON, not UTF-8, or for the stdlib parser
                        items = line_items(line_content(line), source)
                    else:
                        if type(obj) is not dict:
                            items = [{"dead_letter": "not_an_object"}]
                        else:
                            src: str | None
                            if not auto:
                                src = source
                            elif (kind := obj.get("type")) == "response" or kind == "request":
                                src = "vault"  # what detect_source says first, without a call
                            else:
                                src = detect_source(obj)
                            if src == "vault":
                                stats.events_in += 1
                                try:
                                    out = record(obj)
                                except DeadLetter as dl:
                                    dead_letter(name, line_number, dl.code, line)
                                    continue
                                if out.__class__ is str:
                                    skipped[out] += 1  # type: ignore[index]
                                    continue
                                if dedupe:
                                    # dedupe_key(event), from the entry's checked type and id
                                    key = hash(("vault.audit", obj["request"]["id"], obj["type"]))
                                    if key in seen:
                                        stats.duplicates += 1
                                        continue
                                    seen.add(key)
                                stats.normalized += 1
                                yield out
                                continue
                            if src is None:
                                items = [{"dead_letter": "unknown_source"}]
                            else:
                                items = object_items(obj, src)
                    stats.events_in += len(items)
                    for item in items:
                        item_event = item.get("event")
                        if item_event is not None:
                            if dedupe:
                                key = dedupe_key(item_event)
                                if key in seen:
                                    stats.duplicates += 1
                                    continue
                                seen.add(key)
                            stats.normalized += 1
                            yield item_event
                        elif "skip" in item:
                            skipped[item["skip"]] += 1
                        else:
                            dead_letter(name, line_number, item["dead_letter"], line)
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
