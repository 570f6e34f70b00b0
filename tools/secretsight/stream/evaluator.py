"""Runs `StreamRules` over released, time-ordered batches: per-group windows, bursts, findings,
and the state's round trip through the detectors' `StateCache` (see rules.py for semantics)."""

from __future__ import annotations

import heapq
import json
from bisect import bisect_left, bisect_right
from operator import itemgetter
from typing import Any

from secretsight.detect.state import StateCache
from secretsight.engine.evaluate import PLAIN_BURST_GAP
from secretsight.findings import Finding
from secretsight.stream.codec import pack, unpack
from secretsight.stream.evidence import Evidence
from secretsight.stream.records import FORMAT, Run, Runs, assemble, group_id, plan
from secretsight.stream.rules import (
    EVIDENCE_COLUMNS,
    NS,
    Burst,
    Correlation,
    Group,
    StreamRules,
)
from secretsight.stream.steps import (
    HOPE_NONE,
    HOPE_RULES,
    HOPE_VALUES,
    Runner,
    make_runner,
    runner_source,
)

INF = float("inf")
# A group without an open burst or windows has no timer: a sweep per correlation, every
# `keep` of stream time, drops those idle for (IDLE_SLACK - 1) `keep`s (no window has held
# any of their events for a while), so an idle group is gone at most IDLE_SLACK `keep`s
# after its last event. One pass over a dict instead of a timer per group (a token re-reading
# its secrets every few minutes had its group visited, rescheduled or dropped and created
# again: 72,000 heap visits per 100,000 Vault reads); idle for two spans rather than one, a
# group read every few minutes is dropped and created again half as often.
IDLE_SLACK = 3.0
# A touched group is trimmed once its oldest event is this many `keep`s old, not one: one cut
# of several events instead of one per event (windows bisect to their start, so older events
# only cost memory until the cut).
TRIM_SLACK = 2.0
_META = "_meta"
_NEVER = -INF  # Group.last of a rule not matched yet
_END = itemgetter(0)


def _json_list(keys: tuple[Any, ...]) -> str:
    """`json.dumps(list(keys))`: a group's key in the store. One text key that JSON writes as
    it is (printable ASCII, no quote or backslash) is spelled without the encoder: a group is
    created for every new token, address or principal (11,772 per 100,000 Vault reads)."""
    if len(keys) == 1:
        k = keys[0]
        if (k.__class__ is str and k.isascii() and k.isprintable() and '"' not in k
                and "\\" not in k):
            return f'["{k}"]'
    return json.dumps(list(keys))


class StreamEvaluator:
    def __init__(self, rules: StreamRules, cache: StateCache | None = None) -> None:
        self.rules = rules
        self.cache = cache
        self.plain_state: dict[tuple[int, Any], Burst] = {}
        # per correlation: its groups by group-by value (one value, or a tuple of several:
        # `_group`), so an event looks its groups up without building a key
        self._by: list[dict[Any, Group]] = [{} for _ in rules.correlations]
        self.dirty: set[str] = set()
        # Timers: (due, state key) min-heap with stale entries skipped (`scheduled` holds each
        # key's live due), so stream time only visits the groups it changes.
        self.timers: list[tuple[float, str]] = []
        self.scheduled: dict[str, float] = {}
        self.starts: list[tuple[float, str]] = []  # (burst start, key), lazily validated
        # per correlation: the stream time of its next idle sweep (`_sweep`); the earliest of
        # them
        self._sweep_at = [-INF] * len(rules.correlations)
        self._next_sweep = -INF
        # state key -> (rule index, user or group keys): timers and flushes name their state
        # by key, and parsing it back (JSON) on every visit cost more than the visit.
        self.keyof: dict[str, tuple[int, Any]] = {}
        self.skey_of: dict[tuple[int, Any], str] = {}  # the reverse of keyof (groups)
        self.stored: set[str] = set()  # the keys the store holds a record of
        self._spell = [
            tuple((f, EVIDENCE_COLUMNS.index(f)) for f in c.group_by if f in EVIDENCE_COLUMNS)
            for c in rules.correlations
        ]
        # Every base rule on an event in one call (classify.py): a mask of the matching
        # rules, the evidence row, the group-by and counted values; then, per distinct mask,
        # the plain rules and correlations it feeds (`_plan`).
        classifier = rules.classifier()
        # (its generated function, and the exact fallback when that answers None: no call
        # of the Classifier object in between)
        self._fast, self._slow = classifier.fast, classifier.slow
        where = {f: n for n, f in enumerate(classifier.key_fields)}
        self._key_at = [tuple(where[f] for f in c.group_by) for c in rules.correlations]
        self._plans: dict[int, tuple[list[int], list[tuple[Any, ...]]]] = {}
        self._runs: dict[int, Runner] = {}  # per mask: its plan as one function (`_runner`)
        self._stale = [c.keep * TRIM_SLACK for c in rules.correlations]
        if cache is not None:
            self._load()

    # ---- keys in the store
    def _pkey(self, i: int, user: Any) -> str:
        skey = f"p{i}:{json.dumps(user)}"
        self.keyof[skey] = (i, user)
        return skey

    def _ckey(self, i: int, keys: tuple[Any, ...]) -> str:
        ref = (i, keys)
        skey = self.skey_of.get(ref)
        if skey is None:
            skey = self.skey_of[ref] = f"c{i}:{_json_list(keys)}"
            self.keyof[skey] = ref
        return skey

    def _load(self) -> None:
        assert self.cache is not None
        # (set here, not in __init__: the records exist only with a cache; flush runs after)
        self._written: dict[str, Runs] = {}  # group state key -> its records (records.py)
        self._stream_time = -INF  # stream time as `flush` last knew it
        plains = {p.meta.name: i for i, p in enumerate(self.rules.plains)}
        corrs = {c.meta.name: i for i, c in enumerate(self.rules.correlations)}
        groups: dict[tuple[str, str], list[Run]]
        groups = {}
        for key, value in self.cache.scan(NS):
            if value is None:
                continue
            if key == _META:  # (older state: a sweep time, now timers rebuilt from the state)
                continue
            value = unpack(value)
            kind, name, data = value["t"], value["r"], value["s"]
            if kind == "p" and name in plains:
                self.stored.add(key)
                i = plains[name]
                burst = self.plain_state[(i, value["u"])] = Burst.from_state(data)
                skey = self._pkey(i, value["u"])
                self._schedule(skey, burst.end + PLAIN_BURST_GAP)
                self._opened(skey, burst.start)
            elif kind == "c" and name in corrs:
                # a run of format 2 (its entries beside the state), or a whole group of
                # format 1 (0.3.2 and before: its entries in the state, from `b`)
                run = ((value["f"], 2, value["e"], data, key) if value.get("v") == FORMAT
                       else (data["b"], 1, data.pop("e"), data, key))
                groups.setdefault(group_id(value), []).append(run)
            else:  # a rule removed or renamed since: its state is dropped
                self.cache.delete(NS, key)
        for (name, _), runs in groups.items():
            i = corrs[name]
            corr = self.rules.correlations[i]
            runs.sort(key=itemgetter(0, 1))  # (oldest first; the newest holds the state)
            g = Group.from_state(corr, assemble(runs))
            self._by[i][g.keys[0] if len(g.keys) == 1 else g.keys] = g
            skey = g.skey = self._ckey(i, g.keys)
            self._written[skey] = Runs(g, [[r[0], len(r[2]), r[4]] for r in runs])
            if g.burst is not None or g.items:  # (else idle: the sweep's)
                self._schedule(skey, self._group_due(corr, g))
            if g.burst is not None:
                self._opened(skey, g.burst.start)

    def flush(self) -> None:
        """Write the changed state into the cache (committed with the offsets by the caller):
        a plain burst as one record, a correlation group as runs (records.py)."""
        cache = self.cache
        if cache is None:
            return
        keyof, stored, written = self.keyof, self.stored, self._written
        by, corrs = self._by, self.rules.correlations
        # Stream time, at least: the newest entry of the groups written so far (a group is
        # written after its events; later events are not older). Entries older than it
        # minus `keep` are in no window to come: not written.
        now = self._stream_time
        for key in self.dirty:
            i, ident = keyof[key]
            if key[0] == "p":
                burst = self.plain_state.get((i, ident))
                if burst is not None:
                    stored.add(key)
                    cache.put(NS, key, pack({"t": "p", "r": self.rules.plains[i].meta.name,
                                             "u": ident, "s": burst.to_state()}))
                    continue
                if key in stored:  # (a burst opened and closed since the last commit: no write)
                    stored.discard(key)
                    cache.put(NS, key, None)
            else:
                g = by[i].get(ident[0] if len(ident) == 1 else ident)  # (_group, inline)
                runs = written.get(key)
                if runs is not None and runs.group is not g:  # gone, or gone and created again
                    for run in runs.runs:
                        cache.put(NS, run[2], None)
                    del written[key]
                    runs = None
                if g is not None:
                    corr = corrs[i]
                    entries, base = g.entries, g.base
                    live = base
                    if entries:
                        if entries[-1][0] > now:
                            now = entries[-1][0]
                        cutoff = now - corr.keep
                        if entries[0][0] < cutoff:
                            live += bisect_left(entries, cutoff, key=_END)
                    end = base + len(entries)
                    if runs is None:
                        runs = written[key] = Runs(g)
                    held = runs.runs
                    if len(held) == 1 and held[0][0] + held[0][1] <= live:
                        # (the common case when commits are further apart than the window:
                        # its one run, all of it out of the window, replaced; `plan`'s result)
                        run = held[0]
                        run[0], run[1] = live, end - live
                        first, new = live, run[2]
                    else:
                        first, new, gone = plan(held, live, end, key)
                        for old in gone:
                            cache.put(NS, old, None)
                    cache.put(NS, new, pack({
                        "t": "c", "r": corr.meta.name, "v": FORMAT, "f": first,
                        "s": g.to_state(live), "e": corr.stored(entries[first - base:])}))
                    continue
            if key not in self.scheduled:
                del keyof[key]  # gone, and no timer names it any more
                if key[0] == "c":
                    del self.skey_of[(i, ident)]
        self.dirty.clear()
        self._stream_time = now

    # ---- events
    def _plan(self, mask: int) -> tuple[list[int], list[tuple[Any, ...]]]:
        """What a classifier mask feeds: the plain rules, and per correlation (in rule order)
        a step (see `process`): its index, the correlation, where its group key is in the
        classifier's `keys` (an index; a tuple of them for several), its groups, the bits
        of its referenced rules it keeps the last match of (temporal), and what
        `Group.ready` counts (steps.HOPE_*; distinct values: the first child's key index).
        Computed once per distinct mask."""
        rules = self.rules
        plains = [i for i, p in enumerate(rules.plains) if mask >> p.slot & 1]
        steps = []
        for i, corr in enumerate(rules.correlations):
            local = corr.local(mask)
            if not local:
                continue
            key_at = self._key_at[i]
            lbits = (tuple(b for b in range(len(corr.slots)) if local >> b & 1)
                     if corr.temporal_base else ())
            hope = HOPE_NONE if not corr.hope else (
                HOPE_VALUES if corr.hope_values else HOPE_RULES)
            steps.append((i, corr, key_at[0] if len(key_at) == 1 else key_at, self._by[i],
                          lbits, hope, corr.children[0].at, self._stale[i], corr.gate))
        plan = self._plans[mask] = (plains, steps)
        return plan

    def _group(self, i: int, keys: tuple[Any, ...]) -> Group | None:
        return self._by[i].get(keys[0] if len(keys) == 1 else keys)

    def _new_group(self, i: int, keys: tuple[Any, ...]) -> Group:
        g = Group(self.rules.correlations[i], keys, self._ckey(i, keys))
        self._by[i][keys[0] if len(keys) == 1 else keys] = g
        return g

    def _drop_group(self, i: int, keys: tuple[Any, ...]) -> None:
        del self._by[i][keys[0] if len(keys) == 1 else keys]

    def process(self, ts: float, events: list[dict[str, Any]]) -> list[Finding]:
        """All the events of timestamp `ts` (arrival order)."""
        out: list[Finding] = []
        fast, slow, runs = self._fast, self._slow, self._runs
        # Each event's mask runs its generated steps (steps.py). One event (the common case):
        # each group it feeds is settled right after its entry; several: once all of them are
        # in, in first-touch order (`_settle`), as a window anchored at `ts` holds every
        # event of `ts`.
        if len(events) == 1:
            event = events[0]
            mask, row, kv = fast(event) or slow(event)
            if mask:
                (runs.get(mask) or self._runner(mask))(ts, row, mask, kv, out, self.dirty,
                                                       None)
            return out
        touched: dict[Group, tuple[Any, ...]] = {}  # (by identity) group -> step
        dirty = self.dirty
        for event in events:
            mask, row, kv = fast(event) or slow(event)
            if mask:
                (runs.get(mask) or self._runner(mask))(ts, row, mask, kv, out, dirty, touched)
        for g, step in touched.items():
            self._settle(g, step, ts, out)
        return out

    def _runner(self, mask: int) -> Runner:
        """The mask's steps (`_plan`) as one generated function (steps.py), once per mask."""
        plains, steps = self._plans.get(mask) or self._plan(mask)
        run = self._runs[mask] = make_runner(
            runner_source(plains, steps), steps, self.rules.plains, self._plain,
            self._new_group, self._anchor, self._schedule, self._group_due, _NEVER, _END)
        return run

    def _settle(self, g: Group, step: tuple[Any, ...], ts: float, out: list[Finding]) -> None:
        """After the group's entries of `ts`: trim it, anchor its windows at `ts`, mark it
        changed and, with an open burst or windows, make sure its timer is set."""
        i, corr, stale, gate = step[0], step[1], step[7], step[8]
        if g.entries[0][0] < ts - stale:
            g.trim(corr, ts)
        if g.ready and len(g.entries) >= gate:
            self._anchor(i, corr, g, ts, out)
        self.dirty.add(g.skey)
        if g.burst is not None or g.items:  # (else idle: the sweep's)
            self._schedule(g.skey, self._group_due(corr, g))

    def _plain(self, i: int, plain: Any, ts: float, row: Any, out: list[Finding]) -> None:
        user = row[1]
        key = (i, user)
        burst = self.plain_state.get(key)
        if burst is not None and ts - burst.end > PLAIN_BURST_GAP:
            out.append(burst.evidence.finding(plain.meta, user, {}))
            burst = None
        skey = self._pkey(i, user)
        if burst is None:
            burst = self.plain_state[key] = Burst(start=ts, end=ts, folded=ts)
            self._opened(skey, ts)
        burst.evidence.add(row)
        burst.end = burst.folded = ts
        self.dirty.add(skey)
        self._schedule(skey, ts + PLAIN_BURST_GAP)

    def _anchor(self, i: int, corr: Correlation, g: Group, ts: float,
                out: list[Finding]) -> None:
        children = corr.children
        if not corr.required:  # (the caller checked the gate)
            child = children[0]
            metric = g.metric(corr, 0, ts - child.span)
            if child.need(metric):
                self._window(i, corr, g, ts, ts - corr.span, metric, out)
            return
        qualified = [k for k, child in enumerate(children)
                     if g.could(child) and child.need(g.metric(corr, k, ts - child.span))]
        items, latest, lo = g.items, g.latest, ts - corr.span
        for k in qualified:
            # engine.evaluate._temporal_alerts: child windows in (end, child) order, a sliding
            # window of the parent's timespan over them (items come in end order: the old
            # ones leave from the front).
            items.append((ts, k, ts - children[k].span))
            latest[k] = ts
            if items[0][0] < lo:
                del items[:bisect_left(items, lo, key=_END)]
            distinct = sum(1 for end in latest if end >= lo)
            if distinct >= corr.required:
                # (the children share one span: the first item's window starts first)
                self._window(i, corr, g, ts, items[0][2], distinct, out)

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
        self._opened(g.skey, start)
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
        if identity is None and "credential.id" in group:
            identity = burst.evidence.principal()  # the principal behind the credential
        if identity is None and group:
            identity = next(iter(group.values()))
        return burst.evidence.finding(
            corr.meta, identity, {"metric": burst.metric, "windows": burst.windows,
                                  "group_by": group}, credential=group.get("credential.id"))

    # ---- stream time
    def _schedule(self, skey: str, due: float) -> None:
        """Make sure the key is visited by `due`. Dues only move later as events arrive, so
        an earlier timer already set is kept: it fires, finds nothing due yet and sets the
        true one (one heap push per visit, not one per event)."""
        current = self.scheduled.get(skey)
        if current is not None and current <= due:
            return
        if due == INF:
            return
        self.scheduled[skey] = due
        heapq.heappush(self.timers, (due, skey))

    def _group_due(self, corr: Correlation, g: Group) -> float:
        """When something of the group can change without an event: its burst closes, or it
        has been idle long enough that no window holds any of its events."""
        due = INF
        if g.burst is not None:
            due = g.burst.end + corr.span
        if g.entries:  # the group goes idle (anchors trim older entries themselves)
            due = min(due, g.entries[-1][0] + corr.keep)
        if g.items:
            due = min(due, g.items[-1][0] + corr.span)
        return due

    def _opened(self, skey: str, start: float) -> None:
        heapq.heappush(self.starts, (start, skey))

    def _burst_of(self, skey: str) -> Burst | None:
        ref = self.keyof.get(skey)
        if ref is None:
            return None
        if skey[0] == "p":
            return self.plain_state.get(ref)
        g = self._group(*ref)
        return g.burst if g is not None else None

    @property
    def open_since(self) -> float:
        """Earliest start of an open burst: a finding may still come that starts that early
        (incidents stay open until stream time passes it)."""
        starts = self.starts
        while starts:
            start, skey = starts[0]
            burst = self._burst_of(skey)
            if burst is not None and burst.start == start:
                return start
            heapq.heappop(starts)
        return INF

    def advance(self, bound: float, *, force: bool = False) -> list[Finding]:
        """No event older than `bound` will come: close the bursts that cannot grow any more
        and forget what no window needs (only the keys whose timer is due; `force`: all)."""
        if bound >= self._next_sweep:
            self._sweep(bound)
        timers = self.timers
        if not force and (not timers or timers[0][0] >= bound):
            return []  # (nothing due: the common case, once per released timestamp)
        if force:
            due_keys = sorted(self.scheduled)
            self.scheduled.clear()
            self.timers.clear()
        else:
            due_keys = []
            timers = self.timers
            while timers and timers[0][0] < bound:
                due, skey = heapq.heappop(timers)
                if self.scheduled.get(skey) == due:  # else stale: rescheduled since
                    del self.scheduled[skey]
                    due_keys.append(skey)
            due_keys.sort()
        out: list[Finding] = []
        for skey in due_keys:
            self._expire(skey, INF if force else bound, out)
        if force:
            self._sweep(INF)  # (the groups whose burst just closed, too)
            self._sweep_at = [-INF] * len(self._sweep_at)  # (a later event starts again)
            self._next_sweep = -INF
        out.sort(key=lambda f: (f.start, f.rule_name or f.rule, f.user_id or ""))
        return out

    def _sweep(self, bound: float) -> None:
        """Drop the groups of each correlation due for a sweep that have no open burst, no
        windows and no event in the last (IDLE_SLACK - 1) `keep`s before `bound` (no window
        from `bound` on can hold any of their events, and what they knew of readiness was
        about those events)."""
        at = self._sweep_at
        for i, corr in enumerate(self.rules.correlations):
            if bound < at[i]:
                continue
            at[i] = bound + corr.keep
            by, limit, gone = self._by[i], bound - corr.keep * (IDLE_SLACK - 1), []
            for key, g in by.items():
                if g.burst is None and not g.items:
                    entries = g.entries
                    if not entries or entries[-1][0] < limit:
                        gone.append(key)
            for key in gone:
                self.dirty.add(by.pop(key).skey)
        self._next_sweep = min(at, default=INF)

    def _expire(self, skey: str, bound: float, out: list[Finding]) -> None:
        ref = self.keyof.get(skey)
        if ref is None:
            return
        i = ref[0]
        if skey[0] == "p":
            user = ref[1]
            burst = self.plain_state.get((i, user))
            if burst is None:
                return
            if bound - burst.end > PLAIN_BURST_GAP:
                out.append(burst.evidence.finding(self.rules.plains[i].meta, user, {}))
                del self.plain_state[(i, user)]
                self.dirty.add(skey)
            else:
                self._schedule(skey, burst.end + PLAIN_BURST_GAP)
            return
        g = self._group(i, ref[1])
        if g is None:
            return
        corr = self.rules.correlations[i]
        if g.burst is None and not g.items:  # (a timer set before the burst closed)
            return  # idle or not: the sweep's
        changed = False
        if g.burst is not None and bound - corr.span > g.burst.end:
            out.append(self._correlation_finding(i, corr, g, g.burst))
            g.burst = None
            changed = True
        if g.prune(corr, bound) or changed:
            self.dirty.add(skey)
        if g.empty():
            self._drop_group(i, ref[1])
        elif g.burst is not None or g.items:  # (else idle: the sweep's)
            self._schedule(skey, self._group_due(corr, g))

    def finish(self) -> list[Finding]:
        return self.advance(float("inf"), force=True)

    def stats(self) -> dict[str, int]:
        return {"groups": sum(len(by) for by in self._by),
                "plain_bursts": len(self.plain_state),
                "entries": sum(len(g.entries) for by in self._by for g in by.values())}


__all__ = ["Evidence", "StreamEvaluator"]
