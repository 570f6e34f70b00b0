"""Compile a rule set with the SQLite backend, run it against the events table, group the
matches into findings (see the package docstring for the grouping)."""

from __future__ import annotations

import copy
import itertools
import json
import multiprocessing
import operator
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sigma.backends.sqlite.runtime import execute_plan
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationCondition, SigmaCorrelationRule
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule

from secretsight.config import Config
from secretsight.engine import table
from secretsight.engine.backend import SecretSightSQLiteBackend, make_backend
from secretsight.errors import SecretSightError
from secretsight.findings import ANOMALY_CLASSES, SEVERITIES, Finding

# Matches of a plain rule by one identity closer than this belong to one finding.
PLAIN_BURST_GAP = 3600.0

# Columns read back for evidence and grouping.
_EVIDENCE_COLUMNS = (
    "@timestamp",
    "user.id",
    "user.name",
    "credential.id",
    "event.dataset",
    "event.id",
    "event.action",
    "secret.path",
    "source.ip",
)
_SAMPLE = 10


@dataclass(frozen=True)
class RuleFacts:
    """What a finding copies from a compiled rule (not `secretsight.rules.RuleMeta`, the
    loader's record of a rule file)."""

    id: str
    name: str | None
    title: str
    anomaly: str
    severity: str
    correlation: bool
    group_by: tuple[str, ...] = ()
    timespan: float = 0.0


@dataclass(frozen=True)
class GroupPrune:
    """A necessary condition on the group of a correlation's events (see `_group_prune`),
    checked before its plan runs: groups that fail it cannot alert and are left out."""

    field: str  # the group-by field
    # event_count / value_count: the group's sliding count of events matching any of `window`
    # over `span` seconds reaches `need` somewhere ...
    window: tuple[str, ...] = ()
    span: int = 0
    need: int = 0
    # ... and (value_count) its events carry at least `need` distinct `distinct` values
    distinct: str | None = None
    # temporal: the group matches each of these (any predicate of the tuple) at least once
    every: tuple[tuple[str, ...], ...] = ()


@dataclass
class CompiledRule:
    meta: RuleFacts
    queries: list[str] = field(default_factory=list)  # plain: WHERE clauses
    plan: dict[str, Any] | None = None  # correlation: the backend's v2 plan
    # correlation: the referenced base rules' predicates (its input: events matching one)
    bases: tuple[str, ...] = ()
    prune: GroupPrune | None = None
    # temporal correlation over correlations: evaluated here over the children's alerts
    children: list[CompiledRule] = field(default_factory=list)
    required: int = 0  # how many distinct children must alert within the timespan

    @property
    def prefilter(self) -> str | None:
        """The OR of `bases`: a WHERE clause selecting the correlation's input (None: unknown)."""
        return " OR ".join(f"({p})" for p in self.bases) or None


@dataclass
class CompiledRuleSet:
    rules: list[CompiledRule]
    errors: list[SecretSightError]
    skipped: list[tuple[str, str]]  # (rule name, why) - e.g. `embedded: false`
    # every plain rule (building blocks included): name -> its WHERE clause (cross-checks)
    predicates: dict[str, str] = field(default_factory=dict)


def _collection(ruleset: Any) -> SigmaCollection:
    if isinstance(ruleset, SigmaCollection):
        return ruleset
    for attr in ("collection", "rules"):
        value = getattr(ruleset, attr, None)
        if isinstance(value, SigmaCollection):
            return value
    raise TypeError(f"not a rule set: {type(ruleset).__name__}")


def _pipeline(config: Config) -> ProcessingPipeline:
    from secretsight.rules import placeholder_pipeline  # pySigma's transformations: on use

    return placeholder_pipeline(config)


def _base_predicates(rule: Any) -> list[str] | None:
    """The compiled predicates of every base rule under a correlation (None if unknown)."""
    if isinstance(rule, SigmaRule):
        result = rule.get_conversion_result()
        if not result or not all(isinstance(q, str) for q in result):
            return None
        # An output rule's result is the finalized query; a referenced one's the bare predicate.
        prefix = f"SELECT * FROM {table.TABLE} WHERE "
        return [q.removeprefix(prefix) for q in result]
    out: list[str] = []
    for ref in rule.referenced_rules:
        sub = _base_predicates(ref.rule)
        if sub is None:
            return None
        out.extend(sub)
    return out


def _meta(rule: SigmaRule | SigmaCorrelationRule) -> RuleFacts:
    attrs = rule.custom_attributes or {}
    anomaly = attrs.get("anomaly")
    if anomaly not in ANOMALY_CLASSES:
        raise SecretSightError(
            f"rule {rule.name or rule.title!r}: `anomaly` {anomaly!r} is not a class of "
            f"the anomaly catalogue (tools/secretsight/anomalies.yml)",
            file=_source(rule),
        )
    level = rule.level.name.lower() if rule.level else "medium"
    severity = level if level in SEVERITIES else "medium"
    corr = rule if isinstance(rule, SigmaCorrelationRule) else None
    return RuleFacts(
        id=str(rule.id) if rule.id else f"sigma/{rule.name}",
        name=rule.name,
        title=rule.title,
        anomaly=anomaly,
        severity=severity,
        correlation=corr is not None,
        group_by=tuple(corr.group_by or ()) if corr is not None else (),
        timespan=float(corr.timespan.seconds) if corr is not None else 0.0,
    )


def _source(rule: Any) -> str | None:
    src = getattr(rule, "source", None)
    path = getattr(src, "path", None)
    return str(path) if path else None


def _embedded(rule: Any) -> bool:
    value = (rule.custom_attributes or {}).get("embedded", True)
    return value not in (False, "false", "no")


def _nested_temporal(rule: SigmaCorrelationRule) -> bool:
    """A `temporal` correlation whose members are correlations with the same group-by.

    The backend compiles these too, but its plan joins every child alert with every event of its
    evidence and then every anchor with all of those: a 500-read harvest (about 470 child alerts
    of 300-500 events each) took 479 s. The engine evaluates the parent itself over the child
    alerts with the backend's semantics (an anchor at each child alert's end, window
    [end - timespan, end], fires when enough distinct children alert inside it), which is
    linear in the number of child alerts.
    """
    from sigma.correlations import SigmaCorrelationConditionOperator, SigmaCorrelationType

    if rule.type != SigmaCorrelationType.TEMPORAL or rule.aliases:
        return False
    if getattr(rule.condition, "op", None) != SigmaCorrelationConditionOperator.GTE:
        return False
    refs = [ref.rule for ref in rule.referenced_rules]
    return bool(refs) and all(
        isinstance(r, SigmaCorrelationRule) and list(r.group_by or []) == list(rule.group_by or [])
        for r in refs
    )


def _child_plan(rule: SigmaCorrelationRule, backend: SecretSightSQLiteBackend) -> CompiledRule:
    # Referenced correlations produce no output query, but the backend keeps their plans.
    plan = backend.correlation_plan(rule)
    child = CompiledRule(
        meta=_meta(rule),  # a building block: its findings are its parent's evidence only
        plan=_strip_evidence(plan),
        bases=tuple(dict.fromkeys(_base_predicates(rule) or ())),
        prune=_group_prune(rule),
    )
    return child


def _merged_query(plan: dict[str, Any]) -> str | None:
    """The plan's final query with the overlapping windows of each group merged into bursts in
    SQL (gaps and islands), so a group above its threshold all day returns one row, not one per
    window. Same columns as the backend's query (what `execute_plan` reads), plus `windows`."""
    query = plan["query"]
    head, sep, _ = query.rpartition(" ORDER BY occurrence_time")
    if not sep or not head.startswith("SELECT alert_id, group_keys, "):
        return None
    return (
        "SELECT MIN(alert_id) AS alert_id, group_keys, MAX(window_end) AS occurrence_time, "
        "MIN(window_start) AS window_start, MAX(window_end) AS window_end, metric_name, "
        "MAX(metric_value) AS metric_value, 0 AS event_count, '[]' AS event_ids, "
        "'[]' AS child_alert_ids, COUNT(*) AS windows FROM ("
        "SELECT *, SUM(fresh) OVER (PARTITION BY group_keys ORDER BY window_start, window_end "
        "ROWS UNBOUNDED PRECEDING) AS burst FROM ("
        "SELECT *, CASE WHEN window_start <= MAX(window_end) OVER (PARTITION BY group_keys "
        "ORDER BY window_start, window_end ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) "
        f"THEN 0 ELSE 1 END AS fresh FROM ({head}))) "
        "GROUP BY group_keys, burst ORDER BY window_start, group_keys"
    )


def _strip_evidence(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan without per-window evidence lists.

    The backend collects, for every qualifying window, the ids of all its events
    (`json_group_array` in the `_combined` stage): for an identity that stays above a threshold
    all day that is (windows x events per window) - 10^8 entries for one hot token in a million
    events, minutes of work. The engine needs only the windows: it merges them into bursts and
    reads each burst's events once (`_burst_rows`), which is the same set (the union of windows
    that overlap is their hull). Stages of another shape are left untouched."""
    stages = []
    for stage in plan["prepare"]:
        select = stage["select"]
        if stage["name"].endswith("_combined"):
            parts = []
            for branch in select.split(" UNION "):
                head, sep, rest = branch.partition("a.metric, ")
                _, sep2, tail = rest.partition(" AS children FROM ")
                if sep and sep2:
                    branch = f"{head}a.metric, '[]' AS evidence, '[]' AS children FROM {tail}"
                parts.append(branch)
            select = " UNION ".join(parts)
        stages.append(dict(stage, select=select))
    return dict(plan, prepare=stages)


def _group_prune(rule: SigmaCorrelationRule) -> GroupPrune | None:
    """A cheap condition that every event of a qualifying window satisfies, on its group only.

    The backend's plan materializes every matching event with a JSON payload in several stages:
    on a million reads by steady readers that costs tens of seconds, while the groups that can
    alert are few. Dropping, before the plan runs, the groups that cannot possibly alert keeps
    the result identical (only whole groups are dropped, and only when provably silent):
    - event_count / value_count with `gt N` / `gte N`: a window needs at least N+1 / N events
      (a distinct count never exceeds the event count), so the group's own sliding count over
      the same timespan must reach it somewhere; for value_count, the group must also carry
      that many distinct values over the whole input;
    - temporal (all referenced rules required): the group must match every referenced rule
      at least once.
    Rules with aliases, several group-by fields, other operators or nested correlations get
    no pruning (None). `_SharedInputs` evaluates these conditions.
    """
    from sigma.correlations import SigmaCorrelationConditionOperator as Op
    from sigma.correlations import SigmaCorrelationType as Kind

    group = list(rule.group_by or [])
    if len(group) != 1 or rule.aliases or not hasattr(rule.condition, "op"):
        return None  # several keys, aliases, or an extended (boolean) temporal condition
    refs = [ref.rule for ref in rule.referenced_rules]
    if not refs or not all(isinstance(r, SigmaRule) for r in refs):
        return None
    preds = [_base_predicates(r) for r in refs]
    if any(p is None for p in preds):
        return None
    per_ref = [tuple(dict.fromkeys(p)) for p in preds if p]
    cond = rule.condition
    if not isinstance(cond, SigmaCorrelationCondition):
        return None  # an extended (boolean) temporal condition: no pruning
    if rule.type in (Kind.EVENT_COUNT, Kind.VALUE_COUNT):
        op, count = cond.op, cond.count
        if op == Op.GT:
            need = int(count) + 1
        elif op == Op.GTE:
            need = int(count)
        else:
            return None
        if need <= 1:
            return None
        fieldref = getattr(rule.condition, "fieldref", None)
        return GroupPrune(
            field=group[0],
            window=tuple(dict.fromkeys(p for ref in per_ref for p in ref)),
            span=rule.timespan.seconds,
            need=need,
            distinct=fieldref if rule.type == Kind.VALUE_COUNT and isinstance(fieldref, str)
            else None,
        )
    if rule.type == Kind.TEMPORAL and cond.op == Op.GTE and int(cond.count) >= len(refs):
        return GroupPrune(field=group[0], every=tuple(per_ref))
    return None


def compile_ruleset(ruleset: Any, config: Config) -> CompiledRuleSet:
    """Convert every rule; conversion errors are collected, never raised."""
    # The backend applies processing pipelines to rules in place: work on a copy so the
    # caller's rule set can still be compiled for other targets.
    collection = copy.deepcopy(_collection(ruleset))
    backend = make_backend(_pipeline(config))
    backend.init_processing_pipeline()
    collection.resolve_rule_references()
    out = CompiledRuleSet(rules=[], errors=[], skipped=[])
    for rule in collection.rules:
        if rule.errors:
            out.errors.extend(
                SecretSightError(f"rule {rule.name or rule.title!r}: {e}", file=_source(rule))
                for e in rule.errors
            )
            continue
        before = len(backend.errors)
        try:
            if isinstance(rule, SigmaRule):
                queries = backend.convert_rule(rule)
            else:
                queries = backend.convert_correlation_rule(rule, "zircolite")
        except Exception as exc:  # noqa: BLE001 - a backend bug in one rule must not stop the others
            out.errors.append(
                SecretSightError(f"rule {rule.name or rule.title!r}: {exc}", file=_source(rule))
            )
            continue
        for _, err in backend.errors[before:]:
            out.errors.append(
                SecretSightError(f"rule {rule.name or rule.title!r}: {err}", file=_source(rule))
            )
        if isinstance(rule, SigmaRule) and len(backend.errors) == before:
            where = _base_predicates(rule) or [
                q[len(f"SELECT * FROM {table.TABLE} WHERE "):] for q in queries
                if isinstance(q, str)
            ]
            if where and rule.name:
                out.predicates[rule.name] = " OR ".join(f"({w})" for w in where)
        if len(backend.errors) > before or not queries or not rule._output:
            continue
        if not _embedded(rule):
            out.skipped.append((rule.name or rule.title, "embedded: false"))
            continue
        try:
            meta = _meta(rule)
        except SecretSightError as exc:
            out.errors.append(exc)
            continue
        compiled = CompiledRule(meta=meta)
        if isinstance(rule, SigmaCorrelationRule) and _nested_temporal(rule):
            try:
                compiled.children = [  # _nested_temporal: every member is a correlation
                    _child_plan(cast(SigmaCorrelationRule, ref.rule), backend)
                    for ref in rule.referenced_rules
                ]
            except (KeyError, SecretSightError) as exc:
                out.errors.append(
                    SecretSightError(f"rule {rule.name!r}: {exc}", file=_source(rule))
                )
                continue
            compiled.required = int(cast(SigmaCorrelationCondition, rule.condition).count)
            if all(c.bases for c in compiled.children):
                compiled.bases = tuple(dict.fromkeys(p for c in compiled.children for p in c.bases))
            out.rules.append(compiled)
            continue
        if isinstance(rule, SigmaRule):
            prefix = f"SELECT * FROM {table.TABLE} WHERE "
            for query in queries:
                if not isinstance(query, str) or not query.startswith(prefix):
                    raise AssertionError(f"unexpected SQLite query shape: {query!r}")
                compiled.queries.append(query[len(prefix):])
        else:
            compiled.plan = _strip_evidence(queries[0]["correlation_plan"])
            merged = _merged_query(compiled.plan)
            if merged is not None:
                compiled.plan["query"] = merged
            predicates = _base_predicates(rule)
            if predicates:
                compiled.bases = tuple(dict.fromkeys(predicates))
                compiled.prune = _group_prune(rule)
        out.rules.append(compiled)
    return out


_CACHE: dict[tuple[int, str], tuple[Any, CompiledRuleSet]] = {}


def compiled_for(ruleset: Any, config: Config) -> CompiledRuleSet:
    """Compile once per (rule set, config): the harness replays many scenarios."""
    if isinstance(ruleset, CompiledRuleSet):
        return ruleset
    key = (id(ruleset), config.model_dump_json())
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is ruleset:
        return hit[1]
    compiled = compile_ruleset(ruleset, config)
    if len(_CACHE) >= 8:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = (ruleset, compiled)
    return compiled


_NO_INPUT = "SELECT NULL WHERE 0"  # `_SharedInputs.input_ids` when no row can be input
_BATCH = 3  # bursts of one rule from which their events are read in one pass


class _SharedInputs:
    """What the correlations of one run share, computed once instead of once per rule.

    Before, each correlation scanned the whole table with its base rules' predicates two to
    four times (its input, its prune subqueries, each finding's events), and computed its own
    sliding count per group: three of them over the same 300 s `user.id` window. Here:
    - one scan evaluates every base predicate once per event into a narrow TEMP table
      (`_id`, `_ts`, the lower-cased group values and value_count fields, one 0/1 column per
      predicate);
    - the sliding-count prunes that share a (group field, timespan) are one ordered pass in
      Python over that table's rows they count (`_count`), after a check on all groups
      together (`_possible`);
    - a correlation's input, prune and burst events are then read by row id.
    Same rows as the per-rule SQL (same predicates, same `lower()` keys); a predicate SQLite
    rejects fails only the rules that use it, with SQLite's message.
    """

    TABLE = "secretsight_inputs"

    def __init__(self, conn: sqlite3.Connection, rules: list[CompiledRule]):
        self.conn = conn
        self.preds: dict[str, str] = {}  # predicate -> its column
        self.groups: dict[str, str] = {}  # group-by field -> its column (lower-cased values)
        # (group-by field, timespan) -> the sliding-count prunes over it (`_count`)
        self.windows: dict[tuple[str, int], list[GroupPrune]] = {}
        # value_count field -> the column of its lower-cased values (a group-by field's own
        # column, else one in `distincts`, built for this)
        self.values: dict[str, str] = {}
        self.distincts: dict[str, str] = {}
        counted: list[str] = []
        self.broken: dict[str, str] = {}  # predicate -> SQLite's error
        self.timings: dict[str, float] = {}
        self._reaching: dict[GroupPrune, list[str]] = {}  # prune -> groups that pass it
        self.totals: dict[str, int] = {}  # predicate -> events it matches
        self.latest: float | None = None  # the latest `_ts` (None: no row has one)
        self._built = False
        self._ready = False
        for rule in rules:
            for r in (rule, *rule.children):
                if not r.bases:
                    continue
                for pred in r.bases:
                    self.preds.setdefault(pred, f"p{len(self.preds)}")
                for name in r.meta.group_by:
                    self.groups.setdefault(name, f"g{len(self.groups)}")
                prune = r.prune
                if prune is not None and prune.window:
                    prunes = self.windows.setdefault((prune.field, prune.span), [])
                    if prune not in prunes:
                        prunes.append(prune)
                    if prune.distinct is not None:
                        counted.append(prune.distinct)
        for name in dict.fromkeys(counted):
            if name not in self.groups:
                self.distincts[name] = f"d{len(self.distincts)}"
            self.values[name] = self.groups.get(name) or self.distincts[name]

    def _build(self) -> None:
        if self._built:
            return
        ts = table.quote(table.TS_COLUMN)
        started = time.process_time()
        self._built = True
        try:
            self._create(list(self.preds))
        except sqlite3.Error:
            # Find the predicates SQLite rejects (each alone), build without them.
            self.conn.execute(f"DROP TABLE IF EXISTS temp.{self.TABLE}")
            for pred in self.preds:
                try:
                    self.conn.execute(
                        f"SELECT COUNT(*) FROM main.{table.TABLE} WHERE {pred}").fetchone()
                except sqlite3.Error as exc:
                    self.broken[pred] = str(exc)
            self._create([p for p in self.preds if p not in self.broken])
        good = [p for p in self.preds if p not in self.broken]
        # How many events each predicate matches (sets nothing matches are skipped below),
        # and the latest time, in one pass
        row = self.conn.execute(
            f"SELECT {', '.join([*(f'SUM({self.preds[p]})' for p in good), f'MAX({ts})'])} "
            f"FROM temp.{self.TABLE}").fetchone()
        self.totals = {p: n or 0 for p, n in zip(good, row, strict=False)}
        self.latest = row[-1]
        self._ready = True
        self.timings["shared:inputs"] = time.process_time() - started

    def _create(self, preds: list[str]) -> None:
        cols = [table.quote(table.ID_COLUMN) + " INTEGER PRIMARY KEY", table.quote(table.TS_COLUMN)]
        cols += list(self.groups.values())
        exprs = [table.quote(table.ID_COLUMN), table.quote(table.TS_COLUMN)]
        exprs += [f"lower({table.quote(name)})" for name in self.groups]
        cols += list(self.distincts.values())
        exprs += [f"lower({table.quote(name)})" for name in self.distincts]
        # CASE WHEN: a WHERE clause's truth (NULL is false), stored as 0/1
        cols += [self.preds[p] for p in preds]
        exprs += [f"CASE WHEN ({p}) THEN 1 ELSE 0 END" for p in preds]
        self.conn.execute(f"DROP TABLE IF EXISTS temp.{self.TABLE}")  # a previous run's
        self.conn.execute(f"CREATE TEMP TABLE {self.TABLE} ({', '.join(cols)})")
        self.conn.execute(
            f"INSERT INTO temp.{self.TABLE} SELECT {', '.join(exprs)} FROM main.{table.TABLE}")

    def _any(self, preds: tuple[str, ...]) -> str:
        """SQL over the inputs table: 1 when the event matches one of `preds`, else 0."""
        for pred in preds:
            if pred in self.broken:
                raise sqlite3.OperationalError(self.broken[pred])
        return "(" + " OR ".join(self.preds[p] for p in preds) + ")"

    def _matched(self, preds: tuple[str, ...]) -> bool:
        """Whether any event matches one of `preds` (raises if SQLite rejects one)."""
        self._any(preds)
        return any(self.totals.get(p) for p in preds)

    def _possible(self, prune: GroupPrune) -> bool:
        """Whether some group could pass the sliding-count `prune`, by what all groups
        together carry: enough matching events, and (value_count) enough distinct values
        (0.01 s per 100,000 rows; a Vault-only log has one `event.dataset`, so
        cross_store_harvest stops here)."""
        if any(p in self.broken for p in prune.window):
            return False
        if sum(self.totals.get(p, 0) for p in prune.window) < prune.need:
            return False
        if prune.distinct is None:
            return True
        column, group = self.values[prune.distinct], self.groups[prune.field]
        row = self.conn.execute(
            f"SELECT COUNT(*) FROM (SELECT DISTINCT {column} FROM temp.{self.TABLE} "
            f"WHERE {self._any(prune.window)} AND {group} IS NOT NULL AND {column} IS NOT NULL "
            f"LIMIT {int(prune.need)})").fetchone()
        return bool(row[0] >= prune.need)

    def _count(self, group: str, span: int) -> None:
        """Which groups pass each sliding-count prune over (`group`, `span`), from one ordered
        pass in Python over the rows any of them counts.

        A group's sliding count (`COUNT(*) OVER (PARTITION BY lower(group) ORDER BY _ts RANGE
        BETWEEN span PRECEDING AND CURRENT ROW)` over the events matching the prune's
        predicates) reaches `need` exactly when, its times sorted, some time t[i] has
        t[i - need + 1] >= t[i] - span: the frame anchored at t[i] holds those `need` events
        (and the frame of a later peer of t[i] holds them too). Same comparison in the same
        floating point as SQLite's frame bound. The window function cost 0.17-0.20 s per
        100,000 rows, this 0.05 s (fetching two columns and appending to lists). A
        value_count prune also needs `need` distinct lower-cased values among all the group's
        matching events (any time), counted afterwards for the groups that pass the count."""
        started = time.process_time()
        prunes = self.windows[(group, span)]
        for prune in prunes:
            self._reaching[prune] = []  # nothing matched: no group passes
        live = [p for p in prunes if self._possible(p)]
        if live:
            sets = list(dict.fromkeys(p.window for p in live))
            col, ts = self.groups[group], table.quote(table.TS_COLUMN)
            times: list[dict[str, list[float]]] = [{} for _ in sets]
            # value_count prunes: distinct values per group, collected in the same pass when
            # one field is counted over the one predicate set (the SQL DISTINCT over every
            # row of the groups that pass cost 0.04 s per 100,000 rows, this 0.01-0.02 s)
            fields = list(dict.fromkeys(p.distinct for p in live if p.distinct is not None))
            seen: dict[str, set[Any]] | None = None
            if len(sets) == 1 and len(fields) == 1:
                seen, by_group = {}, times[0]
                for g, at, value in self.conn.execute(
                        f"SELECT {col}, {ts}, {self.values[fields[0]]} FROM temp.{self.TABLE} "
                        f"WHERE {col} IS NOT NULL AND {self._any(sets[0])}"):
                    if at is not None:  # timed: counted in windows
                        found = by_group.get(g)
                        if found is None:
                            by_group[g] = [at]
                        else:
                            found.append(at)
                    if value is not None:  # any time (as the plan)
                        values = seen.get(g)
                        if values is None:
                            seen[g] = {value}
                        else:
                            values.add(value)
            elif len(sets) == 1:
                rows: Any = self.conn.execute(
                    f"SELECT {col}, {ts} FROM temp.{self.TABLE} "
                    f"WHERE {col} IS NOT NULL AND {ts} IS NOT NULL AND {self._any(sets[0])}")
                by_group = times[0]
                for g, at in rows:
                    found = by_group.get(g)
                    if found is None:
                        by_group[g] = [at]
                    else:
                        found.append(at)
            else:
                rows = self.conn.execute(
                    f"SELECT {col}, {ts}, {', '.join(self._any(w) for w in sets)} "
                    f"FROM temp.{self.TABLE} WHERE {col} IS NOT NULL AND {ts} IS NOT NULL "
                    f"AND ({' OR '.join(self._any(w) for w in sets)})")
                for row in rows:
                    g, at = row[0], row[1]
                    for i, by_group in enumerate(times, 2):
                        if row[i]:
                            found = by_group.get(g)
                            if found is None:
                                by_group[g] = [at]
                            else:
                                found.append(at)
            for prune in live:
                by_group = times[sets.index(prune.window)]
                need, keep = prune.need, []
                for g, stamps in by_group.items():
                    if len(stamps) < need:
                        continue
                    stamps.sort()
                    # any(lo >= hi - span for lo, hi in zip(stamps, stamps[need - 1:])), the
                    # same operations on the same floats, without a Python frame per pair
                    if any(map(operator.ge, stamps,
                               map(operator.sub, stamps[need - 1:], itertools.repeat(span)))):
                        keep.append(g)
                if keep and prune.distinct is not None and seen is not None:
                    keep = [g for g in keep if len(seen.get(g, ())) >= need]
                elif keep and prune.distinct is not None:
                    # among all the group's matching events, timed or not (as the plan);
                    # distinct pairs counted here: 0.03 s, COUNT(DISTINCT) GROUP BY 0.07 s
                    column = self.values[prune.distinct]
                    pairs = Counter(g for g, _ in self.conn.execute(
                        f"SELECT DISTINCT {col}, {column} FROM temp.{self.TABLE} "
                        f"WHERE {self._any(prune.window)} AND {column} IS NOT NULL AND {col} IN "
                        f"(SELECT value FROM json_each(?))", (json.dumps(keep),)))
                    keep = [g for g in keep if pairs[g] >= need]
                self._reaching[prune] = sorted(keep)
        self.timings["shared:windows"] = (
            self.timings.get("shared:windows", 0.0) + time.process_time() - started)

    def _survivors(self, prune: GroupPrune) -> list[str]:
        """The (lower-cased) groups that pass `prune`."""
        col = self.groups[prune.field]
        if prune.window:
            self._any(prune.window)  # raises if SQLite rejects one of them
            if prune not in self._reaching:
                self._count(prune.field, prune.span)
            return self._reaching[prune]
        if prune.every:
            if not all(self._matched(s) for s in prune.every):
                return []
            seen = ", ".join(f"MAX({self._any(s)})" for s in prune.every)
            rows = self.conn.execute(
                f"SELECT {col}, {seen} FROM temp.{self.TABLE} WHERE {col} IS NOT NULL "
                f"GROUP BY {col}"
            ).fetchall()
            return [row[0] for row in rows if all(row[1:])]
        raise AssertionError(f"empty prune: {prune!r}")

    def input_ids(self, rule: CompiledRule) -> tuple[str, list[Any]]:
        """SQL selecting the row ids of the correlation's input: events a base rule matches,
        of the groups that pass its prune."""
        self._build()
        cond = self._any(rule.bases)
        params: list[Any] = []
        if not self._matched(rule.bases):
            return _NO_INPUT, []
        if rule.prune is not None:
            keep = self._survivors(rule.prune)
            if not keep:
                return _NO_INPUT, []
            cond += f" AND {self.groups[rule.prune.field]} IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(keep))
        return (f"SELECT {table.quote(table.ID_COLUMN)} FROM temp.{self.TABLE} WHERE {cond}",
                params)

    def burst_ids(self, rule: CompiledRule, group_keys: dict[str, Any], start: float,
                  end: float) -> tuple[str, list[Any]] | None:
        """SQL selecting the row ids of a burst's events (see `_burst_rows`), or None when a
        group value is not text (compared as stored, not lower-cased)."""
        if not all(isinstance(v, str) and n in self.groups for n, v in group_keys.items()):
            return None
        self._build()
        where = [self._any(rule.bases)]
        params: list[Any] = []
        for name, value in group_keys.items():
            where.append(f"{self.groups[name]} = ?")
            params.append(value)
        where.append(f"{table.quote(table.TS_COLUMN)} BETWEEN ? AND ?")
        params += [start, end]
        return (f"SELECT {table.quote(table.ID_COLUMN)} FROM temp.{self.TABLE} "
                f"WHERE {' AND '.join(where)}", params)

    def rows_of_groups(self, rule: CompiledRule, names: list[str], values: list[str]
                       ) -> list[tuple[Any, ...]]:
        """(`_id`, `_ts`, group values...) of the timed events a base rule of `rule` matches
        whose first group value is one of `values` (`_burst_rows_batched`)."""
        self._build()
        cols = ", ".join(self.groups[n] for n in names)
        ts = table.quote(table.TS_COLUMN)
        return self.conn.execute(
            f"SELECT {table.quote(table.ID_COLUMN)}, {ts}, {cols} FROM temp.{self.TABLE} "
            f"WHERE {self._any(rule.bases)} AND {ts} IS NOT NULL AND {self.groups[names[0]]} "
            f"IN (SELECT value FROM json_each(?))", (json.dumps(values),)).fetchall()

    @property
    def built(self) -> bool:
        """Whether the inputs table exists, complete."""
        return self._ready

    def close(self) -> None:
        """Nothing: the table stays until the next run replaces it (`_create`) or the connection
        closes. DROP frees it page by page, 0.018 s per 100,000 rows, and `scan` closes the
        connection next."""


_Outcome = tuple[list[Finding], SecretSightError | None]


def _database_file(conn: sqlite3.Connection) -> str | None:
    """The file of the connection's main database (None: in memory or temporary)."""
    for _, name, path in conn.execute("PRAGMA database_list"):
        if name == "main":
            return path or None
    return None


class _Sample:
    """Rows spread evenly over the events table, on which a predicate's cost is counted in
    SQLite VM instructions (`set_progress_handler`: deterministic, unlike a clock on a shared
    box), with the share of rows it matches. `_lanes` sizes the two halves with it.

    On the 100,000-event benchmark log the instructions per sampled row predict a predicate's
    time over the table within ~10 % (8.5 ns per instruction and row: `bulk_read`'s base
    predicate 40 per row, 0.034 s; a CloudTrail one on Vault events 2, 0.003 s)."""

    TABLE = "secretsight_sample"
    ROWS = 1000
    TICK = 100  # instructions between progress callbacks: +-0.1 per row over 1,000 rows

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.rows = 0
        self._cache: dict[str, tuple[float, float]] = {}
        last = conn.execute(f"SELECT MAX({table.quote(table.ID_COLUMN)}) FROM main.{table.TABLE}"
                            ).fetchone()[0] or 0
        ids = list(range(1, last + 1, max(1, last // self.ROWS)))
        conn.execute(f"DROP TABLE IF EXISTS temp.{self.TABLE}")
        conn.execute(f"CREATE TEMP TABLE {self.TABLE} AS SELECT * FROM main.{table.TABLE} "
                     f"WHERE {table.quote(table.ID_COLUMN)} IN (SELECT value FROM json_each(?))",
                     (json.dumps(ids),))
        self.rows = conn.execute(f"SELECT COUNT(*) FROM temp.{self.TABLE}").fetchone()[0]
        self._base = self._ops("1")[0]

    def _ops(self, expr: str) -> tuple[float, int]:
        ticks = [0]

        def tick() -> int:
            ticks[0] += 1
            return 0

        self.conn.set_progress_handler(tick, self.TICK)
        try:
            row = self.conn.execute(
                f"SELECT SUM(CASE WHEN ({expr}) THEN 1 ELSE 0 END) FROM temp.{self.TABLE}"
            ).fetchone()
        finally:
            self.conn.set_progress_handler(None, 0)
        return float(ticks[0] * self.TICK), int(row[0] or 0)

    def cost(self, expr: str) -> tuple[float, float]:
        """(VM instructions per row, share of rows matched) of a WHERE clause; (0, 0) if
        SQLite rejects it (the rules that use it fail alone, at no cost)."""
        hit = self._cache.get(expr)
        if hit is None:
            try:
                ops, matched = self._ops(expr)
            except sqlite3.Error:
                hit = (0.0, 0.0)
            else:
                rows = max(1, self.rows)
                hit = (max(0.0, ops - self._base) / rows, matched / rows)
            self._cache[expr] = hit
        return hit

    def distinct(self, name: str, preds: tuple[str, ...]) -> int:
        """How many distinct lower-cased `name` values the sampled rows matching one of
        `preds` carry (0 if SQLite rejects one)."""
        where = " OR ".join(f"({p})" for p in preds)
        try:
            row = self.conn.execute(
                f"SELECT COUNT(DISTINCT lower({table.quote(name)})) FROM temp.{self.TABLE} "
                f"WHERE {where}").fetchone()
        except sqlite3.Error:
            return 0
        return int(row[0] or 0)

    def close(self) -> None:
        self.conn.execute(f"DROP TABLE IF EXISTS temp.{self.TABLE}")


# What a correlation costs per matching row beyond its predicates, in the sample's unit (VM
# instructions per row, ~8.5 ns each), from its phases' times on the benchmark logs (100,000
# and 1,000,000 events; base predicates matching every event):
# - one pass over the rows of a (group, timespan, predicates) window that some group could
#   pass, shared by the prunes over it (`_count`): ~80 at both sizes (bulk_read's), ~100 when
#   it also collects distinct values (path_diversity's two children);
_WINDOW_OPS = 80.0
_DISTINCT_OPS = 20.0
# - its plan and bursts: they work on the groups that survive the prunes, not on every row
#   (path_diversity's: ~110 per row at 100,000 events, ~60 at 1,000,000), so only roughly.
_PLAN_OPS = 20.0
# A lower-cased group or value column of the shared inputs table, per row.
_COLUMN_OPS = 3.0
# A scan of the events table of its own (the plain rules'), reading a row's columns: 0.012 s
# per 100,000 rows for a bare scan, more with the columns read, few instructions.
_SCAN_OPS = 40.0


def _correlation_cost(members: list[CompiledRule], sample: _Sample) -> float:
    """What a linked set of correlations adds beyond its predicates, estimated on `sample`:
    each window pass once, each plan by the share of sampled rows its base rules match."""
    total = 0.0
    windows: dict[tuple[str, int, tuple[str, ...]], float] = {}
    for r in (c for rule in members for c in (rule, *rule.children)):
        if not r.bases or r.children:
            continue  # a parent over its children's alerts costs what they do
        matched = min(1.0, sum(sample.cost(p)[1] for p in r.bases))
        prune = r.prune
        if prune is not None and prune.every and not all(
                any(sample.cost(p)[1] for p in s) for s in prune.every):
            matched = 0.0  # a referenced rule that matches nothing: no group qualifies
        if prune is not None and prune.distinct is not None and \
                sample.distinct(prune.distinct, prune.window) < prune.need:
            matched = 0.0  # too few distinct values seen: its windows most likely stop early
        if prune is not None and prune.window and matched:
            key = (prune.field, prune.span, prune.window)
            share = min(1.0, sum(sample.cost(p)[1] for p in prune.window))
            extra = _DISTINCT_OPS if prune.distinct is not None else 0.0
            windows[key] = max(windows.get(key, 0.0), share * (_WINDOW_OPS + extra))
        total += _PLAN_OPS * matched
    return total + sum(windows.values())


def _sized_sets(rules: list[CompiledRule], sample: _Sample | None = None
                ) -> list[tuple[float, list[CompiledRule]]]:
    """The rules that share computed inputs, with their estimated cost: the plain rules (one
    shared scan), and each set of correlations linked by a common base predicate.

    Sizes come from the data when a `sample` is given: each predicate's VM instructions per
    sampled row, each lower-cased column `_COLUMN_OPS`, each window pass and plan
    (`_correlation_cost`) by the share of rows its base rules match (a CloudTrail rule on a
    Vault log costs almost nothing, a window over every event a lot; a value_count whose
    sampled rows carry too few distinct values nothing), the plain rules' own scan
    `_SCAN_OPS`. Without one
    (counted from the rules only: at 1M Vault events the lane process did 13 % more than the
    caller; 0.47 against 0.36 s per 100,000 once the plain rules got cheaper): a predicate
    costs a column of the shared inputs, a plain rule about half of that, a correlation one
    predicate."""
    plain = [r for r in rules if r.plan is None and not r.children]
    linked: list[tuple[list[CompiledRule], set[str]]] = []
    for rule in rules:
        if rule.plan is None and not rule.children:
            continue
        members, preds = [rule], set(rule.bases)
        for other in [g for g in linked if g[1] & preds]:
            linked.remove(other)
            members = other[0] + members
            preds |= other[1]
        linked.append((members, preds))
    if sample is None:
        sets = [(len(plain) / 2, plain)] if plain else []
        sets += [(float(len(preds) + len(members)), members) for members, preds in linked]
        return sets
    sets = [(_SCAN_OPS + sum(sample.cost(" OR ".join(f"({q})" for q in r.queries))[0]
                             for r in plain if r.queries), plain)] if plain else []
    for members, preds in linked:
        columns = {name for r in members for c in (r, *r.children) for name in c.meta.group_by}
        columns |= {c.prune.distinct for r in members for c in (r, *r.children)
                    if c.prune is not None and c.prune.distinct is not None}
        size = sum(sample.cost(p)[0] for p in sorted(preds)) + _COLUMN_OPS * len(columns)
        size += _correlation_cost(members, sample)
        sets.append((size, members))
    return sets


def _lanes(rules: list[CompiledRule], sample: _Sample | None = None
           ) -> tuple[list[CompiledRule], list[CompiledRule]]:
    """Two halves of the work of about the same size (`_sized_sets`), keeping together the
    rules that share computed inputs. Largest set first, each into the lighter half (ties:
    this process's)."""
    sets = _sized_sets(rules, sample)
    if len(sets) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return list(rules), []
    halves: tuple[list[CompiledRule], list[CompiledRule]] = ([], [])
    weight = [0.0, 0.0]
    for size, members in sorted(sets, key=lambda item: -item[0]):  # stable: rule order
        lane = 0 if weight[0] <= weight[1] else 1
        halves[lane].extend(members)
        weight[lane] += size
    chosen = {id(r) for r in halves[1]}
    # each half in rule order (their findings are merged back in rule order anyway)
    return [r for r in rules if id(r) not in chosen], [r for r in rules if id(r) in chosen]


def _lane_process(send: Any, path: str, columns: list[str], config: Config,
                  rules: list[CompiledRule]) -> None:
    """The forked half of `RuleEvaluator._in_two_lanes`: sends ("ok", [(findings, error
    message) per rule], timings), or ("failed", why)."""
    try:
        conn = sqlite3.connect(f"{Path(path).as_uri()}?mode=ro", uri=True)
        try:
            helper = RuleEvaluator(conn, columns, config)
            results = helper._evaluate(rules)
        finally:
            conn.close()
        outcomes = []
        for rule in rules:
            found, error = results[id(rule)]
            outcomes.append((found, None if error is None else error.message))
        send.send(("ok", outcomes, helper.timings))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which runs them
        send.send(("failed", repr(exc)))
    finally:
        send.close()


class RuleEvaluator:
    def __init__(self, conn: sqlite3.Connection, columns: list[str], config: Config, *,
                 jobs: int = 2):
        self.conn = conn
        self.jobs = jobs  # 1: every rule in this process (`scan --jobs 1` forks nothing)
        self.columns = columns
        self.config = config
        self.errors: list[SecretSightError] = []
        self._latest: int | None = None
        # rule name -> CPU seconds of its own work, `shared:*` -> of a phase rules share
        # (profiling: `scan --timings`)
        self.timings: dict[str, float] = {}
        self._shared = _SharedInputs(conn, [])  # replaced by each run()
        self._rules: list[CompiledRule] = []
        self._plain_scanned = False
        self._plain_matches: dict[int, list[tuple[Any, ...]]] = {}  # id(rule) -> rows
        self._select = ", ".join(
            [table.quote(table.ID_COLUMN), table.quote(table.TS_COLUMN)]
            + [table.quote(c) for c in _EVIDENCE_COLUMNS]
        )

    def run(self, ruleset: Any) -> list[Finding]:
        compiled = compiled_for(ruleset, self.config)
        self.errors.extend(compiled.errors)
        rules = compiled.rules
        path = _database_file(self.conn)
        main, other = _lanes(rules)
        if path is not None and self.jobs >= 2 and main and other:
            started = time.process_time()
            sample = _Sample(self.conn)
            try:
                main, other = _lanes(rules, sample)
            finally:
                sample.close()
            self.timings["shared:lanes"] = time.process_time() - started
        if path is None or self.jobs < 2 or not main or not other:
            results = self._evaluate(rules)
        else:
            results = self._in_two_lanes(path, main, other)
        # Findings and errors in rule order whichever lane produced them: the sort below is
        # stable, so ties keep the order of a one-lane run.
        findings: list[Finding] = []
        for rule in rules:
            found, error = results[id(rule)]
            findings.extend(found)
            if error is not None:
                self.errors.append(error)
        findings.sort(key=lambda f: (f.start, f.rule_name or "", f.user_id or ""))
        return findings

    def _evaluate(self, rules: list[CompiledRule]) -> dict[int, _Outcome]:
        """Every rule of `rules` on this connection: id(rule) -> (findings, SQLite error)."""
        out: dict[int, _Outcome] = {}
        self._shared = _SharedInputs(self.conn, rules)
        self._rules = rules
        self._plain_scanned = False
        self._plain_matches = {}
        try:
            for rule in rules:
                # CPU of the rule's own work: what the first rule to need a shared phase
                # (`shared:*`) spends on it is not charged to that rule (it was: on a Vault-only
                # log `--timings` showed ~0.3 s per 100,000 events for a CloudTrail rule that
                # merely came first)
                shared = self._shared_seconds()
                started = time.process_time()
                try:
                    if rule.plan is not None or rule.children:
                        out[id(rule)] = (self._correlation(rule), None)
                    else:
                        out[id(rule)] = (self._plain(rule), None)
                except sqlite3.Error as exc:
                    out[id(rule)] = ([], SecretSightError(f"rule {rule.meta.name!r}: SQLite: {exc}"))
                self.timings[rule.meta.name or rule.meta.id] = (
                    time.process_time() - started - (self._shared_seconds() - shared))
        finally:
            self._shared.close()
        self.timings.update(self._shared.timings)
        return out

    def _shared_seconds(self) -> float:
        """CPU spent so far in the phases rules share (the inputs table, windows, plain scan)."""
        return sum(self._shared.timings.values()) + self.timings.get("shared:plain", 0.0)

    def _in_two_lanes(self, path: str, main: list[CompiledRule],
                      other: list[CompiledRule]) -> dict[int, _Outcome]:
        """`main` on this connection while a forked process evaluates `other` on a read-only
        connection to the same database file: two cores. (Threads do not scale here: two
        threads each scanning the table on its own connection took 2-3x the time of one,
        presumably SQLite's process-wide mutexes; two processes took the time of one while a
        core was free; engine/README.md.) Each lane computes
        its own shared inputs (`_SharedInputs`) from the same rows with the same SQL, so a
        rule gets the rows it gets in one lane. If the process fails, its rules run here."""
        self.conn.commit()  # the other process reads committed rows only
        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_lane_process, name="secretsight-rules", daemon=True,
                                args=(send, path, self.columns, self.config, other))
        child.start()
        send.close()
        try:
            results = self._evaluate(main)
        except BaseException:
            child.kill()
            raise
        finally:
            try:
                reply = receive.recv()
            except (EOFError, OSError):
                reply = None
            receive.close()
            child.join()
        if not isinstance(reply, tuple) or reply[0] != "ok":
            results.update(self._evaluate(other))  # the process failed: same rules, here
            return results
        _, outcomes, timings = reply
        for rule, (found, error) in zip(other, outcomes, strict=True):
            results[id(rule)] = (found, None if error is None else SecretSightError(error))
        for name, seconds in timings.items():
            self.timings[f"{name} (lane 2)" if name.startswith("shared:") else name] = seconds
        return results

    # ---- plain rules
    def _plain_rows(self, rule: CompiledRule) -> list[tuple[Any, ...]]:
        """The events the plain rule matches, in row order. Every plain rule of the run is
        evaluated in one scan (20 scans of 100,000 rows took 0.45 s, one with their OR 0.19 s:
        most events fail every rule, and a scan costs more than failing one more predicate);
        a rule SQLite rejects makes that scan fail, and then each rule runs its own query."""
        if not self._plain_scanned:
            self._plain_scanned = True
            plains = [r for r in self._rules if r.plan is None and not r.children and r.queries]
            wheres = [" OR ".join(f"({q})" for q in r.queries) for r in plains]
            flags = ", ".join(f"CASE WHEN ({w}) THEN 1 ELSE 0 END" for w in wheres)
            started = time.process_time()
            try:
                rows = self.conn.execute(
                    f"SELECT {self._select}, {flags} FROM main.{table.TABLE} "
                    f"WHERE {' OR '.join(f'({w})' for w in wheres)}"
                ).fetchall()
            except sqlite3.Error:
                pass  # each rule's own query below reports its error
            else:
                width = 2 + len(_EVIDENCE_COLUMNS)
                for i, r in enumerate(plains):
                    self._plain_matches[id(r)] = [row[:width] for row in rows if row[width + i]]
            self.timings["shared:plain"] = (
                self.timings.get("shared:plain", 0.0) + time.process_time() - started)
        matched = self._plain_matches.get(id(rule))
        if matched is not None:
            return matched
        where = " OR ".join(f"({q})" for q in rule.queries)
        return self.conn.execute(
            f"SELECT {self._select} FROM {table.TABLE} WHERE {where}"
        ).fetchall()

    def _plain(self, rule: CompiledRule) -> list[Finding]:
        rows = self._plain_rows(rule)
        by_user: dict[Any, list[tuple[Any, ...]]] = {}
        for row in rows:
            by_user.setdefault(row[3], []).append(row)
        findings = []
        for user, matches in by_user.items():
            matches.sort(key=lambda r: (r[1] is None, r[1] or 0.0, r[0]))
            burst = [matches[0]]
            for row in matches[1:]:
                prev = burst[-1]
                if row[1] is None or prev[1] is None or row[1] - prev[1] > PLAIN_BURST_GAP:
                    findings.append(self._finding(rule.meta, burst, user, {}))
                    burst = [row]
                else:
                    burst.append(row)
            findings.append(self._finding(rule.meta, burst, user, {}))
        return findings

    # ---- correlation rules
    def _alerts(self, rule: CompiledRule) -> list[dict[str, Any]]:
        """The backend's alerts for one correlation plan: one per qualifying sliding window."""
        assert rule.plan is not None
        if rule.prefilter is None:
            alerts, _ = execute_plan(self.conn, rule.plan, include_events=False)
            return alerts
        # The plan reads the unqualified `events`, which SQLite resolves to a TEMP table of
        # that name first: shadow it with just the events some base rule matches (plus the
        # latest event, which keeps the plan's observation horizon unchanged). Correlation
        # stages then work on the matching rows instead of every event loaded.
        ids, params = self._shared.input_ids(rule)
        if ids == _NO_INPUT:
            # no event matches a base rule, or no group can qualify: the plan could only
            # find nothing (it would run on the latest event alone, which matches no base rule
            # or belongs to a group that cannot alert)
            return []
        table.create(self.conn, temp=True)
        try:
            self.conn.execute(
                f"INSERT INTO temp.{table.TABLE} SELECT * FROM main.{table.TABLE} "
                f"WHERE {table.quote(table.ID_COLUMN)} IN ({ids} UNION ALL SELECT ?)",
                (*params, self._latest_id()),
            )
            alerts, _ = execute_plan(self.conn, rule.plan, include_events=False)
        finally:
            self.conn.execute(f"DROP TABLE temp.{table.TABLE}")
        return alerts

    def _temporal_alerts(self, rule: CompiledRule) -> list[dict[str, Any]]:
        """Parent temporal correlation over child correlation alerts (see _nested_temporal)."""
        span = rule.meta.timespan
        by_group: dict[str, list[tuple[float, int, dict[str, Any]]]] = {}
        for slot, child in enumerate(rule.children):
            for alert in self._alerts(child):
                key = repr(sorted(alert["group_keys"].items()))
                by_group.setdefault(key, []).append((alert["window_end"], slot, alert))
        out = []
        for items in by_group.values():
            items.sort(key=lambda item: (item[0], item[1]))
            # Sliding window over the child alerts, with per-child counts kept in step: O(n).
            counts = [0] * len(rule.children)
            distinct = 0
            lo = 0
            for hi, (end, slot, alert) in enumerate(items):
                counts[slot] += 1
                if counts[slot] == 1:
                    distinct += 1
                while items[lo][0] < end - span:
                    gone = items[lo][1]
                    counts[gone] -= 1
                    if counts[gone] == 0:
                        distinct -= 1
                    lo += 1
                if distinct >= rule.required:
                    # Evidence is read once per merged burst (`_child_range`), not per window.
                    out.append(
                        {
                            "group_keys": alert["group_keys"],
                            "window_start": end - span,
                            "window_end": end,
                            "metric_value": distinct,
                            "_child_range": (items, lo, hi),
                        }
                    )
        return out

    def _correlation(self, rule: CompiledRule) -> list[Finding]:
        alerts = self._temporal_alerts(rule) if rule.children else self._alerts(rule)
        groups: dict[str, list[dict[str, Any]]] = {}
        for alert in alerts:
            key = repr(sorted(alert["group_keys"].items()))
            groups.setdefault(key, []).append(alert)
        findings = []
        every: list[list[dict[str, Any]]] = []
        for alerts_of_group in groups.values():
            # Top-level plans return bursts already merged in SQL (`_merged_query`); nested
            # children and other shapes return windows. Merging is idempotent either way.
            alerts_of_group.sort(key=lambda a: (a["window_start"], a["window_end"]))
            bursts: list[list[dict[str, Any]]] = [[alerts_of_group[0]]]
            end = alerts_of_group[0]["window_end"]
            for alert in alerts_of_group[1:]:
                if alert["window_start"] <= end:
                    bursts[-1].append(alert)
                    end = max(end, alert["window_end"])
                else:
                    bursts.append([alert])
                    end = alert["window_end"]
            every.extend(bursts)
        spans = [self._burst_span(burst) for burst in every]
        batched = self._burst_rows_batched(rule, every, spans) if len(every) >= _BATCH else None
        for i, burst in enumerate(every):
            rows = batched[i] if batched is not None else self._burst_rows(
                rule, burst[0]["group_keys"], *spans[i])
            findings.append(self._correlation_finding(rule, burst, rows))
        return findings

    @staticmethod
    def _burst_span(burst: list[dict[str, Any]]) -> tuple[float, float]:
        """The hull of a burst's windows (of its child alerts' for a nested temporal rule)."""
        if "_child_range" in burst[0]:
            items = burst[0]["_child_range"][0]
            lo = min(a["_child_range"][1] for a in burst)
            hi = max(a["_child_range"][2] for a in burst)
            return (min(child["window_start"] for _, _, child in items[lo : hi + 1]),
                    max(child["window_end"] for _, _, child in items[lo : hi + 1]))
        return min(a["window_start"] for a in burst), max(a["window_end"] for a in burst)

    def _burst_rows_batched(self, rule: CompiledRule, bursts: list[list[dict[str, Any]]],
                            spans: list[tuple[float, float]]
                            ) -> list[list[tuple[Any, ...]]] | None:
        """`_burst_rows` of many bursts from one pass over the shared inputs table, then one
        read of their events, instead of a pass per burst (the inputs table has no index: on a
        mixed 121,753-event log, cross_store_harvest's 61 bursts took 0.5 s). Same rows, in the
        same order (`_ts`, `_id`); None where the per-burst path is the one to take."""
        keys = [burst[0]["group_keys"] for burst in bursts]
        names = list(keys[0])
        if not rule.bases or not all(list(k) == names for k in keys):
            return None
        if not all(isinstance(v, str) and n in self._shared.groups
                   for k in keys for n, v in k.items()):
            return None
        found = self._shared.rows_of_groups(rule, names, sorted({k[names[0]] for k in keys}))
        by_group: dict[tuple[Any, ...], list[int]] = {}
        for i, k in enumerate(keys):
            by_group.setdefault(tuple(k[n] for n in names), []).append(i)
        ids: list[list[int]] = [[] for _ in bursts]
        for ident, at, *group in found:
            for i in by_group.get(tuple(group), ()):
                start, end = spans[i]
                if start <= at <= end:  # BETWEEN, on the same floats
                    ids[i].append(ident)
        wanted = sorted({ident for chosen in ids for ident in chosen})
        events = {row[0]: row for row in self.conn.execute(
            f"SELECT {self._select} FROM main.{table.TABLE} WHERE "
            f"{table.quote(table.ID_COLUMN)} IN (SELECT value FROM json_each(?))",
            (json.dumps(wanted),))}
        return [sorted((events[i] for i in chosen), key=lambda r: (r[1], r[0])) for chosen in ids]

    def _latest_id(self) -> int | None:
        if self._latest is None:
            # The shared inputs hold every row's `_id` and `_ts` in the same row order: the
            # same row comes first, from a table a fraction of the width (0.02 s per 100,000
            # events from `events`).
            ident, ts = table.quote(table.ID_COLUMN), table.quote(table.TS_COLUMN)
            if self._shared.built and self._shared.latest is not None:
                # Its time is known (the totals' pass): the last row holding it, found from
                # the end of the table (time-ordered input: at once). Which of several rows
                # of that time does not matter: the plan only reads its time, and the row
                # adds nothing to any group that can alert (see `_alerts`).
                row = self.conn.execute(
                    f"SELECT {ident} FROM temp.{_SharedInputs.TABLE} WHERE {ts} = ? "
                    f"ORDER BY {ident} DESC LIMIT 1", (self._shared.latest,)).fetchone()
            else:
                source = (f"temp.{_SharedInputs.TABLE}" if self._shared.built
                          else f"main.{table.TABLE}")
                row = self.conn.execute(
                    f"SELECT {ident} FROM {source} ORDER BY {ts} DESC LIMIT 1").fetchone()
            self._latest = row[0] if row else -1
        return self._latest

    def _correlation_finding(self, rule: CompiledRule, burst: list[dict[str, Any]],
                             rows: list[tuple[Any, ...]]) -> Finding:
        group_keys = burst[0]["group_keys"]
        extra: dict[str, Any] = {
            "metric": max(a["metric_value"] for a in burst),
            "windows": sum(a.get("windows", 1) for a in burst),
            "group_by": self._original_case(group_keys, rows),
        }
        identity = extra["group_by"].get("user.id")
        if identity is None and "credential.id" in extra["group_by"]:
            # Grouped by the credential (token-theft signals): the finding still names the
            # principal behind it, as its events do.
            col = 2 + _EVIDENCE_COLUMNS.index("user.id")
            principals = Counter(r[col] for r in rows if r[col] is not None)
            identity = principals.most_common(1)[0][0] if principals else None
        if identity is None and extra["group_by"]:
            identity = next(iter(extra["group_by"].values()))
        return self._finding(rule.meta, rows, identity, extra)

    def _burst_rows(self, rule: CompiledRule, group_keys: dict[str, Any], start: float,
                    end: float) -> list[tuple[Any, ...]]:
        """The events of one burst: matched by a base rule, of the group, inside the hull of
        its windows (what the backend's per-window evidence lists add up to)."""
        order = f"ORDER BY {table.quote(table.TS_COLUMN)}, {table.quote(table.ID_COLUMN)}"
        shared = self._shared.burst_ids(rule, group_keys, start, end) if rule.bases else None
        if shared is not None:
            ids, ids_params = shared
            return self.conn.execute(
                f"SELECT {self._select} FROM main.{table.TABLE} "
                f"WHERE {table.quote(table.ID_COLUMN)} IN ({ids}) {order}", ids_params,
            ).fetchall()
        where = [f"({rule.prefilter})" if rule.prefilter else "1"]
        params: list[Any] = []
        for name, value in group_keys.items():
            col = table.quote(name)
            if isinstance(value, str):
                where.append(f"lower({col}) = ?")
            else:
                where.append(f"{col} = ?")
            params.append(value)
        where.append(f"{table.quote(table.TS_COLUMN)} BETWEEN ? AND ?")
        params += [start, end]
        return self.conn.execute(
            f"SELECT {self._select} FROM main.{table.TABLE} WHERE {' AND '.join(where)} {order}",
            params,
        ).fetchall()

    @staticmethod
    def _original_case(group_keys: dict[str, Any], rows: list[tuple[Any, ...]]) -> dict[str, Any]:
        """The backend lower-cases group keys (Sigma grouping is case-insensitive): report the
        value as the events spell it."""
        out = {}
        for name, value in group_keys.items():
            if name in _EVIDENCE_COLUMNS and isinstance(value, str):
                col = 2 + _EVIDENCE_COLUMNS.index(name)
                spelled = Counter(
                    r[col] for r in rows if isinstance(r[col], str) and r[col].lower() == value
                )
                if spelled:
                    value = spelled.most_common(1)[0][0]
            out[name] = value
        return out

    def _finding(
        self, meta: RuleFacts, rows: list[tuple[Any, ...]], user: Any, extra: dict[str, Any]
    ) -> Finding:
        col = {name: 2 + i for i, name in enumerate(_EVIDENCE_COLUMNS)}

        def values(name: str) -> list[Any]:
            return [r[col[name]] for r in rows if r[col[name]] is not None]

        stamps = [r[col["@timestamp"]] for r in rows if r[1] is not None]
        paths = Counter(values("secret.path"))
        ips = Counter(values("source.ip"))
        datasets = sorted(set(values("event.dataset")))
        names = Counter(values("user.name"))
        credentials = Counter(values("credential.id"))
        evidence: dict[str, Any] = {
            "events": len(rows),
            "distinct_paths": len(paths),
            "paths": sorted(paths)[:_SAMPLE],
            "source_ips": sorted(ips)[:_SAMPLE],
            "actions": dict(sorted(Counter(values("event.action")).items())),
            "event_ids": values("event.id")[:5],
            **extra,
        }
        return Finding(
            anomaly=meta.anomaly,
            rule=meta.id,
            rule_name=meta.name,
            title=meta.title,
            severity=meta.severity,
            user_id=user,
            user_name=names.most_common(1)[0][0] if names else None,
            start=stamps[0] if stamps else "",
            end=stamps[-1] if stamps else "",
            dataset=datasets[0] if len(datasets) == 1 else None,
            evidence=evidence,
            # the group's credential when grouped by it, else the one most events name
            credential_id=extra.get("group_by", {}).get("credential.id")
            or (credentials.most_common(1)[0][0] if credentials else None),
        )
