"""`secretsight normalize`: audit log files -> normalized NDJSON on stdout, a summary on stderr,
dead letters (file, line, reason, raw excerpt) to --dead-letter."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO, Any

import click

from secretsight.errors import SecretSightError
from secretsight.normalize.line import SOURCES

_EPILOG = """
FILE may be plain or gzipped NDJSON, or - for stdin. Events are written one per line with
sorted keys; duplicates are dropped (Vault request.id + entry type, CloudTrail eventID,
Kubernetes auditID + stage). Lines that are not normalized are counted by reason code
(tools/secretsight/schema/dispositions.yml): skips are deliberate, dead letters are reported
with file:line and written to --dead-letter. The exit status is 0 even with dead letters,
2 on usage errors (a missing file) and on a file that cannot be read to its end (a truncated
gzip: its readable prefix is written and the summary printed first). Dead-letter records name file, line and reason;
the raw excerpt (4 KiB) is added only with --dead-letter-raw, since it may hold secret values.
"""


def _dumper() -> Any:
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is a pinned dependency
        import json

        def dumps(obj: Any) -> bytes:
            text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            return text.encode("utf-8") + b"\n"

        return dumps
    option = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
    return lambda obj: orjson.dumps(obj, option=option)


@click.command(epilog=_EPILOG)
@click.option(
    "--source",
    "-s",
    type=click.Choice(["auto", *SOURCES]),
    default="auto",
    show_default=True,
    help="Source of every FILE; auto detects it per line.",
)
@click.option(
    "--dead-letter",
    "dead_letter_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write dead letters here as NDJSON {file, line, reason} (mode 0600).",
)
@click.option(
    "--dead-letter-raw/--no-dead-letter-raw",
    default=False,
    show_default=True,
    help="Add the first 4 KiB of each dead line as `raw`. It may hold secret values "
    "(a truncated Vault log_raw entry): keep the file private.",
)
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, allow_dash=True)
)
def command(
    source: str, dead_letter_path: Path | None, dead_letter_raw: bool, files: tuple[str, ...]
) -> int:
    """Normalize audit log FILEs (Vault, CloudTrail, Kubernetes) to the SecretSight schema."""
    from secretsight.normalize import DeadLetterRecord, Stats, iter_files

    dumps = _dumper()
    out = sys.stdout.buffer  # CliRunner and the real stdout both expose one
    stats = Stats()
    dl_file: IO[bytes] | None = None
    sink = None
    if dead_letter_path is not None:
        fd = os.open(dead_letter_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        dl_file = os.fdopen(fd, "wb")

        def sink(record: DeadLetterRecord) -> None:
            assert dl_file is not None
            dl_file.write(dumps(record.to_json(include_raw=dead_letter_raw)))

    chunk: list[bytes] = []
    read_error: SecretSightError | None = None
    try:
        try:
            for event in iter_files(files, source, stats, dead_letter_sink=sink):
                chunk.append(dumps(event))
                if len(chunk) >= 512:  # fewer, larger writes
                    out.write(b"".join(chunk))
                    chunk.clear()
        except SecretSightError as exc:  # e.g. a truncated gzip: its readable prefix is out
            read_error = exc
        if chunk:
            out.write(b"".join(chunk))
        out.flush()
    except BrokenPipeError:  # stdout closed early (| head): stop quietly
        pass
    finally:
        if dl_file is not None:
            dl_file.close()
    click.echo(f"secretsight normalize: {stats.summary()}", err=True)
    if dead_letter_path is not None:
        click.echo(
            f"  {stats.dead_lettered_total} dead letters written to {dead_letter_path}", err=True
        )
    if read_error is not None:
        click.echo(f"error: {read_error}", err=True)
        return 2
    return 0
