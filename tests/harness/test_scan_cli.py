"""`secretsight scan` through click's CliRunner: output formats, exit codes, bad input."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from secretsight.cli import cli
from secretsight.scenarios import generate
from secretsight.scenarios.catalog import HARVESTER as HARVESTER_TOKEN
from secretsight.scenarios.world import Timeline, VaultToken

HARVESTER = HARVESTER_TOKEN.entity_id  # the principal (user.id): its entity

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def harvest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate("vault_harvest", tmp_path_factory.mktemp("harvest")).files[0]


@pytest.fixture(scope="module")
def benign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tl = Timeline(7, datetime(2026, 3, 3, 10, tzinfo=UTC))
    token = VaultToken("tok_quiet", "kubernetes-quiet", ("default", "quiet"))
    for i in range(5):
        tl.vault_read(tl.at(minutes=5 * i), token, "secret/production/quiet/db", "10.0.1.9")
    return tl.write(tmp_path_factory.mktemp("benign"))[0]


def scan(*args: str, input: bytes | None = None):
    return CliRunner().invoke(cli, ["scan", *args], input=input)


def test_no_findings_exits_0_with_a_summary(benign: Path) -> None:
    result = scan(str(benign))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().startswith("5 events")
    assert "0 findings" in result.stdout and "0 dead letters" in result.stdout


def test_findings_exit_1_table_names_rule_identity_window(harvest: Path) -> None:
    result = scan(str(harvest))
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["SEVERITY", "ANOMALY", "RULE", "IDENTITY", "WINDOW"]
    rows = [line.split() for line in lines if line.startswith(("high ", "critical ", "medium "))]
    # IDENTITY: the readable principal first, then its id (Finding.who())
    who = ("kubernetes-inventory", f"({HARVESTER})")
    assert sorted((r[1], r[2], *r[3:5]) for r in rows) == [
        ("bulk_read", "bulk_read", *who), ("path_diversity", "path_diversity", *who)]
    assert "500 events; 47 paths" in result.stdout
    assert lines[-1].endswith("2 findings (high 2), 0 dead letters")


def test_json_is_one_finding_object_per_line(harvest: Path) -> None:
    result = scan("--format", "json", str(harvest))
    assert result.exit_code == 1
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["rule_name"] for o in objects] == ["bulk_read", "path_diversity"]
    for o in objects:
        assert set(o) >= {"anomaly", "rule", "rule_name", "title", "severity", "user", "window",
                          "evidence"}
        assert o["user"]["id"] == HARVESTER
        assert o["window"]["start"] < o["window"]["end"]


def test_gzip_and_stdin_give_the_same_findings(harvest: Path, tmp_path: Path) -> None:
    raw = harvest.read_bytes()
    gz = tmp_path / "audit.log.gz"
    gz.write_bytes(gzip.compress(raw))
    plain = scan("--format", "json", str(harvest)).stdout
    assert scan("--format", "json", str(gz)).stdout == plain
    assert scan("--format", "json", "-", input=raw).stdout == plain


def test_bad_lines_are_reported_with_file_and_line_and_counted(benign: Path, tmp_path: Path) -> None:
    lines = benign.read_text().splitlines()
    broken = tmp_path / "broken.log"
    broken.write_text("\n".join([lines[0], "{not json", *lines[1:], '{"type": "response"}']) + "\n")
    result = scan(str(broken))
    assert result.exit_code == 0, result.output
    assert f"{broken}:2: dead letter (malformed_json)" in result.stderr
    assert f"{broken}:{len(lines) + 2}: dead letter" in result.stderr
    assert result.stdout.strip().endswith("2 dead letters")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_long_beyond_64_bits_is_a_dead_letter_not_a_crash(benign: Path, tmp_path: Path,
                                                            jobs: str) -> None:
    """orjson reads integers up to 2**64 - 1; SQLite stores 64 signed bits. A hostile token
    TTL, port or created-token TTL in that gap is `wrong_type` (as VRL and the Lua filters
    decide), and the scan goes on: it once stopped with sqlite3's OverflowError."""
    lines = benign.read_text().splitlines()
    hostile = []
    for n, (where, value) in enumerate([(("auth", "token_ttl"), 2**63),
                                        (("request", "remote_port"), 2**64 - 1),
                                        (("auth", "token_ttl"), 2**63 - 1)]):
        entry = json.loads(lines[1])
        entry["request"]["id"] = f"beyond-{n}"
        entry[where[0]][where[1]] = value
        hostile.append(json.dumps(entry))
    mixed = tmp_path / "hostile.log"
    mixed.write_text("\n".join([*lines, *hostile]) + "\n")
    result = scan("--jobs", jobs, str(mixed))
    assert result.exit_code == 0, result.output
    assert f"{mixed}:{len(lines) + 1}: dead letter (wrong_type)" in result.stderr
    assert f"{mixed}:{len(lines) + 2}: dead letter (wrong_type)" in result.stderr
    assert result.stdout.strip().startswith("6 events")  # 2**63 - 1 is a long: read
    assert result.stdout.strip().endswith("2 dead letters")


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_jobs_2_gives_what_jobs_1_gives(harvest: Path, tmp_path: Path, fmt: str) -> None:
    """The detectors in a second process (--jobs 2): the same findings, summary, dead letters
    (file:line, reasons, counts) and phases timed, on a log with bad lines and a lone request
    entry among the harvest."""
    lines = harvest.read_text().splitlines()
    lone = json.loads(next(line for line in lines if '"type": "request"' in line
                           or '"type":"request"' in line))
    lone["request"]["id"] = "lone-request"  # its response never comes
    mixed = tmp_path / "mixed.log"
    mixed.write_text("\n".join([lines[0], "{not json", *lines[1:200], json.dumps(lone), "",
                                "[1, 2]", *lines[200:], '{"type": "response"}']) + "\n")
    one = scan("--format", fmt, "--timings", "--jobs", "1", str(mixed))
    two = scan("--format", fmt, "--timings", "--jobs", "2", str(mixed))
    assert (two.exit_code, two.stdout) == (one.exit_code, one.stdout)
    assert one.exit_code == 1 and one.stdout

    def reported(stderr: str) -> tuple[list[str], list[str]]:
        timed = [line.split(":")[0] for line in stderr.splitlines() if line.startswith("timing")]
        return [line for line in stderr.splitlines() if not line.startswith("timing")], sorted(timed)

    assert reported(two.stderr) == reported(one.stderr)
    assert "dead letter (malformed_json)" in one.stderr
    assert "dead letter (not_an_object)" in one.stderr


@pytest.mark.parametrize(
    "args",
    [["/no/such/file.log"], ["--config", "/no/such/config.yml", "X"], ["--store", "ftp://x", "X"],
     ["--format", "xml", "X"], []],
    ids=["missing_file", "missing_config", "bad_store_url", "bad_format", "no_input"],
)
def test_usage_and_input_errors_exit_2(args: list[str], benign: Path) -> None:
    args = [str(benign) if a == "X" else a for a in args]
    result = scan(*args)
    assert result.exit_code == 2, result.output


def test_config_changes_thresholds(harvest: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("allowlists:\n  bulk_read: [kubernetes-inventory]\n"
                      f"  path_diversity: [{HARVESTER}]\n")
    result = scan("--config", str(config), str(harvest))
    assert result.exit_code == 0, result.output


def test_examples_directory_shows_findings_from_every_source() -> None:
    result = scan("--format", "json", str(REPO / "examples"))
    assert result.exit_code == 1, result.output
    datasets = {json.loads(line).get("dataset") for line in result.stdout.splitlines()}
    assert {"vault.audit", "aws.cloudtrail", "kubernetes.audit"} <= datasets


def test_progress_bar_only_on_a_terminal(harvest: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    from secretsight import log_files
    from secretsight.normalize import Stats, iter_files

    monkeypatch.setattr(log_files, "PROGRESS_MIN_BYTES", 0)
    stats = Stats()
    plain = list(log_files.with_progress(iter_files([str(harvest)], stats=stats),
                                         [str(harvest)], stats))
    assert "scanning" not in capsys.readouterr().err  # pytest's stderr is not a terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    stats = Stats()
    shown = list(log_files.with_progress(iter_files([str(harvest)], stats=stats),
                                         [str(harvest)], stats))
    assert "scanning" in capsys.readouterr().err
    assert len(shown) == len(plain) > 0


def test_an_empty_file_is_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.log"
    path.write_bytes(b"")
    result = scan(str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("0 dead letters")


# Issue 14 item 6: a file of which no event could be normalized is an input error, not a quiet
# "0 findings" (events without timestamps used to be all dead-lettered, exit 0).
NO_TIMESTAMP = json.dumps({"type": "response", "auth": {"accessor": "a"},
                           "request": {"id": "r-1", "operation": "read", "path": "secret/x"}})


@pytest.mark.parametrize(
    ("content", "dead"),
    [(bytes(range(128, 256)) * 8, 1), (b"\n\n{}\n[1,2]\n", 2),
     ((NO_TIMESTAMP + "\n") .encode() * 3, 3)],
    ids=["binary_file", "json_but_not_events", "events_without_timestamps"],
)
def test_a_file_with_no_normalizable_event_exits_2(tmp_path: Path, content: bytes,
                                                   dead: int) -> None:
    path = tmp_path / "odd.log"
    path.write_bytes(content)
    result = scan(str(path))
    assert result.exit_code == 2, result.output
    assert f"error: {path}: no event could be normalized ({dead} dead-lettered)" in result.stderr


def test_one_unusable_file_among_good_ones_exits_2(benign: Path, tmp_path: Path) -> None:
    """The other files are still scanned and summarised; the unusable one is named."""
    bad = tmp_path / "bad.log"
    bad.write_text(NO_TIMESTAMP + "\n")
    result = scan(str(bad), str(benign))
    assert result.exit_code == 2, result.output
    assert "0 findings" in result.stdout and "1 dead letters" in result.stdout
    assert f"error: {bad}: no event could be normalized (1 dead-lettered)" in result.stderr
    assert scan(str(benign)).exit_code == 0


def test_directory_without_logs_exits_2(tmp_path: Path) -> None:
    assert scan(str(tmp_path)).exit_code == 2
