"""Target-native forms of the stateful anomaly classes (first_path_access, dormant_identity,
rotation_without_read, rotation_without_deploy, audit_gap, first_seen_principal,
new_user_agent), where a target can express them.

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
from secretsight.compile import attack
from secretsight.compile.model import Support, TargetOutput, Unsupported
from secretsight.compile.splunk_app import AppSearch, event_filter, lagged_window
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

    @property
    def techniques(self) -> tuple[str, ...]:
        """The class's ATT&CK techniques (the anomaly catalogue's `mitre`)."""
        return tuple(sorted(anomalies.anomaly(self.name).mitre))

    @property
    def tags(self) -> list[str]:
        """As Sigma tags (`attack.t1078`), for the ATT&CK helpers shared with the Sigma rules."""
        return [f"attack.{t.lower()}" for t in self.techniques]


def _rule(name: str, description: str) -> StatefulRule:
    """A target-native form: its title and level are the class's (the anomaly catalogue)."""
    facts = anomalies.anomaly(name)
    return StatefulRule(name, facts.title, description, facts.severity)


RULES: tuple[StatefulRule, ...] = (
    _rule("audit_gap",
          "A secret-store audit source (dataset) that was emitting events has sent none "
          "for longer than stateful.audit_gap_max_silence."),
    _rule("dormant_identity",
          "An identity acts after no activity in the last stateful.dormant_after."),
    _rule("first_path_access",
          "An identity reads a secret.path it has not read in the last "
          "stateful.first_path_access.learning_period."),
    _rule("first_seen_principal",
          "A principal (user.id) reads a secret and did not read any in the last "
          "stateful.first_seen_principal_history."),
    _rule("new_user_agent",
          "A principal (user.id) reads, lists or describes secrets with a user agent it did "
          "not use in the last stateful.user_agent_learning_period (targets compare the whole "
          "string, so client upgrades match too)."),
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
    ("loki", "first_seen_principal"): _NO_HISTORY_LOKI.format(
        what="history window (stateful.first_seen_principal_history)"),
    ("loki", "new_user_agent"): _NO_HISTORY_LOKI.format(
        what="learning period (stateful.user_agent_learning_period)"),
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


# A continuity baseline of more slices than this is a query too long to run every minute.
LOKI_MAX_SLICES = 60


def loki_audit_gap_slices(config: Config) -> tuple[timedelta, int]:
    """(slice, number of baseline slices). A slice is half of max_silence: a gap longer than
    max_silence always contains a whole slice, so "every slice had events" implies the
    detector's "no gap over max_silence" (never fires where the detector would not)."""
    s = config.stateful
    slice_ = max(s.audit_gap_max_silence / 2, timedelta(seconds=1))
    slice_ = timedelta(seconds=int(slice_.total_seconds()))
    return slice_, max(1, -(-int(s.audit_gap_baseline.total_seconds())
                            // int(slice_.total_seconds())))


def loki_audit_gap(config: Config, interval: timedelta) -> dict[str, str]:
    """dataset -> ruler expression with the detector's continuity baseline: every slice of the
    baseline had events (LogQL has no subqueries: one `offset` range per slice) and the last
    max_silence has none. It fires when a continuous source goes silent (for about one ruler
    interval) and never on the pauses of a source that was not continuous (a bursty stream).
    Label-less sums joined by `and` / `unless` (left to right): a source never shipped has no
    series, so nothing fires for it. `interval` (the ruler's) only bounds how late a silence is
    seen."""
    silence = config.stateful.audit_gap_max_silence
    slice_, n = loki_audit_gap_slices(config)
    if n > LOKI_MAX_SLICES:
        raise Unsupported(
            f"the continuity baseline needs {n} slices of {format_duration(slice_)} "
            f"(stateful.audit_gap_baseline / half of max_silence), more than {LOKI_MAX_SLICES} "
            "`offset` ranges in one ruler expression (LogQL has no subqueries); use the "
            "stateful detector or a longer audit_gap_max_silence")
    label = config.targets.loki.dataset_label

    def count(ds: str, rng: timedelta, offset: timedelta) -> str:
        off = f" offset {format_duration(offset)}" if offset else ""
        return f'sum(count_over_time({{{label}="{ds}"}}[{format_duration(rng)}]{off}))'

    return {ds: " and ".join(f"{count(ds, slice_, silence + slice_ * k)} > 0" for k in range(n))
            + f" unless {count(ds, silence, timedelta(0))}" for ds in DATASETS}


def compile_loki(config: Config, interval: timedelta, out: TargetOutput
                 ) -> dict[str, list[dict[str, Any]]]:
    """Add the stateful classes to a Loki output; returns the ruler group(s) to write."""
    rules: list[dict[str, Any]] = []
    for rule in _rules("loki", out):
        if (reason := UNSUPPORTED.get(("loki", rule.name))) is not None:
            out.support.append(Support(rule.name, "loki", "unsupported", (reason,)))
            continue
        assert rule.name == "audit_gap"
        try:
            exprs = loki_audit_gap(config, interval)
        except Unsupported as exc:
            out.support.append(Support(rule.name, "loki", "unsupported", (exc.reason,)))
            continue
        out.queries[rule.name] = [exprs[ds] for ds in DATASETS]
        out.files[f"loki/queries/{SOURCE}/{rule.name}.logql"] = "\n".join(
            exprs[ds] for ds in DATASETS) + "\n"
        for ds in DATASETS:
            rules.append({
                "alert": rule.name,
                "expr": exprs[ds],
                "for": "0m",
                "labels": {"anomaly": rule.anomaly, config.targets.loki.dataset_label: ds, "rule_id": rule.id,
                           "rule_name": rule.name, "severity": rule.level, "source": SOURCE},
                "annotations": {"summary": f"{rule.title}: {ds}",
                                "description": rule.description,
                                **attack.alert_annotations(rule.tags)},
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


def _lucene_exempt(allow: list[str], system: list[str]) -> str:
    """` AND NOT user.id:(...)` for an allowlist and the platform controllers."""
    patterns = [*allow, *system]
    if not patterns:
        return ""
    return " AND NOT user.id:(" + " OR ".join(lucene_glob(a) for a in patterns) + ")"


def lucene_first_seen_principal(config: Config) -> str:
    return (f"secret.operation:read AND user.id:* AND {_EFFECTIVE_LUCENE}"
            + _lucene_exempt(config.allowlists.first_seen_principal,
                             config.system_identities.kubernetes))


def lucene_new_user_agent(config: Config) -> str:
    return ("secretsight.category:secret AND secret.operation:(read OR list OR describe) AND "
            f"user.id:* AND user_agent.original:* AND {_EFFECTIVE_LUCENE}"
            + _lucene_exempt(config.allowlists.new_user_agent,
                             config.system_identities.kubernetes))


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


def _kibana_common(rule: StatefulRule, config: Config, interval: timedelta,
                   look_back: timedelta) -> dict[str, Any]:
    return {
        "name_key": rule.name,
        "rule_id": rule.id,
        "name": rule.title,
        "description": rule.description,
        "risk_score": config.targets.elastic.risk_score[rule.level],
        "severity": config.targets.elastic.severity[rule.level],
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
        "threat": attack.threat(rule.tags),
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
        doc = _kibana_common(rule, config, interval, audit_gap_lookback(config, interval))
        doc.update({"type": "esql", "language": "esql", "query": esql_audit_gap(config, index)})
    elif rule.name == "first_path_access":
        # new_terms: a (user.id, secret.path) pair seen in [from, now] and not in
        # [history_window_start, from].
        doc = _kibana_common(rule, config, interval, query_back)
        doc.update({"type": "new_terms", "language": "lucene", "index": index,
                    "query": lucene_first_path_access(config),
                    "new_terms_fields": ["user.id", "secret.path"],
                    "history_window_start":
                        f"now-{format_duration(s.first_path_access.learning_period)}"})
    elif rule.name == "dormant_identity":
        doc = _kibana_common(rule, config, interval, query_back)
        doc.update({"type": "new_terms", "language": "lucene", "index": index,
                    "query": lucene_dormant_identity(), "new_terms_fields": ["user.id"],
                    "history_window_start": f"now-{format_duration(s.dormant_after)}"})
    elif rule.name == "first_seen_principal":
        doc = _kibana_common(rule, config, interval, query_back)
        doc.update({"type": "new_terms", "language": "lucene", "index": index,
                    "query": lucene_first_seen_principal(config), "new_terms_fields": ["user.id"],
                    "history_window_start":
                        f"now-{format_duration(s.first_seen_principal_history)}"})
    elif rule.name == "new_user_agent":
        doc = _kibana_common(rule, config, interval, query_back)
        doc.update({"type": "new_terms", "language": "lucene", "index": index,
                    "query": lucene_new_user_agent(config),
                    "new_terms_fields": ["user.id", "user_agent.original"],
                    "history_window_start":
                        f"now-{format_duration(s.user_agent_learning_period)}"})
    elif rule.name == "rotation_without_read":
        doc = _kibana_common(rule, config, interval, s.rotation_read_window + interval)
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
# Splunk: the baselines (identities and (identity, path) pairs seen) are KV store lookups kept
# by scheduled baseline searches over the same lagged windows as the alerts, one schedule
# interval behind them (so an alert never finds its own window in the lookup); the alerts read
# one interval of events and the lookup, never weeks of raw events. audit_gap reads index-time
# statistics (tstats), which cost nothing like a raw scan.


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
# How long the baseline lookups keep an entry: dormancy is judged on the identity lookup, so it
# keeps an identity for twice dormant_after (an identity silent longer looks new: no alert).
_DORMANT_RETENTION = 2
AUDIT_GAP_REALERT = timedelta(hours=1)
AUDIT_GAP_LOOKBACK = timedelta(days=7)


@dataclass(frozen=True)
class SplunkBaseline:
    """A KV store lookup of what was seen (first/last seen per key), kept by two searches: an
    upsert of each schedule window's keys, one interval behind the alerts that read it (so an
    alert never finds its own window there), and a daily prune of entries past retention."""

    lookup: str
    events: str  # the search selecting the events that count as seen
    keys: tuple[tuple[str, str], ...]  # (event field, lookup field)
    retention: timedelta

    def upsert(self) -> str:
        by = " ".join(f for f, _ in self.keys)
        renames = "".join(f" {f} as {k}" for f, k in self.keys)
        names = [k for _, k in self.keys]
        key = ' . "|" . '.join(names)
        return (f"{self.events} | stats min(_time) as first_seen max(_time) as last_seen by {by}"
                f" | rename{renames}"
                f" | lookup {self.lookup} {' '.join(names)} OUTPUT first_seen as known_since"
                " | eval first_seen=min(first_seen, coalesce(known_since, first_seen)),"
                f" _key=md5({key})"
                f" | fields _key {' '.join(names)} first_seen last_seen"
                f" | outputlookup append=true key_field=_key {self.lookup}")

    def prune(self) -> str:
        return (f"| inputlookup {self.lookup}"
                f' | where last_seen >= relative_time(now(), "-{_seconds(self.retention)}s")'
                f" | outputlookup {self.lookup}")


PRUNE_CRON = "17 3 * * *"  # daily, off the hour


def splunk_baselines(config: Config) -> list[SplunkBaseline]:
    s = config.stateful
    return [
        SplunkBaseline("secretsight_identity_seen", _splunk_active(), (("user.id", "user_id"),),
                       s.dormant_after * _DORMANT_RETENTION),
        SplunkBaseline("secretsight_path_seen", _splunk_reads(config),
                       (("user.id", "user_id"), ("secret.path", "secret_path")),
                       s.first_path_access.learning_period),
        SplunkBaseline("secretsight_reader_seen", _splunk_principal_reads(config),
                       (("user.id", "user_id"),), s.first_seen_principal_history),
        SplunkBaseline("secretsight_agent_seen", _splunk_agents(config),
                       (("user.id", "user_id"), ("user_agent.original", "user_agent")),
                       s.user_agent_learning_period),
    ]


def _splunk_active() -> str:
    return f"{event_filter(None)} user.id=* {_EFFECTIVE_SPL}"


def _splunk_reads(config: Config) -> str:
    allow = "".join(f" NOT user.id={_spl_str(a)}" for a in config.allowlists.first_path_access)
    return (f'{event_filter(None)} secret.operation="read" secret.path=* user.id=* '
            f"{_EFFECTIVE_SPL}{allow}")


def _splunk_exempt(allow: list[str], config: Config) -> str:
    return "".join(f" NOT user.id={_spl_str(a)}"
                   for a in [*allow, *config.system_identities.kubernetes])


def _splunk_principal_reads(config: Config) -> str:
    return (f'{event_filter(None)} secret.operation="read" user.id=* {_EFFECTIVE_SPL}'
            + _splunk_exempt(config.allowlists.first_seen_principal, config))


def _splunk_agents(config: Config) -> str:
    return (f'{event_filter(None)} secretsight.category="secret" secret.operation IN ("read", '
            f'"list", "describe") user.id=* user_agent.original=* {_EFFECTIVE_SPL}'
            + _splunk_exempt(config.allowlists.new_user_agent, config))


def splunk_searches(config: Config) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Class name -> (one-line search, entity fields)."""
    s = config.stateful
    st = config.targets.splunk
    events = event_filter(None)
    reads = _splunk_reads(config)
    active = _splunk_active()
    prefix = _spl_str(st.sourcetype_prefix)
    sourcetypes = " OR ".join(f"sourcetype={_spl_str(t)}" for t in [
        *(st.sourcetype(d) for d in DATASETS), st.shared_sourcetype] if t)
    # A shared sourcetype carries every dataset: its silence is the shipper's, named as is.
    dataset_of = (f'if(sourcetype={_spl_str(st.shared_sourcetype)}, sourcetype, '
                  f"substr(sourcetype, len({prefix}) + 1))" if st.shared_sourcetype
                  else f"substr(sourcetype, len({prefix}) + 1)")
    window = _seconds(s.rotation_read_window)
    every = timedelta(minutes=st.schedule_minutes)
    oldest = window + _seconds(every)
    return {
        "audit_gap": (
            f"| tstats max(_indextime) as last_indexed where `secretsight_index` ({sourcetypes})"
            f" by sourcetype | eval event.dataset={dataset_of}"
            f" | where now() - last_indexed > {_seconds(s.audit_gap_max_silence)}",
            ("event.dataset",)),
        "dormant_identity": (
            f"{active} | stats min(_time) as first_seen max(_time) as last_seen count as events"
            " by user.id | eval user_id='user.id'"
            " | lookup secretsight_identity_seen user_id OUTPUT last_seen as previous_seen"
            f" | where isnotnull(previous_seen) AND first_seen - previous_seen > "
            f"{_seconds(s.dormant_after)}",
            ("user.id",)),
        "first_path_access": (
            f"{reads} | stats min(_time) as first_seen count as events by user.id secret.path"
            " | eval user_id='user.id', secret_path='secret.path'"
            " | lookup secretsight_path_seen user_id secret_path OUTPUT last_seen as previous_read"
            " | where isnull(previous_read)"
            " | lookup secretsight_identity_seen user_id OUTPUT first_seen as known_since"
            f' | where known_since <= relative_time(now(), '
            f'"-{_seconds(s.first_path_access.learning_period)}s")',
            ("user.id", "secret.path")),
        "first_seen_principal": (
            f"{_splunk_principal_reads(config)} | stats min(_time) as first_seen count as events"
            " by user.id | eval user_id='user.id'"
            " | lookup secretsight_reader_seen user_id OUTPUT last_seen as previous_read"
            " | where isnull(previous_read)",
            ("user.id",)),
        "new_user_agent": (
            f"{_splunk_agents(config)} | stats min(_time) as first_seen count as events"
            " by user.id user_agent.original"
            " | eval user_id='user.id', user_agent='user_agent.original'"
            " | lookup secretsight_agent_seen user_id user_agent OUTPUT last_seen as previous_use"
            " | where isnull(previous_use)"
            " | lookup secretsight_identity_seen user_id OUTPUT first_seen as known_since"
            f' | where known_since <= relative_time(now(), '
            f'"-{_seconds(s.user_agent_learning_period)}s")',
            ("user.id", "user_agent.original")),
        "rotation_without_read": (
            f'{events} {_EFFECTIVE_SPL} (secret.operation="read" OR ({_ROTATION_SPL}))'
            " | eval read_at=if('secret.operation'=\"read\", _time, null()), "
            "rotated_at=if('secret.operation'!=\"read\", _time, null())"
            " | stats max(rotated_at) as rotated_at max(read_at) as last_read by secret.path"
            f' | where rotated_at <= relative_time(now(), "-{window}s") AND '
            f'rotated_at > relative_time(now(), "-{oldest}s") AND '
            "(isnull(last_read) OR last_read < rotated_at)",
            ("secret.path",)),
    }


def compile_splunk(config: Config, out: TargetOutput) -> list[AppSearch]:
    """Add the stateful classes to a Splunk output; returns the app searches (alerts and the
    baseline searches the alerts' lookups need)."""
    s = config.stateful
    every = timedelta(minutes=config.targets.splunk.schedule_minutes)
    forms = splunk_searches(config)
    searches: list[AppSearch] = []
    for rule in _rules("splunk", out):
        reason = UNSUPPORTED.get(("splunk", rule.name))
        if reason is not None:
            out.support.append(Support(rule.name, "splunk", "unsupported", (reason,)))
            continue
        search, entity = forms[rule.name]
        suppress: timedelta | None = None
        if rule.name == "audit_gap":
            # Index time up to the search time: a silence in shipping, whatever the events' age.
            earliest, latest = f"-{format_duration(AUDIT_GAP_LOOKBACK)}", "now"
            suppress = AUDIT_GAP_REALERT
        elif rule.name == "rotation_without_read":
            earliest, latest = lagged_window(config, s.rotation_read_window + every)
        else:
            earliest, latest = lagged_window(config, every)
        out.queries[rule.name] = [search]
        out.files[f"splunk/searches/{SOURCE}/{rule.name}.spl"] = search + "\n"
        searches.append(AppSearch(
            stanza=f"SecretSight - {rule.title}", rule=rule.name, anomaly=rule.anomaly,
            level=rule.level, description=rule.description, search=search, earliest=earliest,
            latest=latest, entity=entity, suppress_period=suppress, techniques=rule.techniques))
        out.support.append(Support(rule.name, "splunk", "compiled"))
    # The baselines the lookup-based alerts read: upserted one schedule interval behind them,
    # pruned daily.
    for base in splunk_baselines(config):
        earliest, latest = lagged_window(config, every, extra_lag=every)
        searches.append(AppSearch(
            stanza=f"SecretSight - Baseline - {base.lookup}", rule=f"baseline_{base.lookup}",
            anomaly="", level="informational",
            description=f"Adds each window's first/last seen to the {base.lookup} lookup that "
                        "the first-seen alerts (first_path_access, dormant_identity, "
                        "first_seen_principal, new_user_agent) read (no alert).",
            search=base.upsert(), earliest=earliest, latest=latest, entity=(), alert=False))
        searches.append(AppSearch(
            stanza=f"SecretSight - Baseline prune - {base.lookup}",
            rule=f"baseline_prune_{base.lookup}", anomaly="", level="informational",
            description=f"Drops {base.lookup} entries not seen for "
                        f"{format_duration(base.retention)} (no alert).",
            search=base.prune(), earliest="-1m", latest="now", entity=(), alert=False,
            cron=PRUNE_CRON))
    return searches


