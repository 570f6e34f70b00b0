"""State and disk faults (issue 12): a corrupted, read-only or full SQLite state, and an output
on a full disk, end the run with a clear error and exit status 2 after every finding already
computed was emitted; state files are private; the `sqlite:` URL path rule."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.event_streams import detector_stream, write_ndjson

from secretsight.detect.stores import sqlite_path

WATCH = [str(Path(sys.executable).with_name("secretsight")), "watch"]
ONE_COMMIT = ["--commit-every", "10000000", "--commit-interval", "100000"]


def _watch(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*WATCH, *args, "--exit-at-eof"], capture_output=True, timeout=300,
                          cwd=cwd)


@pytest.fixture(scope="module")
def halves(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("events")
    ev = detector_stream(identities=20, days=20, reads_per_day=10)
    half = len(ev) // 2
    return write_ndjson(d / "a.ndjson", ev[:half]), write_ndjson(d / "b.ndjson", ev[half:])


def _ids(out: bytes | Path) -> list[str]:
    text = out.read_bytes() if isinstance(out, Path) else out
    return [json.loads(x)["id"] for x in text.splitlines() if x.strip()]


def _reference(tmp_path: Path, halves: tuple[Path, Path]) -> tuple[Path, list[str]]:
    """A state after the first half, and the findings a healthy run over the second emits."""
    a, b = halves
    state = tmp_path / "state.db"
    assert _watch(["-i", str(a), "-o", str(tmp_path / "a.out"), "--state",
                   f"sqlite:///{state}"]).returncode == 0
    healthy = tmp_path / "healthy.db"
    shutil.copy(state, healthy)
    run = _watch(["-i", str(b), "-o", "-", "--state", f"sqlite:///{healthy}", *ONE_COMMIT])
    assert run.returncode == 0
    ref = _ids(run.stdout)
    assert ref, "the second half must produce findings"
    return state, ref


def _assert_clean_failure(run: subprocess.CompletedProcess, *words: str) -> str:
    err = run.stderr.decode()
    assert run.returncode == 2, err
    assert "Traceback" not in err, err
    assert "error:" in err and all(w in err for w in words), err
    return err


def test_corrupted_state_pages_end_with_a_clear_error(tmp_path: Path,
                                                      halves: tuple[Path, Path]) -> None:
    state, _ = _reference(tmp_path, halves)
    size = state.stat().st_size
    with open(state, "r+b") as fh:  # keep the header page, wreck the b-tree pages after it
        fh.seek(4096)
        fh.write(b"\xde\xad" * ((size - 4096) // 2))
    run = _watch(["-i", str(halves[1]), "-o", "-", "--state", f"sqlite:///{state}"])
    _assert_clean_failure(run, "SQLite state store", str(state))


def test_read_only_state_emits_every_finding_then_exits_2(tmp_path: Path,
                                                          halves: tuple[Path, Path]) -> None:
    state, ref = _reference(tmp_path, halves)
    if subprocess.run(["chattr", "+i", str(state)], capture_output=True).returncode:
        pytest.skip("chattr +i unavailable (not root, or the filesystem has no immutable flag)")
    try:
        run = _watch(["-i", str(halves[1]), "-o", "-", "--state", f"sqlite:///{state}",
                      *ONE_COMMIT])
    finally:
        subprocess.run(["chattr", "-i", str(state)], check=True)
    _assert_clean_failure(run, "readonly")
    assert _ids(run.stdout) == ref  # computed before the commit failed: all emitted


def test_output_on_a_full_disk_exits_2_and_other_outputs_get_everything(
        tmp_path: Path, halves: tuple[Path, Path]) -> None:
    state, ref = _reference(tmp_path, halves)
    run = _watch(["-i", str(halves[1]), "-o", "/dev/full", "-o", "-", "--state",
                  f"sqlite:///{state}", *ONE_COMMIT])
    _assert_clean_failure(run, "No space left", "file:/dev/full")
    assert _ids(run.stdout) == ref


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs (needs root with CAP_SYS_ADMIN)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_state_on_a_full_disk_emits_every_finding_then_exits_2(
        tmp_path: Path, halves: tuple[Path, Path], tiny_tmpfs: Path) -> None:
    state, ref = _reference(tmp_path, halves)
    small = tiny_tmpfs / "state.db"
    shutil.copy(state, small)
    filler = tiny_tmpfs / "filler"
    with open(filler, "wb", buffering=0) as fh:  # fill the disk...
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    # ...then free 64 KiB: enough to open the store (WAL and shm files), not to commit
    os.truncate(filler, filler.stat().st_size - 64 * 1024)
    run = _watch(["-i", str(halves[1]), "-o", "-", "--state", f"sqlite:///{small}",
                  *ONE_COMMIT])
    _assert_clean_failure(run, "SQLite state store")
    assert _ids(run.stdout) == ref


def test_state_and_spool_files_are_private(tmp_path: Path, halves: tuple[Path, Path]) -> None:
    old = os.umask(0o022)
    try:
        state = tmp_path / "s" / "state.db"
        run = _watch(["-i", str(halves[0]), "-o", "http://127.0.0.1:9/x", "--state",
                      f"sqlite:///{state}", "--config", str(_no_drain(tmp_path))])
    finally:
        os.umask(old)
    assert run.returncode == 3, run.stderr.decode()
    for p in (state, Path(f"{state}.spool")):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


def _no_drain(tmp_path: Path) -> Path:
    p = tmp_path / "c.yml"
    p.write_text("limits:\n  spool:\n    drain_seconds: 0\n")
    return p


@pytest.mark.parametrize("url,path", [
    ("sqlite:///state.db", "state.db"),
    ("sqlite:///var/state.db", "var/state.db"),
    ("sqlite:////var/lib/secretsight/state.db", "/var/lib/secretsight/state.db"),
    ("state.db", "state.db"),
    ("sqlite:///:memory:", ":memory:"),
], ids=["relative", "relative_dir", "absolute", "plain_path", "memory"])
def test_sqlite_url_path_rule(url: str, path: str) -> None:
    assert sqlite_path(url) == path


def test_three_slashes_are_relative_to_the_working_directory(tmp_path: Path,
                                                             halves: tuple[Path, Path]) -> None:
    run = _watch(["-i", str(halves[0]), "-o", os.devnull, "--state", "sqlite:///rel/st.db"],
                 cwd=tmp_path)
    assert run.returncode == 0, run.stderr.decode()
    assert (tmp_path / "rel" / "st.db").is_file()


def test_redis_state_going_away_ends_with_a_clear_error(tmp_path: Path,
                                                        halves: tuple[Path, Path]) -> None:
    """A Redis state store that stops mid-run (its own server, stopped): exit 2 with the
    store named, no traceback (reads as well as commits are wrapped)."""
    from support.redis_server import RedisServer

    (tmp_path / "redis").mkdir()
    server = RedisServer.start_or_skip(tmp_path / "redis")
    proc = subprocess.Popen([*WATCH, "-i", "-", "-o", "-", "--state", server.url,
                             "--commit-interval", "0.05", "--exit-at-eof"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(halves[0].read_bytes())
    proc.stdin.flush()
    server.stop()  # the store goes away while watch still runs (stdin is open)
    try:  # watch may already have stopped reading: a broken pipe is expected then
        proc.stdin.write(halves[1].read_bytes())
        proc.stdin.close()
    except (BrokenPipeError, ValueError):
        pass
    proc.stdin = None  # closed above; communicate() must not flush it again
    _, err = proc.communicate(timeout=120)
    text = err.decode()
    assert proc.returncode == 2, text
    assert "Traceback" not in text and "Redis state" in text, text
