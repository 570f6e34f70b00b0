"""`secretsight release`: a versioned, reproducible content pack, and the rule lock file.

The pack `secretsight-<version>.tar.gz` holds, under `secretsight-<version>/`: the rules and
`sigma/rules.lock`, the target pipelines, every target's compiled output with the support
matrix (`compiled/`, the alerting pieces in `compiled/alerting/`), the normalizers (`vector/`,
`fluentbit/`), the Kubernetes audit policy (`deploy/`), the runbooks (`docs/runbooks/`) and
`docs/deployment.md`, the example config, the changelog and this version's entry (`RELEASE-NOTES.md`), the replay harness's coverage report
(`coverage/`, from the last full test run) and `MANIFEST.sha256` (`sha256sum -c` format)
covering every other file. Members are sorted, with fixed mtime, owner and modes, and
the gzip header carries no name or time: two builds of one commit are byte-identical.

`sigma/rules.lock` maps each rule name to the SHA-256 of its file, recorded at a version. A
rule whose file no longer matches while the version is unchanged is a released rule changed
silently: `check_lock` reports it (a test runs it), and the fix is a version bump, a changelog
entry and `secretsight release --update-lock`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from secretsight import __version__, yamlio
from secretsight.archive import FIXED_MTIME, tar_gz  # noqa: F401 - FIXED_MTIME: part of the API
from secretsight.errors import SecretSightError

REPO = Path(__file__).resolve().parents[2]
CHANGELOG = REPO / "CHANGELOG.md"
LOCK = REPO / "sigma" / "rules.lock"
# Content shipped as is (besides the rules and the compiled output).
SHIPPED_DIRS = ("sigma/pipelines", "vector", "fluentbit", "config", "deploy", "docs/runbooks")
SHIPPED_FILES = ("docs/deployment.md",)
_SKIP_PARTS = {"__pycache__", "node_modules", ".pytest_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo")
COVERAGE_DIR = REPO / "build" / "coverage"
COVERAGE_FILES = ("coverage.md", "coverage.html")


# ---------------------------------------------------------------------------------------------
# Changelog


def changelog_entry(version: str, path: Path = CHANGELOG) -> str:
    """The section of `path` for `version` (a `## [1.2.0] - date` or `## 1.2.0` heading, up to
    the next `## `). Raises a SecretSightError naming the file when there is none."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise SecretSightError(f"cannot read the changelog: {exc}", file=str(path)) from exc
    heading = re.compile(rf"^## \[?v?{re.escape(version)}\]?(\s|$)", re.MULTILINE)
    match = heading.search(text)
    if not match:
        raise SecretSightError(
            f"no changelog entry for version {version}: add a `## [{version}] - YYYY-MM-DD` "
            "section before releasing", file=str(path))
    rest = text[match.start():]
    following = re.search(r"^## ", rest[3:], re.MULTILINE)
    entry = rest[: following.start() + 3] if following else rest
    return entry.strip() + "\n"


# ---------------------------------------------------------------------------------------------
# Rule lock


@dataclass(frozen=True)
class Lock:
    version: str
    rules: dict[str, str]  # rule name -> sha256 of the rule file


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rule_hashes(paths: Iterable[str | Path] | None = None) -> dict[str, str]:
    """Rule name (file stem) -> SHA-256 of the file, for every rule under `paths`."""
    from secretsight.rules import rule_files

    return {p.stem: sha256(p.read_bytes()) for p in rule_files(paths)}


def read_lock(path: Path = LOCK) -> Lock:
    try:
        data = yamlio.load(path.read_text("utf-8"))
    except OSError as exc:
        raise SecretSightError(f"cannot read the rule lock: {exc}", file=str(path)) from exc
    if not isinstance(data, dict) or not isinstance(data.get("rules"), dict) \
            or "version" not in data:
        raise SecretSightError("rule lock must have `version` and a `rules` mapping",
                               file=str(path))
    return Lock(version=str(data["version"]), rules={str(k): str(v) for k, v in data["rules"].items()})


def render_lock(version: str, hashes: dict[str, str]) -> str:
    lines = ["# SecretSight rule lock: rule name -> SHA-256 of the rule file at this version.",
             "# Regenerate with `secretsight release --update-lock` after a version bump.",
             f"version: {version}", "rules:"]
    lines += [f"  {name}: {digest}" for name, digest in sorted(hashes.items())]
    return "\n".join(lines) + "\n"


def check_lock(lock: Lock, hashes: dict[str, str], version: str) -> list[str]:
    """Problems with the rules against the lock. At the locked version every locked rule must
    be unchanged and present; new rules are fine (they were never released). After a version
    bump anything may change: the lock is refreshed at release."""
    if lock.version != version:
        return []
    problems = []
    for name, digest in sorted(lock.rules.items()):
        if name not in hashes:
            problems.append(f"rule {name} was released in {version} and is gone; bump the "
                            "version, add a changelog entry and run `secretsight release "
                            "--update-lock`")
        elif hashes[name] != digest:
            problems.append(f"rule {name} changed since it was released in {version} without a "
                            "version bump; bump the version, add a changelog entry and run "
                            "`secretsight release --update-lock`")
    return problems


# ---------------------------------------------------------------------------------------------
# The pack


def _shipped_files(root: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for rel_dir in SHIPPED_DIRS:
        base = root / rel_dir
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(root)
            if not path.is_file() or _SKIP_PARTS & set(rel.parts) \
                    or path.name.endswith(_SKIP_SUFFIXES):
                continue
            out[rel.as_posix()] = path
    return out


def coverage_files(coverage_dir: Path) -> dict[str, bytes]:
    """The coverage report written by the replay harness (tests/harness), to ship as evidence of
    what each rule and detector was verified against. A partial run (`pytest -k`) is refused:
    it would claim less, or other, coverage than the release has."""
    files: dict[str, bytes] = {}
    for name in COVERAGE_FILES:
        path = coverage_dir / name
        if not path.is_file():
            # The path is the error's `file`: the message says what to do, not where again.
            raise SecretSightError(
                "no coverage report yet. The replay harness writes it: run "
                "`bash scripts/test.sh tests/harness` (the whole directory, no -k), then "
                "release again; or pass --coverage DIR (a report built elsewhere), or "
                "--no-coverage (a pack without its evidence)",
                file=str(path))
        data = path.read_bytes()
        if b"PARTIAL RUN" in data:
            raise SecretSightError(
                "the coverage report is from a partial test run: run `bash scripts/test.sh "
                "tests/harness` without -k before releasing", file=str(path))
        files[f"coverage/{name}"] = data
    return files


def pack_contents(version: str, *, root: Path = REPO, update_lock: bool = False,
                  config_path: Path | None = None,
                  coverage_dir: Path | None = None) -> dict[str, bytes]:
    """Every file of the pack (path inside the pack -> bytes), MANIFEST.sha256 included.
    `coverage_dir` None leaves the coverage report out (tests of the pack itself)."""
    from secretsight.compile import TARGETS, compile_targets
    from secretsight.compile.splunk_app import splunk_package
    from secretsight.config import load_config
    from secretsight.rules import rule_files

    notes = changelog_entry(version, root / "CHANGELOG.md")
    rules_dir = root / "sigma" / "rules"
    hashes = rule_hashes([rules_dir])
    lock_path = root / "sigma" / "rules.lock"
    if update_lock:
        lock_text = render_lock(version, hashes)  # written once the compile succeeded
    else:
        lock = read_lock(lock_path)
        if lock.version != version or lock.rules != hashes:
            raise SecretSightError(
                f"the rule lock is for version {lock.version} and does not match the rules of "
                f"{version}: run `secretsight release --version {version} --update-lock`",
                file=str(lock_path))
        lock_text = lock_path.read_text("utf-8")

    output = compile_targets(TARGETS, config=load_config(config_path), paths=[rules_dir])
    if output.errors:
        details = "\n".join(f"  {e}" for e in output.errors)
        raise SecretSightError(f"cannot release: {len(output.errors)} rule error(s):\n{details}")
    if update_lock:
        lock_path.write_text(lock_text, "utf-8")

    files: dict[str, bytes] = {}
    for path in rule_files([rules_dir]):
        files[path.relative_to(root).as_posix()] = path.read_bytes()
    files["sigma/rules.lock"] = lock_text.encode("utf-8")
    for rel, path in _shipped_files(root).items():
        files[rel] = path.read_bytes()
    for rel in SHIPPED_FILES:
        files[rel] = (root / rel).read_bytes()
    for rel, content in output.files.items():
        files[f"compiled/{rel}"] = content.encode("utf-8")
    # The Splunk app as Splunk installs it (Apps > Install app from file), beside its files.
    files.update({f"compiled/{rel}": data for rel, data in splunk_package(output).items()})
    files["CHANGELOG.md"] = (root / "CHANGELOG.md").read_bytes()
    files["RELEASE-NOTES.md"] = notes.encode("utf-8")
    if coverage_dir is not None:
        files.update(coverage_files(coverage_dir))
    files["MANIFEST.sha256"] = manifest(files).encode("utf-8")
    return files


def manifest(files: dict[str, bytes]) -> str:
    """`sha256sum -c` format: `<hex>  <path>`, sorted by path."""
    return "".join(f"{sha256(data)}  {rel}\n" for rel, data in sorted(files.items())
                   if rel != "MANIFEST.sha256")


def write_tarball(files: dict[str, bytes], prefix: str, out: Path) -> Path:
    """A reproducible .tar.gz (secretsight.archive)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(tar_gz(files, prefix))
    return out


def build_release(version: str | None = None, out_dir: Path | str = REPO / "build" / "release",
                  *, root: Path = REPO, update_lock: bool = False,
                  config_path: Path | None = None,
                  coverage_dir: Path | None = COVERAGE_DIR) -> Path:
    version = version or __version__
    if not re.fullmatch(r"\d+\.\d+\.\d+([.-]?[A-Za-z0-9.]+)?", version):
        raise SecretSightError(f"not a version: {version!r} (use e.g. 1.2.0)")
    files = pack_contents(version, root=root, update_lock=update_lock, config_path=config_path,
                          coverage_dir=coverage_dir)
    name = f"secretsight-{version}"
    return write_tarball(files, name, Path(out_dir) / f"{name}.tar.gz")
