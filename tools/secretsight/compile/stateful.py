"""Target-native forms of the stateful anomaly classes (first_path_access, dormant_identity,
rotation_without_read, rotation_without_deploy, audit_gap), where a target can express them.

Sigma has no absence or "first seen" construct, so these are not Sigma rules: this module
writes them straight in each target's language from the user config (`stateful.*`), and lists
them in the support matrix like the Sigma rules (row name = the anomaly class, source
`stateful`). The stateful detectors (`secretsight.detect`) stay authoritative; the target forms
are approximations, each documented in docs/stateful-targets.md.

Per target, a class is either compiled (`TargetOutput.queries[name]`, files under
`<target>/.../stateful/`, an entry in the target's rules file) or unsupported with the reason.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from secretsight import anomalies
from secretsight.compile.model import Support, TargetOutput, Unsupported
from secretsight.config import Config, format_duration
from secretsight.errors import SecretSightError

SOURCE = "stateful"
DATASETS: tuple[str, ...] = ("aws.cloudtrail", "kubernetes.audit", "vault.audit")
# Stable rule ids: uuid5 of the class name, so two compiles (and two releases) agree.
_NAMESPACE = uuid.UUID("5ec2e751-6b7a-4c3e-9d0a-57a7ef01a5e1")


@dataclass(frozen=True)
class StatefulRule:
    name: str  # = the anomaly class
    title: str
    description: str
    level: str

    @property
    def anomaly(self) -> str:
        return self.name

    @property
    def id(self) -> str:
        return str(uuid.uuid5(_NAMESPACE, self.name))


def _rule(name: str, description: str) -> StatefulRule:
    """A target-native form: its title and level are the class's (the anomaly catalogue)."""
    facts = anomalies.anomaly(name)
    return StatefulRule(name, facts.title, description, facts.severity)


RULES: tuple[StatefulRule, ...] = (
    _rule("audit_gap",
          "A secret-store audit source (dataset) that was emitting events has sent none "
          "for longer than stateful.audit_gap_max_silence."),
    _rule("dormant_identity",
          "An identity acts after no activity in the last stateful.dormant_after "
          "(approximation: identities never seen before match too)."),
    _rule("first_path_access",
          "An identity reads a secret.path it has not read in the last "
          "stateful.first_path_access.learning_period."),
    _rule("rotation_without_deploy",
          "A secret with known consumers was rotated and none of them rolled out within "
          "stateful.rotation_deploy_window."),
    _rule("rotation_without_read",
          "A secret's value was replaced and no read of its secret.path followed within "
          "stateful.rotation_read_window."),
)

# Why a class cannot be compiled for a target (the matrix's reason).
_NO_HISTORY_LOKI = ("LogQL keeps no per-value history: `unless` against an `offset` range query "
                    "spanning the whole {what} would rescan that period on every ruler "
                    "evaluation, beyond Loki's query limits; use the stateful detector")
UNSUPPORTED: dict[tuple[str, str], str] = {
    ("loki", "first_path_access"): _NO_HISTORY_LOKI.format(
        what="learning period (stateful.first_path_access.learning_period)"),
    ("loki", "dormant_identity"): _NO_HISTORY_LOKI.format(
        what="dormancy period (stateful.dormant_after)"),
    ("loki", "rotation_without_read"): (
        "a LogQL metric query cannot compare the time of one secret.path's rotation with the "
        "times of its later reads (no per-series 'A not followed by B within W'); use the "
        "stateful detector"),
}
_DEPLOY_REASON = (
    "consumers of a secret come from config.secret_consumers AND from Deployment annotations "
    "learned over time (kubernetes.secret_paths), and a rollout (a Deployment patch or a "
    "ReplicaSet named <deployment>-<hash>) must be joined to the rotated secret.path through "
    "that mapping: state a query does not keep (a config-only form would silently miss the "
    "annotated consumers); use the stateful detector")
for _t in ("elastic", "loki", "splunk"):
    UNSUPPORTED[(_t, "rotation_without_deploy")] = _DEPLOY_REASON


def _rules(target: str, out: TargetOutput) -> list[StatefulRule]:
    """The stateful rules to add to `out`: a Sigma rule of the same name would make two matrix
    rows one, so it is an error (reported, that class skipped) rather than a silent overwrite."""
    taken = {c.rule for c in out.support} | set(out.queries)
    for rule in RULES:
        if rule.name in taken:
            out.errors.append(SecretSightError(
                f"{target}: a rule is named {rule.name!r}, the name of the target-native "
                "stateful rule; rename it"))
    return [r for r in RULES if r.name not in taken]


def _seconds(td: timedelta) -> int:
    return int(td.total_seconds())


def audit_gap_lookback(config: Config, interval: timedelta) -> timedelta:
    """How far back a target looks for a source's last event: the baseline (a source counts once
    it emitted for that long), at least one schedule interval so a silence starting between two
    runs is seen, plus the allowed silence."""
    s = config.stateful
    return max(s.audit_gap_baseline, interval) + s.audit_gap_max_silence


# --------------------------------------------------------------------------------------------
# Loki


def loki_audit_gap(config: Config, interval: timedelta) -> dict[str, str]:
    """dataset -> ruler expression: the dataset had events in the look-back and none in the
    last `max_silence`. `absent_over_time` alone would also fire for a source never shipped,
    and joining it to the look-back count (labels {dataset} vs {}) needs `and on()`, which
    older Loki grammars lack; `unless` between two label-less sums says the same everywhere."""
    silence = format_duration(config.stateful.audit_gap_max_silence)
    lookback = format_duration(audit_gap_lookback(config, interval))
    return {
        ds: (f'sum(count_over_time({{dataset="{ds}"}}[{lookback}])) > 0 unless '
             f'sum(count_over_time({{dataset="{ds}"}}[{silence}]))')
        for ds in DATASETS
    }


def compile_loki(config: Config, interval: timedelta, out: TargetOutput
                 ) -> dict[str, list[dict[str, Any]]]:
    """Add the stateful classes to a Loki output; returns the ruler group(s) to write."""
    rules: list[dict[str, Any]] = []
    for rule in _rules("loki", out):
        if (reason := UNSUPPORTED.get(("loki", rule.name))) is not None:
            out.support.append(Support(rule.name, "loki", "unsupported", (reason,)))
            continue
        assert rule.name == "audit_gap"
        exprs = loki_audit_gap(config, interval)
        out.queries[rule.name] = [exprs[ds] for ds in DATASETS]
        out.files[f"loki/queries/{SOURCE}/{rule.name}.logql"] = "\n".join(
            exprs[ds] for ds in DATASETS) + "\n"
        for ds in DATASETS:
            rules.append({
                "alert": rule.name,
                "expr": exprs[ds],
                "for": "0m",
                "labels": {"anomaly": rule.anomaly, "dataset": ds, "rule_id": rule.id,
                           "rule_name": rule.name, "severity": rule.level, "source": SOURCE},
                "annotations": {"summary": f"{rule.title}: {ds}",
                                "description": rule.description},
            })
        out.support.append(Support(rule.name, "loki", "compiled"))
    return {SOURCE: rules} if rules else {}


# --------------------------------------------------------------------------------------------
# Elastic (Lucene for new_terms, ES|QL for absence)

_LUCENE_SPECIAL = re.compile(r'([+\-=&|><!(){}\[\]^"~:\\/ ])')


def lucene_glob(value: str) -> str:
    """A config glob (`*`, `?`) as a Lucene term: every other special character escaped."""
    return _LUCENE_SPECIAL.sub(r"\\\1", value)


_EFFECTIVE_LUCENE = ("NOT event.outcome:failure AND NOT vault.entry_type:request AND "
                     "NOT kubernetes.stage:(RequestReceived OR ResponseStarted)")


def lucene_first_path_access(config: Config) -> str:
    query = f"secret.operation:read AND secret.path:* AND user.id:* AND {_EFFECTIVE_LUCENE}"
    allow = config.allowlists.first_path_access
    if allow:
        query += " AND NOT user.id:(" + " OR ".join(lucene_glob(a) for a in allow) + ")"
    return query


def lucene_dormant_identity() -> str:
    return f"user.id:* AND {_EFFECTIVE_LUCENE}"


def _esql_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _esql_in(field: str, values: list[str] | tuple[str, ...]) -> str:
    return f"{field} in ({', '.join(_esql_str(v) for v in values)})"


# Null-safe: in ES|QL `not (x == "a")` is null (row dropped) when x is missing.
_EFFECTIVE_ESQL = ('(event.outcome is null or event.outcome != "failure") and '
                   '(vault.entry_type is null or vault.entry_type != "request") and '
                   '(kubernetes.stage is null or kubernetes.stage not in '
                   '("RequestReceived", "ResponseStarted"))')
_ROTATION_ESQL = (
    'secretsight.category == "secret" and secret.path is not null and ('
    '(event.dataset == "vault.audit" and secret.operation == "write" and '
    'event.action in ("create", "update", "patch") and '
    '(vault.mount_type is null or vault.mount_type == "kv") and '
    '(vault.path is null or not vault.path like "*/undelete/*")) or '
    '(event.dataset == "aws.cloudtrail" and '
    'event.action in ("PutSecretValue", "RotateSecret", "RotationSucceeded")) or '
    '(event.dataset == "kubernetes.audit" and secret.operation == "write" and '
    'event.action in ("update", "patch")))')


def esql_audit_gap(config: Config, index: list[str]) -> str:
    silence = _seconds(config.stateful.audit_gap_max_silence)
    return (f"from {','.join(index)}\n| where {_esql_in('event.dataset', DATASETS)}\n"
            "| stats last_seen = max(@timestamp) by event.dataset\n"
            f"| where last_seen < now() - {silence} seconds")


def esql_rotation_without_read(config: Config, index: list[str], interval: timedelta) -> str:
    """Rotations whose window closed during the last schedule interval, with no read of the
    path after the (last) rotation: the look-back is window + interval."""
    window = _seconds(config.stateful.rotation_read_window)
    oldest = window + _seconds(interval)
    return (f"from {','.join(index)}\n"
            f'| where {_EFFECTIVE_ESQL} and (secret.operation == "read" or ({_ROTATION_ESQL}))\n'
            '| eval read_at = case(secret.operation == "read", @timestamp), '
            'rotated_at = case(secret.operation != "read", @timestamp)\n'
            "| stats rotated_at = max(rotated_at), last_read = max(read_at) by secret.path\n"
            f"| where rotated_at <= now() - {window} seconds and "
            f"rotated_at > now() - {oldest} seconds and "
            "(last_read is null or last_read < rotated_at)")


def _kibana_common(rule: StatefulRule, interval: timedelta, look_back: timedelta
                   ) -> dict[str, Any]:
    from secretsight.compile.elastic import RISK_SCORE, SEVERITY

    return {
        "name_key": rule.name,
        "rule_id": rule.id,
        "name": rule.title,
        "description": rule.description,
        "risk_score": RISK_SCORE[rule.level],
        "severity": SEVERITY[rule.level],
        "interval": format_duration(interval),
        "from": f"now-{format_duration(look_back)}",
        "to": "now",
        "enabled": True,
        "author": ["SecretSight"],
        "license": "Apache-2.0",
        "references": [],
        "false_positives": [],
        "tags": sorted({"SecretSight", f"anomaly:{rule.anomaly}", f"source:{SOURCE}",
                        f"rule:{rule.name}"}),
        "threat": [],
        "max_signals": 100,
        "version": 1,
        "meta": {"secretsight": {"anomaly": rule.anomaly, "rule_name": rule.name}},
    }


def elastic_document(rule: StatefulRule, config: Config, index: list[str],
                     interval: timedelta) -> dict[str, Any]:
    s = config.stateful
    # A query rule's look-back: the interval plus a minute of ingestion delay (as elastic.py).
    query_back = interval + timedelta(minutes=1)
    if rule.name == "audit_gap":
        doc = _kibana_common(rule, interval, audit_gap_lookback(config, interval))
        doc.update({"type": "esql", "language": "esql", "query": esql_audit_gap(config, index)})
    elif rule.name == "first_path_access":
        # new_terms: a (user.id, secret.path) pair seen in [from, now] and not in
        # [history_window_start, from].
        doc = _kibana_common(rule, interval, query_back)
        doc.update({"type": "new_terms", "language": "lucene", "index": index,
                    "query": lucene_first_path_access(config),
                    "new_terms_fields": ["user.id", "secret.path"],
                    "history_window_start":
                        f"now-{format_duration(s.first_path_access.learning_period)}"})
    elif rule.name == "dormant_identity":
        doc = _kibana_common(rule, interval, query_back)
        doc.update({"type": "new_terms", "language": "lucene", "index": index,
                    "query": lucene_dormant_identity(), "new_terms_fields": ["user.id"],
                    "history_window_start": f"now-{format_duration(s.dormant_after)}"})
    elif rule.name == "rotation_without_read":
        doc = _kibana_common(rule, interval, s.rotation_read_window + interval)
        doc.update({"type": "esql", "language": "esql",
                    "query": esql_rotation_without_read(config, index, interval)})
    else:
        raise Unsupported(f"no Elastic form for {rule.name}")
    return doc


def compile_elastic(config: Config, index: list[str], interval: timedelta,
                    out: TargetOutput) -> list[dict[str, Any]]:
    """Add the stateful classes to an Elastic output; returns the Kibana rule documents (with
    `name_key`, as elastic.py sorts them)."""
    docs = []
    for rule in _rules("elastic", out):
        reason = UNSUPPORTED.get(("elastic", rule.name))
        if reason is None:
            try:
                doc = elastic_document(rule, config, index, interval)
            except Unsupported as exc:
                reason = exc.reason
        if reason is not None:
            out.support.append(Support(rule.name, "elastic", "unsupported", (reason,)))
            continue
        docs.append(doc)
        ext = "esql" if doc["language"] == "esql" else "lucene"
        out.files[f"elastic/queries/{SOURCE}/{rule.name}.{ext}"] = doc["query"] + "\n"
        out.queries[rule.name] = [doc["query"]]
        out.support.append(Support(rule.name, "elastic", "compiled"))
    return docs


# --------------------------------------------------------------------------------------------
# Splunk (scheduled searches over a look-back as long as the state the detector keeps)


def _spl_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_EFFECTIVE_SPL = ('NOT event.outcome="failure" NOT vault.entry_type="request" '
                  'NOT kubernetes.stage IN ("RequestReceived", "ResponseStarted")')
_ROTATION_SPL = (
    'secretsight.category="secret" secret.path=* ('
    '(event.dataset="vault.audit" secret.operation="write" event.action IN ("create", "update", '
    '"patch") (vault.mount_type="kv" OR NOT vault.mount_type=*) NOT vault.path="*/undelete/*") '
    'OR (event.dataset="aws.cloudtrail" event.action IN ("PutSecretValue", "RotateSecret", '
    '"RotationSucceeded")) '
    'OR (event.dataset="kubernetes.audit" secret.operation="write" event.action IN ("update", '
    '"patch")))')


def _first_seen_tail(by: str, every: timedelta) -> str:
    """A group's first event falls in the last schedule interval: new in the look-back."""
    return (f"| stats min(_time) as first_seen max(_time) as last_seen count as events by {by}\n"
            f'| where first_seen >= relative_time(now(), "-{format_duration(every)}@m")')


def splunk_search(rule: StatefulRule, config: Config, index: str, every: timedelta
                  ) -> tuple[str, str, str]:
    """(search, dispatch.earliest_time, dispatch.latest_time)."""
    s = config.stateful
    base = f"index={_spl_str(index)}"
    if rule.name == "audit_gap":
        datasets = ", ".join(_spl_str(d) for d in DATASETS)
        search = (f"{base} event.dataset IN ({datasets})\n"
                  "| stats max(_time) as last_seen by event.dataset\n"
                  f"| where now() - last_seen > {_seconds(s.audit_gap_max_silence)}")
        # `now`, not `@m`: the silence is measured up to the search time.
        return search, f"-{format_duration(audit_gap_lookback(config, every))}", "now"
    if rule.name == "first_path_access":
        allow = "".join(f" NOT user.id={_spl_str(a)}" for a in config.allowlists.first_path_access)
        search = (f'{base} secret.operation="read" secret.path=* user.id=* {_EFFECTIVE_SPL}{allow}\n'
                  + _first_seen_tail("user.id secret.path", every))
        back = s.first_path_access.learning_period + every
        return search, f"-{format_duration(back)}@m", "@m"
    if rule.name == "dormant_identity":
        search = f"{base} user.id=* {_EFFECTIVE_SPL}\n" + _first_seen_tail("user.id", every)
        return search, f"-{format_duration(s.dormant_after + every)}@m", "@m"
    if rule.name == "rotation_without_read":
        window = _seconds(s.rotation_read_window)
        oldest = window + _seconds(every)
        search = (f'{base} {_EFFECTIVE_SPL} (secret.operation="read" OR ({_ROTATION_SPL}))\n'
                  "| eval read_at=if('secret.operation'=\"read\", _time, null()), "
                  "rotated_at=if('secret.operation'!=\"read\", _time, null())\n"
                  "| stats max(rotated_at) as rotated_at max(read_at) as last_read by secret.path\n"
                  f'| where rotated_at <= relative_time(now(), "-{window}s") AND '
                  f'rotated_at > relative_time(now(), "-{oldest}s") AND '
                  "(isnull(last_read) OR last_read < rotated_at)")
        return search, f"-{format_duration(s.rotation_read_window + every)}@m", "@m"
    raise Unsupported(f"no Splunk form for {rule.name}")


def splunk_event_index() -> str:
    """The index the Sigma searches use: the `index` condition of the Splunk pipeline's
    `secretsight_splunk_index` item (one place for the user to edit)."""
    import yaml

    from secretsight.compile.pipelines import pipeline_path

    doc = yaml.safe_load(pipeline_path("splunk").read_text("utf-8")) or {}
    for item in doc.get("transformations") or []:
        if item.get("id") == "secretsight_splunk_index":
            return str((item.get("conditions") or {}).get("index", "secretsight"))
    return "secretsight"


def compile_splunk(config: Config, every: int, alert_index: str,
                   out: TargetOutput, index: str | None = None) -> dict[str, dict[str, str]]:
    """Add the stateful classes to a Splunk output; returns savedsearches.conf stanzas."""
    index = index if index is not None else splunk_event_index()
    stanzas: dict[str, dict[str, str]] = {}
    schedule = timedelta(minutes=every)
    for rule in _rules("splunk", out):
        reason = UNSUPPORTED.get(("splunk", rule.name))
        if reason is None:
            try:
                search, earliest, latest = splunk_search(rule, config, index, schedule)
            except Unsupported as exc:
                reason = exc.reason
        if reason is not None:
            out.support.append(Support(rule.name, "splunk", "unsupported", (reason,)))
            continue
        one_line = " ".join(line.strip() for line in search.splitlines() if line.strip())
        out.queries[rule.name] = [one_line]
        out.files[f"splunk/searches/{SOURCE}/{rule.name}.spl"] = search + "\n"
        stanzas[f"SecretSight - {rule.title}"] = splunk_stanza(
            rule, one_line, every, alert_index, earliest, latest)
        out.support.append(Support(rule.name, "splunk", "compiled"))
    return stanzas


def splunk_stanza(rule: StatefulRule, search: str, every: int, alert_index: str,
                  earliest: str, latest: str) -> dict[str, str]:
    from secretsight.compile.splunk import ALERT_SEVERITY

    settings = {
        "action.logevent": "1",
        "action.logevent.param.event": (
            f"secretsight_alert rule=\"{rule.name}\" anomaly=\"{rule.anomaly}\" "
            f"severity=\"{rule.level}\" search=\"$name$\" results=\"$job.resultCount$\""),
        "action.logevent.param.index": alert_index,
        "action.logevent.param.sourcetype": "secretsight:alert",
        "alert.digest_mode": "1",
        "alert.severity": str(ALERT_SEVERITY[rule.level]),
        "alert.suppress": "0",
        "alert.track": "1",
        "counttype": "number of events",
        "cron_schedule": f"*/{every} * * * *",
        "description": rule.description,
        "disabled": "0",
        "dispatch.earliest_time": earliest,
        "dispatch.latest_time": latest,
        "enableSched": "1",
        "quantity": "0",
        "relation": "greater than",
        "search": search,
    }
    return dict(sorted(settings.items()))
