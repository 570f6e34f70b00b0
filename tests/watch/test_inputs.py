"""File tailing (rotation by rename, copytruncate, offsets across restarts) and stdin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.event_builders import at, baseline_events, ev

from secretsight.watch.decode import DecodeError, decode_line
from secretsight.watch.inputs import FileInput


def lines(n: int, start: int = 0) -> bytes:
    return b"".join(f"line-{i}\n".encode() for i in range(start, start + n))


def drain(f: FileInput, rounds: int = 5) -> list[bytes]:
    out: list[bytes] = []
    for _ in range(rounds):
        out.extend(f.poll())
    return out


def test_partial_line_waits_for_its_newline(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_bytes(b"one\ntw")
    f = FileInput(p)
    assert drain(f) == [b"one"]
    assert f.offset()["pos"] == 4
    with open(p, "ab") as fh:
        fh.write(b"o\n")
    assert drain(f) == [b"two"]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64])
def test_reads_of_any_size_give_the_lines_and_offsets_of_the_file(tmp_path: Path,
                                                                  size: int) -> None:
    """A read may end anywhere (inside a line, on a newline, inside the byte order mark):
    the lines handed out are the file's, and the offset is always just past the last one."""
    data = b"\xef\xbb\xbffirst\n\nsecond line\nx\n\n" + lines(5) + b"partial"
    p = tmp_path / "a.log"
    p.write_bytes(data)
    f = FileInput(p)
    got: list[bytes] = []
    for _ in range(len(data) + 2):
        got += f.poll(size)
        assert f.offset()["pos"] == len(b"".join(x + b"\n" for x in got)) + 3 * bool(got)
    assert got == data[3:].split(b"\n")[:-1]
    assert f.flush_partial() == [b"partial"]


def test_rename_rotation_drains_old_then_follows_new(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    p.write_bytes(lines(3))
    f = FileInput(p)
    assert drain(f) == [b"line-0", b"line-1", b"line-2"]
    with open(p, "ab") as fh:  # written after our last read, then rotated away
        fh.write(lines(2, 3))
    os.rename(p, tmp_path / "audit.log.1")
    p.write_bytes(lines(2, 5))
    assert drain(f) == [f"line-{i}".encode() for i in range(3, 7)]
    assert f.rotations == 1


def test_copytruncate_restarts_at_zero(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    p.write_bytes(lines(5))
    f = FileInput(p)
    assert len(drain(f)) == 5
    p.write_bytes(lines(2, 100))  # truncated in place and rewritten, same inode
    assert drain(f) == [b"line-100", b"line-101"]
    assert f.truncations == 1


def test_saved_offset_resumes(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    p.write_bytes(lines(4))
    f = FileInput(p)
    drain(f)
    saved = f.offset()
    with open(p, "ab") as fh:
        fh.write(lines(2, 4))
    assert drain(FileInput(p, saved)) == [b"line-4", b"line-5"]


def test_rotated_while_down_reads_rest_of_old_inode(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    p.write_bytes(lines(2))
    f = FileInput(p)
    drain(f)
    saved = f.offset()
    with open(p, "ab") as fh:
        fh.write(lines(1, 2))
    os.rename(p, tmp_path / "audit.log.1")
    p.write_bytes(lines(1, 3))
    assert drain(FileInput(p, saved)) == [b"line-2", b"line-3"]


def test_truncated_while_down_restarts_at_zero(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    p.write_bytes(lines(5))
    f = FileInput(p)
    drain(f)
    saved = f.offset()
    p.write_bytes(lines(1, 50))
    assert drain(FileInput(p, saved)) == [b"line-50"]


def test_decode_line_cases() -> None:
    e = ev(at(0))
    assert decode_line(json.dumps(e)) == [e]
    assert decode_line(json.dumps({"log": json.dumps(e)})) == [e]  # Fluent Bit wrapper
    assert decode_line("   ") == []
    with pytest.raises(DecodeError) as info:
        decode_line("{oops")
    assert info.value.reason == "malformed_json"  # the normalizer's reason code


def test_stdin_subprocess(tmp_path: Path) -> None:
    body = "".join(json.dumps(e) + "\n" for e in
                   baseline_events() + [ev(at(days=15), path="secret/new")]) + "garbage\n"
    exe = str(Path(sys.executable).with_name("secretsight"))
    proc = subprocess.run([exe, "watch", "-i", "-", "--exit-at-eof", "--state",
                           f"sqlite:///{tmp_path}/s.db"], input=body.encode(),
                          capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(x)["rule_name"] for x in proc.stdout.splitlines()] == ["first_path_access"]


def test_clean_restart_does_not_reemit_last_batch(tmp_path: Path) -> None:
    src = tmp_path / "in.ndjson"
    src.write_text("".join(json.dumps(e) + "\n" for e in
                           baseline_events() + [ev(at(days=15), path="secret/new")]))
    exe = str(Path(sys.executable).with_name("secretsight"))
    cmd = [exe, "watch", "-i", str(src), "--exit-at-eof", "--state", f"sqlite:///{tmp_path}/s.db"]
    first = subprocess.run(cmd, capture_output=True, timeout=60, check=True)
    second = subprocess.run(cmd, capture_output=True, timeout=60, check=True)
    assert len(first.stdout.splitlines()) == 1
    assert second.stdout == b""  # nothing new, nothing repeated
