"""The Splunk app the Splunk target builds, checked by Splunk's own tools: AppInspect (precert
mode, the `cloud` tag and the full precert set) and `slim validate` (Splunk Packaging Toolkit),
both from the test extras. Plus what a Splunk engineer checks by reading: default/ only, every
search through the macros, no `\\*` escape, per-entity throttling, lagged windows."""

from __future__ import annotations

import configparser
import json
import shutil
import subprocess
import sys
import tarfile
from functools import cache
from pathlib import Path

import pytest
from support.compiled_rules import compiled

from secretsight.compile import write_output
from secretsight.compile.splunk_app import app_dir, splunk_package
from secretsight.config import Config

BIN = Path(sys.executable).parent
APP = Config().targets.splunk.app


@cache
def built_app(root: Path) -> Path:
    write_output(compiled("splunk"), root)
    return root / app_dir(Config())


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_app(tmp_path_factory.mktemp("splunk"))


@pytest.fixture(scope="module")
def package(app: Path) -> Path:
    """The package `release` ships (compiled/splunk/<app>.tgz)."""
    tgz = app.parent / f"{APP}.tgz"
    tgz.write_bytes(splunk_package(compiled("splunk"))[f"splunk/{APP}.tgz"])
    return tgz


def test_package_is_the_app_and_reproducible(app: Path, package: Path) -> None:
    with tarfile.open(package) as tar:
        names = {m.name for m in tar.getmembers()}
    files = {f"{APP}/{p.relative_to(app).as_posix()}" for p in app.rglob("*") if p.is_file()}
    assert names == files
    assert splunk_package(compiled("splunk")) == splunk_package(compiled("splunk"))


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (pip install -e '.[test]' provides it)")
    return path


@pytest.mark.parametrize("tags", [["--included-tags", "cloud"], ["--included-tags", "precert"], []],
                         ids=["cloud", "precert-tag", "all-precert"])
def test_appinspect_passes(package: Path, tags: list[str], tmp_path: Path) -> None:
    report = tmp_path / "appinspect.json"
    result = subprocess.run(
        [_tool("splunk-appinspect"), "inspect", str(package), "--mode", "precert", *tags,
         "--data-format", "json", "--output-file", str(report)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(report.read_text())["summary"]
    assert summary["failure"] == 0 and summary["error"] == 0, summary
    assert summary["success"] > 0


def test_slim_validate_passes(app: Path) -> None:
    result = subprocess.run([_tool("slim"), "validate", str(app)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "App validation complete" in result.stdout + result.stderr
    assert "ERROR" not in result.stdout + result.stderr


def test_slim_packages_it(app: Path, tmp_path: Path) -> None:
    """`slim package` (what a Splunk developer ships with) builds the app from its manifest."""
    result = subprocess.run([_tool("slim"), "package", str(app), "-o", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert list(tmp_path.glob(f"{APP}-*.tar.gz"))


def test_appinspect_catches_a_local_directory(app: Path, tmp_path: Path) -> None:
    """The check that failed the old instructions (install into local/) still fails here: the
    harness can fail."""
    bad = tmp_path / APP
    shutil.copytree(app, bad)
    (bad / "local").mkdir()
    shutil.copy(bad / "default" / "savedsearches.conf", bad / "local" / "savedsearches.conf")
    tgz = tmp_path / "bad.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(bad, arcname=APP)
    report = tmp_path / "r.json"
    subprocess.run([_tool("splunk-appinspect"), "inspect", str(tgz), "--mode", "precert",
                    "--included-tags", "cloud", "--data-format", "json", "--output-file",
                    str(report)], capture_output=True, text=True, timeout=300)
    assert json.loads(report.read_text())["summary"]["failure"] >= 1


def _conf(app: Path, name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",), strict=True)
    parser.optionxform = str  # Splunk keys are case-sensitive
    parser.read_string((app / "default" / name).read_text())
    return parser


def test_app_layout(app: Path) -> None:
    files = {p.relative_to(app).as_posix() for p in app.rglob("*") if p.is_file()}
    assert {"default/app.conf", "metadata/default.meta", "default/savedsearches.conf",
            "default/macros.conf", "default/props.conf"} <= files
    assert not any(f.startswith("local/") for f in files)


def test_every_search_selects_through_the_macros(app: Path) -> None:
    conf = _conf(app, "savedsearches.conf")
    macros = _conf(app, "macros.conf")
    for name in conf.sections():
        search = conf[name]["search"]
        # events through the macros (each sub-search of a multisearch too); tstats over the
        # index macro; or a lookup's own upkeep
        assert search.startswith(("`secretsight_events", "| tstats ", "| inputlookup ",
                                  "| multisearch [ search `secretsight_events")), name
        if search.startswith("| multisearch "):
            subs = search.split("[ search ")[1:]
            assert subs and all(sub.startswith("`secretsight_events") for sub in subs), name
        assert 'index="' not in search, name  # the index is the macro's
        assert "\\*" not in search, name  # SPL's search has no escape for `*`
        for macro in {m.split("(")[0] for m in search.split("`")[1::2]}:
            assert macro in macros or any(s.startswith(f"{macro}(") for s in macros), macro
    assert macros["secretsight_index"]["definition"] == 'index="secretsight"'
    assert 'sourcetype="secretsight:vault.audit"' in \
        macros["secretsight_events_vault_audit"]["definition"]


def test_props_cover_the_sourcetypes(app: Path) -> None:
    props = _conf(app, "props.conf")
    for dataset in ("aws.cloudtrail", "kubernetes.audit", "vault.audit"):
        assert props[f"secretsight:{dataset}"]["KV_MODE"] == "json"


def test_alerts_are_per_entity(app: Path) -> None:
    conf = _conf(app, "savedsearches.conf")
    for name in conf.sections():
        section = conf[name]
        if "action.logevent" not in section:
            continue  # a baseline search
        assert section["alert.digest_mode"] == "0", name
        assert "$result." in section["action.logevent.param.event"], name
        if section["alert.suppress"] == "1":
            assert section["alert.suppress.fields"], name
        assert section["dispatch.latest_time"] in ("-5m@m", "now"), name


def test_empty_list_disables_the_rule(app: Path) -> None:
    """decoy_paths is empty by default: decoy_access is shipped disabled, saying why."""
    conf = _conf(app, "savedsearches.conf")
    decoy = next(conf[n] for n in conf.sections() if 'rule="decoy_access"' in
                 conf[n].get("action.logevent.param.event", ""))
    assert decoy["disabled"] == "1" and "decoy_paths" in decoy["description"]
    bulk = next(conf[n] for n in conf.sections() if 'rule="bulk_read"' in
                conf[n].get("action.logevent.param.event", ""))
    assert bulk["disabled"] == "0"  # an empty allowlist only excludes: still enabled


def test_mitre_annotations(app: Path) -> None:
    conf = _conf(app, "savedsearches.conf")
    bulk = next(conf[n] for n in conf.sections() if 'rule="bulk_read"' in
                conf[n].get("action.logevent.param.event", ""))
    assert json.loads(bulk["action.correlationsearch.annotations"]) == \
        {"mitre_attack": ["T1552", "T1555"]}
