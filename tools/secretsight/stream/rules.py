"""Every embedded Sigma rule over a time-ordered stream, with the engine's semantics.

`StreamRules.process(ts, events)` takes ALL the events of one timestamp (the reorder buffer
releases them together, in arrival order) and `advance(bound)` says that no event older than
`bound` will come. Findings come out when their burst can no longer grow, and are then exactly
what `scan` reports for the same events (tests/stream/test_parity.py):

- plain rule: one finding per (rule, `user.id`, burst); a burst ends after `PLAIN_BURST_GAP`
  without a match, so it is final once `bound - last match > PLAIN_BURST_GAP`;
- event_count / value_count / temporal over base rules: an anchor at every timestamp of a
  group's matching events, window [T - timespan, T] inclusive, the backend's metric (events,
  distinct values folded like COLLATE NOCASE, distinct referenced rules), its `gt`/`gte`
  condition; qualifying windows of a group that overlap form one burst (final once
  `bound - timespan > burst end`), whose evidence is every matching event of the group in
  [first window start, last anchor];
- a temporal correlation over correlations (path_diversity): the engine's own evaluation
  (`engine.evaluate.RuleEvaluator._temporal_alerts`) over the children's qualifying windows,
  processed in (window end, child) order.

State per (rule, group) lives in the detectors' `StateCache` (committed with the input offsets
in one store transaction) and is bounded: a group keeps the matching events of the last
`keep` seconds (the timespan, or the parent's plus the longest child's; up to two `keep`s
between cuts, evaluator.TRIM_SLACK) and its open burst's `Evidence`; a group with neither is
dropped.
"""

from __future__ import annotations

import copy
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from sigma.collection import SigmaCollection
from sigma.correlations import (
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)
from sigma.rule import SigmaRule

from secretsight.config import Config
from secretsight.engine.evaluate import CompiledRule, RuleFacts, compiled_for
from secretsight.stream.classify import Classifier
from secretsight.stream.evidence import Evidence, Row
from secretsight.stream.predicate import (
    Predicate,
    Unstreamable,
    compile_rule,
    flatten,
    guard_of,
)

# The engine's evidence columns (engine.evaluate._EVIDENCE_COLUMNS, a test keeps them equal),
# in Row order.
__all__ = ["EVIDENCE_COLUMNS", "NS", "Burst", "Correlation", "Group", "StreamRules", "flatten"]

EVIDENCE_COLUMNS = ("@timestamp", "user.id", "user.name", "credential.id", "event.dataset",
                    "event.id", "event.action", "secret.path", "source.ip")
NS = "stream"
_EVENT_COUNT = SigmaCorrelationType.EVENT_COUNT
_VALUE_COUNT = SigmaCorrelationType.VALUE_COUNT
_TEMPORAL = SigmaCorrelationType.TEMPORAL
_TS = itemgetter(0)
INF = float("inf")


@dataclass
class Child:
    """One windowed count (a flat correlation, or a child of a nested temporal one)."""

    name: str
    kind: SigmaCorrelationType
    span: float
    need: Callable[[int], bool]
    least: int  # the least metric `need` accepts (it accepts every larger one)
    slots: tuple[int, ...]  # indices into StreamRules.bases
    value_field: str | None = None  # value_count
    mask: int = 0  # bit per slot of the owning correlation
    bits: tuple[int, ...] = ()  # the mask's bits (temporal: its referenced rules)
    refs: int = 0  # distinct referenced rules
    every: bool = False  # every entry of the group counts (its mask is the correlation's)
    slot_mask: int = 0  # bit per slot (StreamRules.bases): the entries' masks are these
    at: int | None = None  # where its counted value is in an entry's keys (`key_fields`)


@dataclass
class Correlation:
    meta: RuleFacts
    group_by: tuple[str, ...]
    slots: tuple[int, ...]  # every base rule feeding it (evidence = any of them)
    children: list[Child]
    span: float  # the burst merge span: the rule's own timespan
    required: int = 0  # nested temporal: distinct children needed; 0 for a flat correlation
    keep: float = 0.0
    temporal_base: bool = False  # a child is a temporal over base rules (Group.last)
    counted: tuple[int, ...] = ()  # the children whose metric uses Group.counts
    gate: int = 0  # the least number of entries a qualifying window of any child needs
    # A flat value_count or temporal correlation: a group is anchored only once what it has
    # ever held could meet the condition (`Group.ready`); 0: the gate alone decides.
    hope: int = 0
    hope_values: bool = False  # `hope` counts distinct values (value_count), else rules
    # (entries hold the classifier's mask and keys; the state holds the correlation's own
    # mask and counted values: `Group.to_state`)
    _local: dict[int, int] = field(default_factory=dict)

    def local(self, mask: int) -> int:
        """The classifier's mask as a bit per referenced slot (the stored form)."""
        out = self._local.get(mask)
        if out is None:
            out = self._local[mask] = sum(
                1 << b for b, s in enumerate(self.slots) if mask >> s & 1)
        return out

    def stored(self, entries: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Entries in their stored form: (ts, row, `local` mask, the counted value per child
        (None where a child counts none), or None if no child counts values)."""
        local, known = self.local, self._local
        ats = tuple(c.at for c in self.children)
        if all(at is None for at in ats):
            return [(e[0], e[1], known.get(e[2]) or local(e[2]), None) for e in entries]
        if len(ats) == 1:
            at = ats[0]
            return [(e[0], e[1], known.get(e[2]) or local(e[2]), (e[3][at],))
                    for e in entries]
        return [(e[0], e[1], known.get(e[2]) or local(e[2]),
                 tuple([None if a is None else e[3][a] for a in ats])) for e in entries]


@dataclass
class Plain:
    meta: RuleFacts
    slot: int


def _need(rule: SigmaCorrelationRule) -> tuple[Callable[[int], bool], int]:
    """The condition on the metric, and the least metric meeting it."""
    cond = rule.condition
    op = getattr(cond, "op", None)
    count = int(getattr(cond, "count", 0))
    if op == SigmaCorrelationConditionOperator.GT:
        return (lambda m: m > count), count + 1
    if op == SigmaCorrelationConditionOperator.GTE:
        return (lambda m: m >= count), count
    raise Unstreamable(f"correlation condition {op} is not streamed (gt and gte are)")


class StreamRules:
    def __init__(self, config: Config, ruleset: Any, *, owned: bool = False) -> None:
        """`owned`: the caller loaded `ruleset` for these rules alone (open_detectors), so the
        placeholder pipeline may rewrite its rules in place, after the engine's compile (which
        works on its own copy): no second copy of every rule at start-up."""
        from secretsight.rules import placeholder_pipeline  # pySigma's transformations: on use

        self.compiled = compiled_for(ruleset, config)
        self.skipped: list[tuple[str, str]] = []  # (rule, why it does not stream)
        # The pipeline rewrites rules in place: a copy, as the engine compiles one.
        collection = ruleset if isinstance(ruleset, SigmaCollection) else ruleset.collection
        if not owned:
            collection = copy.deepcopy(collection)
        pipeline = placeholder_pipeline(config)
        by_name: dict[str, Any] = {r.name: r for r in collection.rules if r.name}
        self.bases: list[tuple[str, Predicate]] = []
        self.detections: list[SigmaRule] = []  # per base: the rule, placeholders applied
        self.guards: list[tuple[str, frozenset[str] | None] | None] = []  # per base: guard_of
        self._slot: dict[str, int] = {}
        self._base_errors: dict[str, str] = {}
        self.fields: set[str] = set()

        def slot(name: str) -> int:
            if name in self._base_errors:
                raise Unstreamable(f"{name}: {self._base_errors[name]}")
            if name not in self._slot:
                rule = by_name[name]
                if not isinstance(rule, SigmaRule):
                    raise Unstreamable(f"{name} is not a detection rule")
                try:
                    pipeline.apply(rule)
                    pred, fields = compile_rule(rule)
                except Unstreamable as exc:
                    self._base_errors[name] = str(exc)
                    raise Unstreamable(f"{name}: {exc}") from None
                self.fields |= fields
                self._slot[name] = len(self.bases)
                self.bases.append((name, pred))
                self.detections.append(rule)
                self.guards.append(guard_of(rule))
            return self._slot[name]

        self.plains: list[Plain] = []
        self.correlations: list[Correlation] = []
        self._classifier: Classifier | None = None
        for compiled in self.compiled.rules:
            name = compiled.meta.name or compiled.meta.id
            try:
                if compiled.plan is None and not compiled.children:
                    self.plains.append(Plain(compiled.meta, slot(name)))
                else:
                    self.correlations.append(self._correlation(compiled, by_name, slot))
            except Unstreamable as exc:
                self.skipped.append((name, str(exc)))
        self.key_fields = self._keys()

    def _correlation(self, compiled: CompiledRule, by_name: dict[str, Any],
                     slot: Callable[[str], int]) -> Correlation:
        rule = by_name[compiled.meta.name or ""]
        assert isinstance(rule, SigmaCorrelationRule)
        if rule.aliases:
            raise Unstreamable("correlation aliases are not streamed")
        group_by = tuple(rule.group_by or ())
        if not group_by:
            raise Unstreamable("a correlation without group-by is not streamed")

        def child_of(corr: SigmaCorrelationRule) -> Child:
            refs = [ref.rule for ref in corr.referenced_rules]
            if not all(isinstance(r, SigmaRule) for r in refs):
                raise Unstreamable(f"{corr.name}: nested correlations deeper than one level")
            if corr.type not in (SigmaCorrelationType.EVENT_COUNT,
                                 SigmaCorrelationType.VALUE_COUNT,
                                 SigmaCorrelationType.TEMPORAL):
                raise Unstreamable(f"correlation type {corr.type} is not streamed")
            fieldref = getattr(corr.condition, "fieldref", None)
            need, least = _need(corr)
            return Child(
                name=corr.name or "", kind=corr.type, span=float(corr.timespan.seconds),
                need=need, least=least, slots=tuple(slot(r.name or "") for r in refs),
                value_field=fieldref if corr.type == SigmaCorrelationType.VALUE_COUNT else None,
            )

        if compiled.children:
            children = []
            for ref in rule.referenced_rules:
                sub = ref.rule
                assert isinstance(sub, SigmaCorrelationRule)
                if tuple(sub.group_by or ()) != group_by:
                    raise Unstreamable("children grouped differently")
                children.append(child_of(sub))
            if len({c.span for c in children}) != 1:
                raise Unstreamable("children with different timespans")
            required = compiled.required
        else:
            children = [child_of(rule)]
            required = 0
        slots = tuple(sorted({s for c in children for s in c.slots}))
        full = (1 << len(slots)) - 1
        for c in children:
            c.mask = sum(1 << slots.index(s) for s in c.slots)
            c.bits = tuple(b for b in range(len(slots)) if c.mask >> b & 1)
            c.refs = len(c.bits)
            c.every = c.mask == full
            c.slot_mask = sum(1 << s for s in c.slots)
        span = float(rule.timespan.seconds)
        keep = span + max(c.span for c in children) if required else span
        counted = tuple(k for k, c in enumerate(children) if c.kind is _VALUE_COUNT
                        or (c.kind is _EVENT_COUNT and not c.every))
        # No window of a child can qualify while the group holds fewer entries than its
        # least metric (a temporal child: than one, if its rules can meet it at all): the
        # correlation is anchored only past the smallest of its children's gates.
        gate = min(c.least if c.kind is not _TEMPORAL else 1 if c.need(c.refs) else 1 << 62
                   for c in children)
        hope = children[0].least if not required and children[0].kind in (
            _VALUE_COUNT, _TEMPORAL) else 0
        return Correlation(compiled.meta, group_by, slots, children, span, required, keep,
                           any(c.kind is _TEMPORAL for c in children), counted, gate, hope,
                           bool(hope) and children[0].kind is _VALUE_COUNT)

    def classifier(self) -> Classifier:
        """Every base rule in one generated function (classify.py), returning the evidence
        row and the values the correlations group and count by (`key_fields`)."""
        if self._classifier is None:
            self._classifier = Classifier(self.detections, [p for _, p in self.bases],
                                          self.guards, EVIDENCE_COLUMNS, self.key_fields)
        return self._classifier

    def _keys(self) -> tuple[str, ...]:
        """The fields the correlations group and count by, each child told where its
        counted value is among them (`Child.at`)."""
        keys: list[str] = []
        for corr in self.correlations:
            for f in (*corr.group_by, *(ch.value_field for ch in corr.children)):
                if f is not None and f not in keys:
                    keys.append(f)
        for corr in self.correlations:
            for ch in corr.children:
                ch.at = None if ch.value_field is None else keys.index(ch.value_field)
        return tuple(keys)

    @property
    def streamed(self) -> list[str]:
        return [p.meta.name or p.meta.id for p in self.plains] + [
            c.meta.name or c.meta.id for c in self.correlations]


# ---------------------------------------------------------------------------------------------
# Per-group state


@dataclass
class Burst:
    start: float
    end: float  # last qualifying anchor (plain rule: last match)
    folded: float  # evidence folded up to this time (inclusive)
    windows: int = 0
    metric: int = 0
    evidence: Evidence = field(default_factory=Evidence)

    def to_state(self) -> list[Any]:
        return [self.start, self.end, self.folded, self.windows, self.metric,
                self.evidence.to_state()]

    @classmethod
    def from_state(cls, d: list[Any]) -> Burst:
        return cls(d[0], d[1], d[2], d[3], d[4], Evidence.from_state(d[5]))


class Group:
    """A correlation's state for one group-by value: matching events of the last `keep`
    seconds (entries; older ones until the next cut), the children's qualifying windows
    (nested temporal), the open burst.

    A child's metric over its window [T - span, T] is computed only when it could reach the
    condition (the window cannot hold more matches than the group holds entries), and then
    without rescanning the window:
    - `event_count` of every entry: entries from the first one at or after T - span (bisect);
    - `temporal` over base rules: the referenced rules whose last match (`last`) is in the
      window;
    - else (`value_count`, `event_count` of some of the rules) `counts` over the entries
      [lo, hi) (global indices): counted up to the end and uncounted below the window's start
      when the metric is asked, so a group that never comes near its condition counts nothing.
    """

    __slots__ = ("base", "burst", "counts", "entries", "hi", "items", "keys", "last", "latest",
                 "lo", "matched", "oldest", "ready", "seen", "skey")

    def __init__(self, corr: Correlation, keys: tuple[Any, ...], skey: str = "") -> None:
        self.keys = keys
        self.skey = skey  # its key in the store (evaluator._ckey), computed once
        # entry: (ts, row, mask, keys): the classifier's answer on the event (a bit per base
        # rule, the group-by and counted values), ONE tuple shared by every group it feeds
        self.entries: list[tuple[float, Row, int, tuple[Any, ...]]] = []
        self.base = 0  # global index of entries[0]
        # entries[0]'s time once the evaluator has looked (steps.py), else -INF: whether the
        # group is due for a trim is then read from the group itself, not from its oldest
        # entry (an old tuple and float, out of the cache by now). Every cut resets it.
        self.oldest = -INF
        # (each only for the correlations that read it: most groups live a few minutes)
        n = len(corr.children) if corr.counted else 0
        self.lo = [0] * n  # per counted child: global index range [lo, hi) in `counts`
        self.hi = [0] * n
        self.counts: list[dict[Any, int]] = [{} for _ in range(n)]
        # per referenced rule (local bit)
        self.last: list[float] = [-INF] * len(corr.slots) if corr.temporal_base else []
        self.matched = 0  # referenced rules with a match so far (`last` set)
        self.items: list[tuple[float, int, float]] = []  # (end, child, child window start)
        # per child (nested temporal): the end of its latest item; a child is in the window
        # [T - span, T] of items iff this is in it (items only leave it by age)
        self.latest: list[float] = [-INF] * len(corr.children) if corr.required else []
        self.burst: Burst | None = None
        # Whether a window of a flat value_count or temporal correlation (`hope`) could meet
        # its condition yet, by everything the group has held (an upper bound of any window's
        # metric: the distinct counted values, the referenced rules matched). Once true it
        # stays true; most groups of normal traffic never get there (one address reading one
        # store, one token in one network) and are never anchored. Kept up to date as
        # entries come (the evaluator's `process`, `note`): `seen` holds the distinct first
        # counted values until then (value_count).
        self.ready = not corr.hope
        self.seen: set[Any] | None = None if self.ready or not corr.hope_values else set()

    def note(self, corr: Correlation, entry: tuple[float, Row, int, tuple[Any, ...]]
             ) -> None:
        """An entry the group now holds, for `ready` (the evaluator inlines this)."""
        if corr.temporal_base:
            self.add_last(corr, entry)
        if self.ready:
            return
        seen = self.seen
        if seen is None:
            self.ready = self.matched >= corr.hope
        else:
            at = corr.children[0].at
            value = None if at is None else entry[3][at]
            if value is not None:
                seen.add(value)
                if len(seen) >= corr.hope:
                    self.ready, self.seen = True, None

    def could(self, child: Child) -> bool:
        """Whether the child's window could reach its condition (an upper bound: the group's
        entries; a temporal child's referenced rules)."""
        return child.need(child.refs if child.kind is _TEMPORAL else len(self.entries))

    def metric(self, corr: Correlation, i: int, since: float) -> int:
        """Child i's metric over the window starting at `since` (entries up to now)."""
        child = corr.children[i]
        kind = child.kind
        if kind is _TEMPORAL:
            last, n = self.last, 0
            for b in child.bits:
                if last[b] >= since:
                    n += 1
            return n
        entries = self.entries
        if kind is _EVENT_COUNT and child.every:
            return len(entries) - bisect_left(entries, since, key=_TS)
        counts, base = self.counts[i], self.base
        lo, hi = self.lo[i], self.hi[i]
        while lo < hi and entries[lo - base][0] < since:
            _count(counts, child, entries[lo - base], i, -1)
            lo += 1
        end = base + len(entries)
        if lo == hi:  # nothing counted: skip to the window
            while lo < end and entries[lo - base][0] < since:
                lo += 1
            hi = lo
        for k in range(hi - base, end - base):
            _count(counts, child, entries[k], i, +1)
        self.lo[i], self.hi[i] = lo, end
        if kind is _EVENT_COUNT:
            return counts.get(None, 0)
        return len(counts)

    def _cut(self, corr: Correlation, n: int) -> None:
        """Forget the first n entries (uncounted first where counted)."""
        base, entries = self.base, self.entries
        new = base + n
        for i in corr.counted:
            child = corr.children[i]
            lo, hi = self.lo[i], self.hi[i]
            if lo < new:
                for k in range(lo - base, min(hi, new) - base):
                    _count(self.counts[i], child, entries[k], i, -1)
                self.lo[i] = new
                self.hi[i] = max(hi, new)
        del entries[:n]
        self.base = new
        self.oldest = -INF

    def trim(self, corr: Correlation, ts: float) -> None:
        """At `ts`, before its windows (each starts at or after ts - keep): drop the events
        no window or burst can need any more."""
        entries = self.entries
        limit = ts - corr.keep
        if entries and entries[0][0] < limit:
            self._cut(corr, bisect_left(entries, limit, key=_TS))

    def prune(self, corr: Correlation, bound: float) -> bool:
        """Forget what no window from `bound` on needs; whether the state changed."""
        changed = False
        entries = self.entries
        limit = bound - corr.keep
        if entries and entries[0][0] < limit:
            self._cut(corr, bisect_left(entries, limit, key=_TS))
            changed = True
        if self.items:
            keep_from = bound - corr.span
            items = [it for it in self.items if it[0] >= keep_from]
            changed = changed or len(items) != len(self.items)
            self.items = items
        return changed

    def empty(self) -> bool:
        return not self.entries and not self.items and self.burst is None

    def to_state(self, base: int) -> dict[str, Any]:
        """Everything but the entries (stream/records.py writes those in runs, in their
        stored form: `Correlation.stored`); `base`: the global index of the first entry a
        window can still read (older ones are not written)."""
        # (tuples as they are: the encoders write them as arrays)
        return {"k": list(self.keys), "b": base, "lo": self.lo, "hi": self.hi,
                "i": self.items, "burst": self.burst.to_state() if self.burst else None}

    @classmethod
    def from_state(cls, corr: Correlation, d: dict[str, Any]) -> Group:
        """`d` in format 1's shape: the state with its entries `e` from index `b`
        (records.assemble gives format 2's runs that shape)."""
        g = cls(corr, tuple(d["k"]))
        g.base = d["b"]
        width = max((c.at for c in corr.children if c.at is not None), default=-1) + 1
        g.entries = [(e[0], tuple(e[1]), _slot_mask(corr, e[2]), _keys_of(corr, e[3], width))
                     for e in d["e"]]
        end = g.base + len(g.entries)
        if corr.counted:
            g.lo = list(d["lo"])
            # (state from 0.2.0 has no "hi": it counted every entry from lo on)
            g.hi = list(d.get("hi") or [end] * len(corr.children))
        for i in corr.counted:
            child = corr.children[i]
            g.lo[i] = max(g.lo[i], g.base)
            g.hi[i] = min(max(g.hi[i], g.lo[i]), end)
            for entry in g.entries[g.lo[i] - g.base:g.hi[i] - g.base]:
                _count(g.counts[i], child, entry, i, +1)
        for entry in g.entries:
            g.note(corr, entry)
        g.items = [tuple(i) for i in d["i"]]  # type: ignore[misc]
        for item in g.items:
            g.latest[item[1]] = max(g.latest[item[1]], item[0])
        g.burst = Burst.from_state(d["burst"]) if d["burst"] else None
        return g

    def add_last(self, corr: Correlation, entry: tuple[Any, ...]) -> None:
        """The entry is each of its referenced rules' last match (entries come in time
        order)."""
        mask, last = entry[2], self.last
        for bit, slot in enumerate(corr.slots):
            if mask >> slot & 1:
                if last[bit] == -INF:
                    self.matched += 1
                last[bit] = entry[0]


def _count(counts: dict[Any, int], child: Child, entry: tuple[Any, ...], i: int,
           delta: int) -> None:
    mask = entry[2]
    if not mask & child.slot_mask:
        return
    if child.kind == SigmaCorrelationType.EVENT_COUNT:
        key: Any = None
    elif child.kind == SigmaCorrelationType.VALUE_COUNT:
        key = None if child.at is None else entry[3][child.at]
        if key is None:
            return
    else:  # temporal: which referenced rules matched
        for slot in child.slots:
            if mask >> slot & 1:
                _bump(counts, slot, delta)
        return
    _bump(counts, key, delta)


def _slot_mask(corr: Correlation, local: int) -> int:
    """A stored entry's mask (a bit per referenced slot) as the classifier's."""
    return sum(1 << s for b, s in enumerate(corr.slots) if local >> b & 1)


def _keys_of(corr: Correlation, values: list[Any] | None, width: int) -> tuple[Any, ...]:
    """A stored entry's counted values where the classifier's keys hold them (the group-by
    values, which no entry reads, left None)."""
    keys: list[Any] = [None] * width
    if values is not None:
        for c, value in zip(corr.children, values, strict=True):
            if c.at is not None:
                keys[c.at] = value
    return tuple(keys)


def _bump(counts: dict[Any, int], key: Any, delta: int) -> None:
    n = counts.get(key, 0) + delta
    if n:
        counts[key] = n
    else:
        counts.pop(key, None)
