"""Runs `StreamRules` over released, time-ordered batches: per-group windows, bursts, findings,
and the state's round trip through the detectors' `StateCache` (see rules.py for semantics)."""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from operator import itemgetter
from typing import Any

from secretsight.detect.state import StateCache
from secretsight.engine.evaluate import PLAIN_BURST_GAP
from secretsight.findings import Finding
from secretsight.stream.evidence import Evidence
from secretsight.stream.predicate import _text, fold
from secretsight.stream.rules import (
    EVIDENCE_COLUMNS,
    NS,
    Burst,
    Correlation,
    Group,
    StreamRules,
    flatten,
    row_of,
)

SWEEP = 10.0  # seconds of stream time between sweeps closing finished bursts and idle groups
_META = "_meta"


def _group_value(value: Any) -> Any:
    # The backend groups on lower(text) (ASCII folding), other JSON types as they are.
    if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return fold(_text(value) or "")


class StreamEvaluator:
    def __init__(self, rules: StreamRules, cache: StateCache | None = None) -> None:
        self.rules = rules
        self.cache = cache
        self.plain_state: dict[tuple[int, Any], Burst] = {}
        self.groups: dict[tuple[int, tuple[Any, ...]], Group] = {}
        self.dirty: set[str] = set()
        self.next_sweep: float | None = None
        # Earliest start of an open burst at the last sweep (what could still become a finding
        # starting that early): incidents stay open until stream time passes it.
        self.open_since = float("inf")
        self.swept = False  # set by each sweep (the caller resets it)
        self._spell = [
            tuple((f, EVIDENCE_COLUMNS.index(f)) for f in c.group_by if f in EVIDENCE_COLUMNS)
            for c in rules.correlations
        ]
        self._values = [
            any(ch.value_field for ch in c.children) for c in rules.correlations]
        if cache is not None:
            self._load()

    # ---- keys in the store
    @staticmethod
    def _pkey(i: int, user: Any) -> str:
        return f"p{i}:{json.dumps(user)}"

    @staticmethod
    def _ckey(i: int, keys: tuple[Any, ...]) -> str:
        return f"c{i}:{json.dumps(list(keys))}"

    def _load(self) -> None:
        assert self.cache is not None
        plains = {p.meta.name: i for i, p in enumerate(self.rules.plains)}
        corrs = {c.meta.name: i for i, c in enumerate(self.rules.correlations)}
        for key, value in self.cache.scan(NS):
            if value is None:
                continue
            if key == _META:
                self.next_sweep = value.get("next_sweep")
                continue
            kind, name, data = value["t"], value["r"], value["s"]
            if kind == "p" and name in plains:
                i = plains[name]
                self.plain_state[(i, value["u"])] = Burst.from_state(data)
            elif kind == "c" and name in corrs:
                i = corrs[name]
                g = Group.from_state(self.rules.correlations[i], data)
                self.groups[(i, g.keys)] = g
            else:  # a rule removed or renamed since: its state is dropped
                self.cache.delete(NS, key)

    def flush(self) -> None:
        """Write the changed state into the cache (committed with the offsets by the caller)."""
        cache = self.cache
        if cache is None:
            return
        for key in self.dirty:
            kind, _, rest = key.partition(":")
            i = int(kind[1:])
            if kind[0] == "p":
                user = json.loads(rest)
                burst = self.plain_state.get((i, user))
                cache.put(NS, key, None if burst is None else {
                    "t": "p", "r": self.rules.plains[i].meta.name, "u": user,
                    "s": burst.to_state()})
            else:
                keys = tuple(json.loads(rest))
                g = self.groups.get((i, keys))
                cache.put(NS, key, None if g is None else {
                    "t": "c", "r": self.rules.correlations[i].meta.name, "s": g.to_state()})
        self.dirty.clear()
        cache.put(NS, _META, {"next_sweep": self.next_sweep})

    # ---- events
    def process(self, ts: float, events: list[dict[str, Any]]) -> list[Finding]:
        """All the events of timestamp `ts` (arrival order)."""
        out: list[Finding] = []
        rules = self.rules
        bases = rules.bases
        touched: dict[tuple[int, tuple[Any, ...]], Group] = {}
        for event in events:
            flat = flatten(event, {})
            matched = [pred(flat) for _, pred in bases]
            if not any(matched):
                continue
            row = row_of(flat)
            for i, plain in enumerate(rules.plains):
                if matched[plain.slot]:
                    self._plain(i, plain, ts, row, out)
            for i, corr in enumerate(rules.correlations):
                mask = 0
                for j, s in enumerate(corr.slots):
                    if matched[s]:
                        mask |= 1 << j
                if not mask:
                    continue
                keys = tuple(_group_value(flat.get(f)) for f in corr.group_by)
                if None in keys:
                    continue  # the backend drops events without a group key
                values = None
                if self._values[i]:
                    values = tuple(
                        None if ch.value_field is None else _group_value(flat.get(ch.value_field))
                        for ch in corr.children)
                gk = (i, keys)
                g = self.groups.get(gk)
                if g is None:
                    g = self.groups[gk] = Group(corr, keys)
                g.add(corr, (ts, row, mask, values))
                touched[gk] = g
        for (i, _), g in touched.items():
            self._anchor(i, self.rules.correlations[i], g, ts, out)
            self.dirty.add(self._ckey(i, g.keys))
        return out

    def _plain(self, i: int, plain: Any, ts: float, row: Any, out: list[Finding]) -> None:
        user = row[1]
        key = (i, user)
        burst = self.plain_state.get(key)
        if burst is not None and ts - burst.end > PLAIN_BURST_GAP:
            out.append(burst.evidence.finding(plain.meta, user, {}))
            burst = None
        if burst is None:
            burst = self.plain_state[key] = Burst(start=ts, end=ts, folded=ts)
        burst.evidence.add(row)
        burst.end = burst.folded = ts
        self.dirty.add(self._pkey(i, user))

    def _anchor(self, i: int, corr: Correlation, g: Group, ts: float,
                out: list[Finding]) -> None:
        children = corr.children
        if not corr.required:
            metric = g.metric(corr, 0, ts - children[0].span)
            if children[0].need(metric):
                self._window(i, corr, g, ts, ts - corr.span, metric, out)
            return
        qualified = [k for k in range(len(children))
                     if children[k].need(g.metric(corr, k, ts - children[k].span))]
        for k in qualified:
            # engine.evaluate._temporal_alerts: child windows in (end, child) order, a sliding
            # window of the parent's timespan over them.
            g.items.append((ts, k, ts - children[k].span))
            g.items = [it for it in g.items if it[0] >= ts - corr.span]
            distinct = len({it[1] for it in g.items})
            if distinct >= corr.required:
                start = min(it[2] for it in g.items)
                self._window(i, corr, g, ts, start, distinct, out)

    def _window(self, i: int, corr: Correlation, g: Group, ts: float, start: float,
                metric: int, out: list[Finding]) -> None:
        """A qualifying window ending at `ts`: extend the group's burst or open one."""
        burst = g.burst
        if burst is not None and ts - corr.span <= burst.end:
            self._fold(i, g, burst, burst.folded, ts, inclusive_from=False)
            burst.end = burst.folded = ts
            burst.windows += 1
            burst.metric = max(burst.metric, metric)
            return
        if burst is not None:
            out.append(self._correlation_finding(i, corr, g, burst))
        burst = g.burst = Burst(start=start, end=ts, folded=ts, windows=1, metric=metric)
        self._fold(i, g, burst, start, ts, inclusive_from=True)

    def _fold(self, i: int, g: Group, burst: Burst, lo: float, hi: float, *,
              inclusive_from: bool) -> None:
        entries = g.entries
        key = itemgetter(0)
        a = (bisect_left if inclusive_from else bisect_right)(entries, lo, key=key)
        b = bisect_right(entries, hi, key=key)
        spell = tuple((f, col, g.keys[self.rules.correlations[i].group_by.index(f)])
                      for f, col in self._spell[i])
        for entry in entries[a:b]:
            burst.evidence.add(entry[1], spell)

    def _correlation_finding(self, i: int, corr: Correlation, g: Group, burst: Burst
                             ) -> Finding:
        group = burst.evidence.original_case(dict(zip(corr.group_by, g.keys, strict=True)))
        identity = group.get("user.id")
        if identity is None and group:
            identity = next(iter(group.values()))
        return burst.evidence.finding(
            corr.meta, identity, {"metric": burst.metric, "windows": burst.windows,
                                  "group_by": group})

    # ---- stream time
    def advance(self, bound: float, *, force: bool = False) -> list[Finding]:
        """No event older than `bound` will come: close what cannot grow any more (every
        SWEEP seconds of stream time, or now with `force`), forget what no window needs."""
        if not force:
            if self.next_sweep is None:
                self.next_sweep = bound + SWEEP
                return []
            if bound < self.next_sweep:
                return []
            self.next_sweep = bound + SWEEP
        out: list[Finding] = []
        for key in sorted(self.plain_state, key=lambda k: (k[0], json.dumps(k[1]))):
            burst = self.plain_state[key]
            if force or bound - burst.end > PLAIN_BURST_GAP:
                out.append(burst.evidence.finding(self.rules.plains[key[0]].meta, key[1], {}))
                del self.plain_state[key]
                self.dirty.add(self._pkey(*key))
        for gk in sorted(self.groups, key=lambda k: (k[0], json.dumps(list(k[1])))):
            g = self.groups[gk]
            corr = self.rules.correlations[gk[0]]
            changed = False
            if g.burst is not None and (force or bound - corr.span > g.burst.end):
                out.append(self._correlation_finding(gk[0], corr, g, g.burst))
                g.burst = None
                changed = True
            n = len(g.entries) + len(g.items)
            g.prune(corr, bound)
            if changed or len(g.entries) + len(g.items) != n:
                self.dirty.add(self._ckey(*gk))
            if g.empty():
                del self.groups[gk]
        self.open_since = min(
            [b.start for b in self.plain_state.values()]
            + [g.burst.start for g in self.groups.values() if g.burst is not None],
            default=float("inf"))
        self.swept = True
        out.sort(key=lambda f: (f.start, f.rule_name or f.rule, f.user_id or ""))
        return out

    def finish(self) -> list[Finding]:
        return self.advance(float("inf"), force=True)

    def stats(self) -> dict[str, int]:
        return {"groups": len(self.groups), "plain_bursts": len(self.plain_state),
                "entries": sum(len(g.entries) for g in self.groups.values())}


__all__ = ["Evidence", "StreamEvaluator"]
