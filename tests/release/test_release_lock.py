"""sigma/rules.lock: a released rule may not change without a version bump."""

from __future__ import annotations

from pathlib import Path

import pytest

from secretsight import __version__, release
from secretsight.rules import RULES_DIR


def test_repo_rules_match_lock() -> None:
    """Fails when a rule released at the current version changed (or vanished) since: bump
    the version, add a CHANGELOG entry, run `secretsight release --update-lock`."""
    lock = release.read_lock()
    problems = release.check_lock(lock, release.rule_hashes(), __version__)
    assert not problems, "\n".join(problems)


def test_lock_shape() -> None:
    lock = release.read_lock()
    assert lock.rules and lock.version
    for name, digest in lock.rules.items():
        assert name.isidentifier() and name == name.lower(), name  # a rule name, not a fixture
        assert len(digest) == 64 and int(digest, 16) >= 0, name


LOCK = release.Lock(version="1.0.0", rules={"a": "1" * 64, "b": "2" * 64})


@pytest.mark.parametrize(("hashes", "version", "expected"), [
    ({"a": "1" * 64, "b": "2" * 64}, "1.0.0", []),
    ({"a": "1" * 64, "b": "2" * 64, "c": "3" * 64}, "1.0.0", []),  # a new rule is fine
    ({"a": "f" * 64, "b": "2" * 64}, "1.0.0", ["rule a changed"]),
    ({"b": "2" * 64}, "1.0.0", ["rule a was released in 1.0.0 and is gone"]),
    ({"a": "f" * 64}, "1.1.0", []),  # bumped: anything may change
], ids=["unchanged", "added", "changed", "removed", "bumped"])
def test_check_lock(hashes: dict[str, str], version: str, expected: list[str]) -> None:
    problems = release.check_lock(LOCK, hashes, version)
    assert [p.split(" since")[0].split(";")[0] for p in problems] == expected


def test_edit_detected_then_lock_updated(tmp_path: Path) -> None:
    rules = tmp_path / "rules" / "vault"
    rules.mkdir(parents=True)
    src = RULES_DIR / "vault" / "vault_root_token.yml"
    (rules / src.name).write_bytes(src.read_bytes())
    lock_path = tmp_path / "rules.lock"
    lock_path.write_text(release.render_lock("1.0.0", release.rule_hashes([tmp_path / "rules"])))
    assert release.check_lock(release.read_lock(lock_path),
                              release.rule_hashes([tmp_path / "rules"]), "1.0.0") == []
    (rules / src.name).write_text(src.read_text().replace("level: critical", "level: high"))
    changed = release.rule_hashes([tmp_path / "rules"])
    assert release.check_lock(release.read_lock(lock_path), changed, "1.0.0")
    lock_path.write_text(release.render_lock("1.1.0", changed))
    assert release.read_lock(lock_path) == release.Lock("1.1.0", changed)
    assert release.check_lock(release.read_lock(lock_path), changed, "1.1.0") == []


def test_cli_check_lock() -> None:
    from click.testing import CliRunner

    from secretsight.cli import cli

    result = CliRunner().invoke(cli, ["release", "--check-lock"], standalone_mode=False)
    assert result.exception is None, result.output
    assert result.return_value == 0 and "rule lock OK" in result.output
