"""Target-native forms of the stateful anomaly classes (secretsight.compile.stateful): the
support matrix says compiled or unsupported-with-reason per target; what compiles parses with
the target's parser where one runs here (LogQL via lezer-logql, Lucene via luqum), has the
fields its consumer needs (Loki ruler, Kibana new_terms / ES|QL rules, Splunk stanzas), follows
the user config, matches its snapshots and is byte-identical across compiles.

Snapshots: tests/compile/stateful_snapshots/<target>/... ; regenerate after a deliberate
change with `SECRETSIGHT_REGEN_SNAPSHOTS=1 pytest tests/compile/test_compile_stateful.py` and
review the diff."""

from __future__ import annotations

import configparser
import json
import os
import re
from datetime import timedelta
from functools import cache
from pathlib import Path

import pytest
import yaml
from luqum.parser import parser as lucene_parser
from support.compiled_rules import compiled
from support.logql import parse_logql

from secretsight.compile import compile_target, compile_targets
from secretsight.compile.stateful import RULES, SOURCE, UNSUPPORTED, lucene_glob
from secretsight.config import Allowlists, Config, FirstPathAccess, Stateful, SystemIdentities
from secretsight.findings import ANOMALY_CLASSES

HERE = Path(__file__).parent
SNAPSHOT_DIR = HERE / "stateful_snapshots"
# A small rule set: the stateful forms do not depend on it, but the Splunk schedule offsets do
# (staggered over the stanzas sorted by title), so renaming its titles changes splunk/rules.json.
EXAMPLE_RULES = HERE / "example_rules"
TARGETS = ("elastic", "loki", "splunk")
NAMES = [r.name for r in RULES]

# The decision per target (docs/stateful-targets.md says why).
EXPECTED = {
    ("elastic", "audit_gap"): "compiled",
    ("elastic", "dormant_identity"): "compiled",
    ("elastic", "first_path_access"): "compiled",
    ("elastic", "first_seen_principal"): "compiled",
    ("elastic", "new_user_agent"): "compiled",
    ("elastic", "rotation_without_deploy"): "unsupported",
    ("elastic", "rotation_without_read"): "compiled",
    ("loki", "audit_gap"): "compiled",
    ("loki", "dormant_identity"): "unsupported",
    ("loki", "first_path_access"): "unsupported",
    ("loki", "first_seen_principal"): "unsupported",
    ("loki", "new_user_agent"): "unsupported",
    ("loki", "rotation_without_deploy"): "unsupported",
    ("loki", "rotation_without_read"): "unsupported",
    ("splunk", "audit_gap"): "compiled",
    ("splunk", "dormant_identity"): "compiled",
    ("splunk", "first_path_access"): "compiled",
    ("splunk", "first_seen_principal"): "compiled",
    ("splunk", "new_user_agent"): "compiled",
    ("splunk", "rotation_without_deploy"): "unsupported",
    ("splunk", "rotation_without_read"): "compiled",
}
CELL_IDS = [f"{t}/{n}" for t, n in sorted(EXPECTED)]

# Every tunable away from its default, so a value that ignored the config would show.
TUNED = Config(
    stateful=Stateful(
        first_path_access=FirstPathAccess(learning_period=timedelta(days=7)),
        dormant_after=timedelta(days=90),
        rotation_read_window=timedelta(hours=1),
        audit_gap_max_silence=timedelta(minutes=5),
        audit_gap_baseline=timedelta(minutes=30),
        first_seen_principal_history=timedelta(days=21),
        user_agent_learning_period=timedelta(days=10),
    ),
    allowlists=Allowlists(first_path_access=["system:serviceaccount:ci:*", "svc-backup"],
                          first_seen_principal=["svc-backup"], new_user_agent=["ops-*"]),
    system_identities=SystemIdentities(kubernetes=["system:serviceaccount:*:kube-state-metrics"]),
)


@cache
def tuned(target: str):
    return compile_target(target, config=TUNED, paths=[EXAMPLE_RULES])


def _cell(target: str, name: str):
    return next(c for c in compiled(target).support if c.rule == name)


def test_every_stateful_class_is_an_anomaly_class() -> None:
    assert set(NAMES) <= set(ANOMALY_CLASSES)
    assert {n for _, n in EXPECTED} == set(NAMES)


@pytest.mark.parametrize(("target", "name"), sorted(EXPECTED), ids=CELL_IDS)
def test_matrix_cell(target: str, name: str) -> None:
    cell = _cell(target, name)
    assert cell.status == EXPECTED[(target, name)]
    if cell.status == "unsupported":
        assert cell.details == (UNSUPPORTED[(target, name)],) and len(cell.details[0]) > 40
        assert name not in compiled(target).queries
    else:
        assert cell.details == ()
        assert compiled(target).queries[name]


def test_matrix_files_list_stateful_rows() -> None:
    out = compile_targets(TARGETS, paths=[EXAMPLE_RULES])
    cells = json.loads(out.files["support-matrix.json"])["cells"]
    got = {(c["target"], c["rule"]): c["status"] for c in cells if c["rule"] in NAMES}
    assert got == EXPECTED
    md = out.files["support-matrix.md"]
    for name in NAMES:
        assert re.search(rf"^\| {name} \|", md, re.MULTILINE), name


# --- Loki -------------------------------------------------------------------------------------

def _ruler(out) -> list[dict]:
    doc = yaml.safe_load(out.files["loki/secretsight-rules.yaml"])
    return [r for g in doc["groups"] if g["name"] == f"secretsight-{SOURCE}" for r in g["rules"]]


def test_loki_audit_gap_parses() -> None:
    exprs = [r["expr"] for r in _ruler(compiled("loki"))]
    assert len(exprs) == 3  # one per dataset
    results = parse_logql(exprs)
    assert [r["ok"] for r in results] == [True] * 3, results


def test_loki_grammar_check_can_fail() -> None:
    results = parse_logql(['sum(count_over_time({dataset="x"}[1m])) > 0 unless '
                           'sum(count_over_time({dataset="x"}[1m])'])
    assert results[0]["ok"] is False


@pytest.mark.parametrize("dataset", ["aws.cloudtrail", "kubernetes.audit", "vault.audit"])
def test_loki_audit_gap_rule(dataset: str) -> None:
    rule = next(r for r in _ruler(tuned("loki")) if r["labels"]["dataset"] == dataset)
    assert rule["alert"] == "audit_gap"
    assert rule["labels"]["anomaly"] == "audit_gap" and rule["labels"]["source"] == SOURCE
    # silence 5m, baseline 30m: 12 slices of 150s (half the silence) before the last 5m
    offsets = ["5m", "450s", "10m", "750s", "15m", "1050s", "20m", "1350s", "25m", "1650s",
               "30m", "1950s"]
    assert rule["expr"] == " and ".join(
        f'sum(count_over_time({{dataset="{dataset}"}}[150s] offset {o})) > 0' for o in offsets
    ) + f' unless sum(count_over_time({{dataset="{dataset}"}}[5m]))'


def test_loki_audit_gap_too_many_slices_is_unsupported() -> None:
    config = Config(stateful=Stateful(audit_gap_max_silence=timedelta(seconds=10)))
    out = compile_target("loki", config=config, paths=[EXAMPLE_RULES])
    cell = next(c for c in out.support if c.rule == "audit_gap")
    assert cell.status == "unsupported" and "slices" in cell.details[0]


def test_loki_stream_labels_are_the_shippers() -> None:
    """The `dataset` stream label is what both shippers' Loki sinks set (Fluent Bit: static,
    one output per source; tests/fluentbit/test_loki_output.py ships the golden events)."""
    repo = HERE.parents[1]
    assert 'dataset: "{{ event.dataset }}"' in (repo / "vector" / "vector.yaml").read_text()
    fluentbit = (repo / "fluentbit" / "fluent-bit.yaml").read_text()
    for dataset in ("vault.audit", "aws.cloudtrail", "kubernetes.audit"):
        assert f"labels: job=secretsight, dataset={dataset}\n" in fluentbit


# --- Elastic ----------------------------------------------------------------------------------

def _kibana(out) -> dict[str, dict]:
    docs = [json.loads(line) for line in out.files["elastic/secretsight-rules.ndjson"].splitlines()]
    return {d["meta"]["secretsight"]["rule_name"]: d for d in docs
            if d["meta"]["secretsight"]["rule_name"] in NAMES}


@pytest.mark.parametrize(("name", "fields", "history"), [
    ("first_path_access", ["user.id", "secret.path"], "now-7d"),
    ("dormant_identity", ["user.id"], "now-90d"),
    ("first_seen_principal", ["user.id"], "now-21d"),
    ("new_user_agent", ["user.id", "user_agent.original"], "now-10d"),
], ids=["first_path_access", "dormant_identity", "first_seen_principal", "new_user_agent"])
def test_kibana_new_terms(name: str, fields: list[str], history: str) -> None:
    doc = _kibana(tuned("elastic"))[name]
    assert (doc["type"], doc["language"]) == ("new_terms", "lucene")
    assert doc["new_terms_fields"] == fields and len(fields) <= 3  # Kibana's limit
    assert doc["history_window_start"] == history
    assert doc["from"] == "now-6m" and doc["interval"] == "5m"  # interval + 1m ingest delay
    assert doc["index"] == ["logs-*-secretsight", "secretsight-events"]
    assert f"anomaly:{name}" in doc["tags"]
    lucene_parser.parse(doc["query"])


def test_kibana_allowlist_escaped() -> None:
    query = _kibana(tuned("elastic"))["first_path_access"]["query"]
    assert query.endswith(r"AND NOT user.id:(system\:serviceaccount\:ci\:* OR svc\-backup)")
    tree = lucene_parser.parse(query)
    assert "system\\:serviceaccount\\:ci\\:*" in str(tree)


@pytest.mark.parametrize("value", ["a:b*", "x y", 'q"uote', "p/a(t)h?"])
def test_lucene_glob_parses_as_one_term(value: str) -> None:
    from luqum.tree import Term

    tree = lucene_parser.parse(f"user.id:{lucene_glob(value)}")
    assert isinstance(tree.expr, Term)


@pytest.mark.parametrize(("name", "look_back"), [("audit_gap", "now-35m"),
                                                 ("rotation_without_read", "now-65m")],
                         ids=["audit_gap", "rotation_without_read"])
def test_kibana_esql_rule(name: str, look_back: str) -> None:
    doc = _kibana(tuned("elastic"))[name]
    assert (doc["type"], doc["language"]) == ("esql", "esql") and "index" not in doc
    assert doc["from"] == look_back
    _check_esql_shape(doc["query"])


def _check_esql_shape(query: str) -> None:
    """No ES|QL parser runs here: check the command pipeline, quotes and parentheses."""
    commands = [part.strip().split(" ", 1)[0] for part in query.split("\n| ")]
    assert commands[0] == "from" and set(commands[1:]) <= {"where", "eval", "stats", "keep"}
    assert commands[-2:] == ["where", "keep"]  # the alert condition, then what the alert shows
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', query)
    assert unquoted.count('"') % 2 == 0
    depth = 0
    for ch in unquoted:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0


def test_esql_audit_gap_uses_config() -> None:
    query = _kibana(tuned("elastic"))["audit_gap"]["query"]
    assert query.endswith("| where last_seen < now() - 300 seconds\n| keep event.dataset, last_seen")


def test_esql_rotation_window_uses_config() -> None:
    query = _kibana(tuned("elastic"))["rotation_without_read"]["query"]
    # window 1h; rotations whose window closed within the last interval (5m)
    assert "rotated_at <= now() - 3600 seconds and rotated_at > now() - 3900 seconds" in query


# --- Splunk -----------------------------------------------------------------------------------

def _stanzas(out) -> dict[str, configparser.SectionProxy]:
    conf = configparser.ConfigParser(interpolation=None, delimiters=("=",), strict=True)
    conf.optionxform = str
    conf.read_string(out.files["splunk/secretsight/default/savedsearches.conf"])
    return {s["action.logevent.param.event"].split('rule="')[1].split('"')[0]: s
            for s in (conf[n] for n in conf.sections()) if "action.logevent.param.event" in s}


@pytest.mark.parametrize(("name", "earliest", "latest"), [
    ("audit_gap", "-7d", "now"),  # index time (tstats), up to the search time
    ("first_path_access", "-10m@m", "-5m@m"),  # one interval, 5m lag; baseline in a lookup
    ("dormant_identity", "-10m@m", "-5m@m"),
    ("rotation_without_read", "-70m@m", "-5m@m"),  # window 1h + interval, 5m lag
    ("first_seen_principal", "-10m@m", "-5m@m"),
    ("new_user_agent", "-10m@m", "-5m@m"),
], ids=["audit_gap", "first_path_access", "dormant_identity", "rotation_without_read",
        "first_seen_principal", "new_user_agent"])
def test_splunk_stanza(name: str, earliest: str, latest: str) -> None:
    st = _stanzas(tuned("splunk"))[name]
    assert (st["dispatch.earliest_time"], st["dispatch.latest_time"]) == (earliest, latest)
    assert re.fullmatch(r"[0-4]-59/5 \* \* \* \*", st["cron_schedule"]) and st["enableSched"] == "1"
    assert f'anomaly="{name}"' in st["action.logevent.param.event"]
    assert st["alert.digest_mode"] == "0"  # per result: one alert per entity
    search = st["search"]
    assert search.startswith(("`secretsight_events` ", "| tstats ")) and "| where " in search
    assert "\n" not in search and "| bin _time" not in search
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', search)
    assert unquoted.count("(") == unquoted.count(")")


def test_first_seen_exempts_allowlist_and_platform_controllers() -> None:
    kibana = _kibana(tuned("elastic"))
    assert kibana["first_seen_principal"]["query"].endswith(
        r"AND NOT user.id:(svc\-backup OR system\:serviceaccount\:*\:kube\-state\-metrics)")
    assert kibana["new_user_agent"]["query"].endswith(
        r"AND NOT user.id:(ops\-* OR system\:serviceaccount\:*\:kube\-state\-metrics)")
    st = _stanzas(tuned("splunk"))
    assert ('NOT user.id="svc-backup" NOT user.id="system:serviceaccount:*:kube-state-metrics"'
            in st["first_seen_principal"]["search"])
    assert "by user.id user_agent.original" in st["new_user_agent"]["search"]


def test_splunk_allowlist_and_silence_from_config() -> None:
    st = _stanzas(tuned("splunk"))
    assert 'NOT user.id="system:serviceaccount:ci:*" NOT user.id="svc-backup"' in \
        st["first_path_access"]["search"]
    assert st["audit_gap"]["search"].endswith("| where now() - last_indexed > 300")
    # learning period 7d, dormancy 90d: from the config, read against the lookups
    assert 'known_since <= relative_time(now(), "-604800s")' in st["first_path_access"]["search"]
    assert "first_seen - previous_seen > 7776000" in st["dormant_identity"]["search"]


def test_splunk_baselines_are_lookups_not_raw_scans() -> None:
    """No search scans more than its window (+ lag) of raw events: the first-seen baselines
    are KV store lookups, upserted one interval behind the alerts and pruned daily."""
    conf = configparser.ConfigParser(interpolation=None, delimiters=("=",), strict=True)
    conf.optionxform = str
    conf.read_string(tuned("splunk").files["splunk/secretsight/default/savedsearches.conf"])
    upserts = {n: conf[n] for n in conf.sections() if n.startswith("SecretSight - Baseline - ")}
    prunes = {n: conf[n] for n in conf.sections()
              if n.startswith("SecretSight - Baseline prune - ")}
    assert len(upserts) == len(prunes) == 4  # identities, paths, readers, agents
    for section in upserts.values():
        assert (section["dispatch.earliest_time"], section["dispatch.latest_time"]) == \
            ("-15m@m", "-10m@m")
        assert "| outputlookup append=true key_field=_key secretsight_" in section["search"]
    retention = {n.rsplit(" ", 1)[1]: conf[n]["search"] for n in prunes}
    # 2 x dormant_after (90d) for identities, the learning period (7d) for paths
    assert '"-15552000s"' in retention["secretsight_identity_seen"]
    assert '"-604800s"' in retention["secretsight_path_seen"]
    # the history window (21d) for readers, the learning period (10d) for user agents
    assert '"-1814400s"' in retention["secretsight_reader_seen"]
    assert '"-864000s"' in retention["secretsight_agent_seen"]
    assert all(conf[n]["cron_schedule"] == "17 3 * * *" for n in prunes)
    for name in ("first_path_access", "dormant_identity", "new_user_agent"):
        assert "| lookup secretsight_identity_seen " in _stanzas(tuned("splunk"))[name]["search"]
    assert "| lookup secretsight_reader_seen " in \
        _stanzas(tuned("splunk"))["first_seen_principal"]["search"]


def test_splunk_one_stanza_per_compiled_class() -> None:
    compiled_names = {n for (t, n), s in EXPECTED.items() if t == "splunk" and s == "compiled"}
    assert set(_stanzas(compiled("splunk"))) & set(NAMES) == compiled_names


# --- snapshots and determinism --------------------------------------------------------------------

def _snapshot_items(target: str) -> dict[str, str]:
    """What the snapshots pin for a target: each stateful query file, and the stateful
    entries of the target's rules file (ruler rules, Kibana documents, Splunk stanzas)."""
    out = tuned(target)
    items = {rel: text for rel, text in out.files.items() if f"/{SOURCE}/" in rel}
    if target == "loki":
        entries: object = _ruler(out)
    elif target == "elastic":
        entries = _kibana(out)
    else:
        entries = {n: dict(s) for n, s in _stanzas(out).items() if n in NAMES}
    items[f"{target}/rules.json"] = json.dumps(entries, indent=1, sort_keys=True) + "\n"
    return items


SNAPSHOTS = sorted((t, rel) for t in TARGETS for rel in _snapshot_items(t))


@pytest.mark.parametrize(("target", "rel"), SNAPSHOTS, ids=[rel for _, rel in SNAPSHOTS])
def test_stateful_snapshot(target: str, rel: str) -> None:
    text = _snapshot_items(target)[rel]
    path = SNAPSHOT_DIR / rel
    if os.environ.get("SECRETSIGHT_REGEN_SNAPSHOTS"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8", newline="\n")
    assert path.read_text("utf-8") == text


def test_snapshot_files_all_used() -> None:
    """A snapshot no compile produces any more is stale."""
    on_disk = {p.relative_to(SNAPSHOT_DIR).as_posix()
               for p in SNAPSHOT_DIR.rglob("*") if p.is_file()}
    assert on_disk == {rel for _, rel in SNAPSHOTS}


@pytest.mark.parametrize("target", TARGETS)
def test_byte_identical_compiles(target: str) -> None:
    again = compile_target(target, config=TUNED, paths=[EXAMPLE_RULES])
    assert again.files == tuned(target).files
    assert [c.to_json() for c in again.support] == [c.to_json() for c in tuned(target).support]


@pytest.mark.parametrize("target", TARGETS)
def test_sigma_rule_named_like_a_stateful_class_is_an_error(tmp_path: Path, target: str) -> None:
    """Two matrix rows with one name would hide one of them: the clash is reported."""
    text = (EXAMPLE_RULES / "vault" / "example_root_policy.yml").read_text()
    text = text.replace("name: example_root_policy", "name: audit_gap").replace(
        "0b7c6f0e-0000-4000-8000-000000000001", "0b7c6f0e-0000-4000-8000-0000000000aa")
    (tmp_path / "vault").mkdir()
    (tmp_path / "vault" / "audit_gap.yml").write_text(text)
    out = compile_target(target, paths=[tmp_path])
    assert [c.rule for c in out.support].count("audit_gap") == 1
    assert any("named 'audit_gap'" in str(e) for e in out.errors), [str(e) for e in out.errors]
