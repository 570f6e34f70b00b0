"""The line reader cuts lines from fixed-size reads: lines that span reads, over-long lines,
CRLF, a BOM and a last line without a terminator must come out as a plain split would give
them, whatever the read size."""

from __future__ import annotations

import random
import re
from io import BytesIO

import pytest

from secretsight.normalize import reader
from secretsight.normalize.reader import TooLong, iter_line_batches, line_content

LIMIT = 12
EXCERPT = 5


def _expected(data: bytes) -> list[bytes | TooLong]:
    if data[:3] == reader.BOM:
        data = data[3:]
    out: list[bytes | TooLong] = []
    for line in re.findall(rb"[^\n]*\n|[^\n]+$", data):
        content = line_content(line)
        out.append(line if len(content) <= LIMIT else TooLong(content[:EXCERPT]))
    return out


def _read(data: bytes) -> list[bytes | TooLong]:
    out: list[bytes | TooLong] = []
    for batch in iter_line_batches(BytesIO(data)):
        out.extend([batch] if isinstance(batch, TooLong) else batch)
    return out


@pytest.mark.parametrize("read_bytes", [1, 2, 3, 7, 13, 64])
def test_lines_across_reads_equal_a_plain_split(monkeypatch: pytest.MonkeyPatch,
                                                read_bytes: int) -> None:
    monkeypatch.setattr(reader, "READ_BYTES", read_bytes)
    monkeypatch.setattr(reader, "MAX_LINE_BYTES", LIMIT)
    monkeypatch.setattr(reader, "RAW_EXCERPT_BYTES", EXCERPT)
    rng = random.Random(read_bytes)
    pieces = [b"", b"a", b"{}", b"x" * LIMIT, b"y" * (LIMIT + 1), b"z" * (LIMIT * 3), b"q\r"]
    for _ in range(300):
        lines = [rng.choice(pieces) for _ in range(rng.randrange(0, 6))]
        data = (reader.BOM if rng.random() < 0.3 else b"") + b"\n".join(
            line + (b"\r" if rng.random() < 0.3 else b"") for line in lines)
        if rng.random() < 0.5:
            data += b"\n"
        assert _read(data) == _expected(data), data
