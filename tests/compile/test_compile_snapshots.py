"""Query snapshots: a few small rules (tests/compile/example_rules, laid out like sigma/rules)
compile to exactly these queries on each target. Together they cover a JSON array field, a
literal `*`, a CIDR placeholder under `not`, an event_count and a value_count correlation, and
a temporal correlation over correlations of two base rules."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from secretsight.compile import TargetOutput, compile_target
from secretsight.config import Config

EXAMPLE_RULES = Path(__file__).with_name("example_rules")
ALL_SOURCES = '{dataset=~"aws\\\\.cloudtrail|kubernetes\\\\.audit|vault\\\\.audit"}'
# What the rules require, as line filters before `| json` (drops most lines unparsed).
LINE_FILTERS = '|~ `"operation":\\s*"(?i:read)"` |~ `"category":\\s*"(?i:secret)"`'

EXPECTED_QUERIES = {
    ("loki", "example_root_policy"):
        # no line filter: the fields it requires are an array (user.roles) and a literal `*`
        '{dataset="vault.audit"} | json | json user_roles="user.roles" | '
        'user_roles=~`(?i).*"root".*` and secret_path=~`(?i)^\\*$` and source_ip!=ip("10.0.0.0/8")',
    ("loki", "example_bulk"):
        f"sum by (user_id) (count_over_time({ALL_SOURCES} {LINE_FILTERS} | json | "
        "secretsight_category=~`(?i)^secret$` and secret_operation=~`(?i)^read$` [5m])) > 3",
    ("loki", "example_paths"):
        "count without (secret_path) (sum by (user_id, secret_path) (count_over_time("
        f"{ALL_SOURCES} {LINE_FILTERS} | json | secretsight_category=~`(?i)^secret$` and "
        "secret_operation=~`(?i)^read$` [10m]))) >= 4",
    ("elastic", "example_root_policy"):
        "(user.roles:root AND secret.path:\\*) AND (NOT source.ip:10.0.0.0\\/8)",
    ("elastic", "example_bulk"):
        "sequence by user.id with maxspan=5m\n"
        '  [any where secretsight.category:"secret" and secret.operation:"read"] with runs=4',
    ("elastic", "example_paths"):
        "from logs-*-secretsight,secretsight-events metadata _id, _index, _version | where "
        'secretsight.category=="secret" and secret.operation=="read"\n'
        "| stats value_count=count_distinct(secret.path) by user.id\n| where value_count >= 4\n"
        "| keep user.id, value_count",
    # Through the app's macros (index, sourcetype, config lists); a literal `*` through the
    # app's calculated field; one result per entity.
    ("splunk", "example_root_policy"):
        '`secretsight_events_vault_audit` ("user.roles{}"="root" '
        'secretsight_literal_star_secret_path="true" NOT '
        '`secretsight_list_internal_networks(source.ip)`) | fillnull value="-" user.id | '
        "stats min(_time) as first_seen max(_time) as last_seen count as events by user.id",
    ("splunk", "example_bulk"):
        '`secretsight_events` (secretsight.category="secret" secret.operation="read") '
        "| sort 0 _time | streamstats time_window=5m count as event_count by user.id "
        "| where event_count > 3 | stats min(_time) as first_seen max(_time) as last_seen "
        "count as events by user.id",
    ("splunk", "example_paths"):
        '`secretsight_events` (secretsight.category="secret" secret.operation="read") '
        "| sort 0 _time | streamstats time_window=10m dc(secret.path) as value_count by user.id "
        "| where value_count >= 4 | stats min(_time) as first_seen max(_time) as last_seen "
        "count as events by user.id",
    # A temporal correlation over two correlations of DIFFERENT base rules (the shape of
    # cloudtrail_list_secrets): one aggregation, each part counting only its own base's events.
    ("loki", "example_list_then_read"):
        'sum by (user_id) (count_over_time({dataset=~"aws\\\\.cloudtrail|kubernetes\\\\.audit|vault\\\\'
        '.audit"} |~ `"operation":\\s*"(?i:list)"` | json | secret_operation=~`(?i)^list$` [10m]))'
        ' >= 1 and count without (secret_path) (sum by (user_id, secret_path) (count_over_time({d'
        'ataset=~"aws\\\\.cloudtrail|kubernetes\\\\.audit|vault\\\\.audit"} |~ `"operation":\\s*"(?i:rea'
        'd)"` |~ `"category":\\s*"(?i:secret)"` | json | secretsight_category=~`(?i)^secret$` and '
        'secret_operation=~`(?i)^read$` [10m]))) >= 3',
    ("elastic", "example_list_then_read"):
        'from logs-*-secretsight,secretsight-events metadata _id, _index, _version | where (secre'
        't.operation=="list") or (secretsight.category=="secret" and secret.operation=="read")\n| '
        'eval _part_0=case(secret.operation=="list", 1, 0), _part_1=case(secretsight.category=="s'
        'ecret" and secret.operation=="read", secret.path)\n| stats event_count_0=sum(_part_0), va'
        'lue_count_1=count_distinct(_part_1) by user.id\n| where event_count_0 >= 1 and value_coun'
        't_1 >= 3\n| keep user.id, event_count_0, value_count_1',
    ("splunk", "example_list_then_read"):
        '| multisearch [ search `secretsight_events` (secret.operation="list") | eval _part=0 ] ['
        ' search `secretsight_events` (secretsight.category="secret" secret.operation="read") | e'
        'val _part=1 ] | sort 0 _time | streamstats time_window=10m count(eval(_part=0)) as event'
        "_count_0 dc(eval(if(_part=1, 'secret.path', null()))) as value_count_1 by user.id | wher"
        'e event_count_0 >= 1 AND value_count_1 >= 3 | stats min(_time) as first_seen max(_time) '
        'as last_seen count as events by user.id',
}


@cache
def snapshot_output(target: str) -> TargetOutput:
    return compile_target(target, config=Config(internal_networks=["10.0.0.0/8"]),
                          paths=[EXAMPLE_RULES])


@pytest.mark.parametrize(("target", "rule"), sorted(EXPECTED_QUERIES), ids=[f"{t}/{r}" for t, r in sorted(EXPECTED_QUERIES)])
def test_query_snapshot(target: str, rule: str) -> None:
    out = snapshot_output(target)
    assert not out.errors, [str(e) for e in out.errors]
    assert out.queries[rule] == [EXPECTED_QUERIES[(target, rule)]]


@pytest.mark.parametrize("target", ["loki", "elastic", "splunk"])
def test_building_block_not_emitted(target: str) -> None:
    """example_reads only feeds the correlations: no query, alert or matrix row of its own."""
    out = snapshot_output(target)
    assert "example_reads" not in out.queries
    assert "example_reads" not in {c.rule for c in out.support}


def test_snapshot_ruler_entry() -> None:
    import yaml

    doc = yaml.safe_load(snapshot_output("loki").files["loki/secretsight-rules.yaml"])
    rules = {r["alert"]: r for g in doc["groups"] for r in g["rules"]}
    assert rules["example_root_policy"]["expr"] == (
        f"sum by (user_id) (count_over_time({EXPECTED_QUERIES[('loki', 'example_root_policy')]} [1m])) > 0")
    assert rules["example_root_policy"]["labels"] == {
        "anomaly": "root_token", "rule_id": "0b7c6f0e-0000-4000-8000-000000000001",
        "rule_name": "example_root_policy", "severity": "critical", "source": "vault",
        "team": "security"}
    assert rules["example_bulk"]["expr"] == EXPECTED_QUERIES[("loki", "example_bulk")]


def test_snapshot_kibana_threat_offline() -> None:
    import json

    docs = {json.loads(line)["rule_id"]: json.loads(line) for line in
            snapshot_output("elastic").files["elastic/secretsight-rules.ndjson"].splitlines()}
    bulk = docs["0b7c6f0e-0000-4000-8000-000000000003"]
    assert bulk["type"] == "eql" and bulk["from"] == "now-10m" and bulk["interval"] == "5m"
    assert bulk["threat"] == [{
        "framework": "MITRE ATT&CK",
        "tactic": {"id": "TA0006", "name": "Credential Access",
                   "reference": "https://attack.mitre.org/tactics/TA0006/"},
        "technique": [{
            "id": "T1555", "name": "Credentials from Password Stores",
            "reference": "https://attack.mitre.org/techniques/T1555/",
            "subtechnique": [{"id": "T1555.006", "name": "Cloud Secrets Management Stores",
                              "reference": "https://attack.mitre.org/techniques/T1555/006/"}],
        }],
    }]
    paths = docs["0b7c6f0e-0000-4000-8000-000000000004"]
    assert paths["type"] == "esql" and paths["from"] == "now-15m" and "index" not in paths


def test_snapshot_savedsearch_schedule() -> None:
    import configparser

    conf = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    conf.optionxform = str
    conf.read_string(snapshot_output("splunk").files["splunk/secretsight/default/savedsearches.conf"])
    bulk = conf["SecretSight - Example Bulk Read"]
    # window 5m + schedule 5m: a burst of the window's length never falls between two runs;
    # the window ends 5m ago (targets.splunk.lag) so late events are searched.
    assert (bulk["dispatch.earliest_time"], bulk["dispatch.latest_time"]) == ("-15m@m", "-5m@m")
    # one alert per identity, throttled per identity (not the whole rule)
    assert (bulk["alert.digest_mode"], bulk["alert.suppress.fields"],
            bulk["alert.suppress.period"]) == ("0", "user.id", "5m")
    assert 'user.id="$result.user.id$"' in bulk["action.logevent.param.event"]
    plain = conf["SecretSight - Example Root Policy From Outside"]
    assert (plain["dispatch.earliest_time"], plain["dispatch.latest_time"],
            plain["alert.severity"]) == ("-10m@m", "-5m@m", "6")
    # staggered over the 5-minute schedule: each start minute takes its share, no more
    crons = [conf[n]["cron_schedule"] for n in conf.sections() if "Baseline prune" not in n]
    assert all(c.endswith("-59/5 * * * *") for c in crons)
    per_minute = [crons.count(f"{m}-59/5 * * * *") for m in range(5)]
    assert max(per_minute) - min(per_minute) <= 1, per_minute


def test_event_count_above_eql_runs_limit_becomes_threshold_rule() -> None:
    """EQL accepts at most 100 `runs`: a larger configured count compiles to a Kibana
    threshold rule on the base rule's Lucene query."""
    import json
    from datetime import timedelta

    from luqum.parser import parser

    from secretsight.config import CountWindow, Thresholds

    config = Config(thresholds=Thresholds(bulk_read=CountWindow(count=150, window=timedelta(minutes=5))))
    out = compile_target("elastic", config=config)
    docs = [json.loads(line) for line in out.files["elastic/secretsight-rules.ndjson"].splitlines()]
    bulk = next(d for d in docs if d["meta"]["secretsight"]["rule_name"] == "bulk_read")
    assert bulk["type"] == "threshold" and bulk["language"] == "lucene"
    assert bulk["threshold"] == {"field": ["user.id"], "value": 151}
    parser.parse(bulk["query"])
    cell = next(c for c in out.support if c.rule == "bulk_read")
    assert cell.details == ("threshold_rule",)
