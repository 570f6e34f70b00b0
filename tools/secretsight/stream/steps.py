"""What one classified event does to the rules' state, written out per classifier mask.

`StreamEvaluator.process` hands each event with a non-zero mask (classify.py) to the plain rules
and the correlations that mask feeds: per correlation, find or create the group of the event's
group-by value, append the entry, keep `Group.ready` up to date, then trim, anchor, mark the
group changed and set its timer (`_settle`). Interpreting a list of steps per event (unpack a
tuple, test what kind of group key, which readiness, whether counted...) cost as much as the
work itself: in steady traffic every event has the same few masks (a token reading a secret
feeds bulk_read, path_diversity, cross_store_harvest and dual_source_ip). So, as the classifier
does for the rules' detections, each distinct mask gets ONE generated function with its steps
unrolled and every decision known at generation time left out: no readiness code for a
correlation without `hope`, the group key read at its fixed place, a correlation whose metric
counts nothing (`Correlation.counted` empty) trimmed inline (`Group._cut` without counts).

The semantics are `StreamEvaluator`'s (its `_plan` describes the steps; `_settle` is what a
batch of several events of one timestamp does with each touched group once they are all in):
tests/stream/test_parity.py checks scan == watch on every scenario.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import Any

# What Group.ready waits for: nothing, distinct counted values, referenced rules matched
HOPE_NONE, HOPE_VALUES, HOPE_RULES = range(3)

# run(ts, row, mask, kv, out, dirty, touched): `touched` None settles each group at once (one
# event of its timestamp); a dict collects the groups, in first-touch order, for `_settle`.
Runner = Callable[..., None]


def runner_source(plains: list[int], steps: list[tuple[Any, ...]]) -> str:
    """The source of `make(...)`, returning the mask's `run` function (see `make_runner`)."""
    body: list[str] = ["    entry = (ts, row, mask, kv)  # (one for every group it feeds)"]
    body += [f"    plain({i}, P{i}, ts, row, out)" for i in plains]
    setup: list[str] = []
    for n, step in enumerate(steps):
        i, corr, key_at, _by, lbits, hope, vat, stale, gate = step
        setup += [f"    by{n}, c{n}, s{n} = steps[{n}][3], steps[{n}][1], steps[{n}]"]
        body.append(f"    # {corr.meta.name}")
        if key_at.__class__ is int:
            body += [f"    key = kv[{key_at}]",
                     "    if key is not None:",
                     f"        g = by{n}.get(key)",
                     "        if g is None:",
                     f"            g = new_group({i}, (key,))"]
        else:
            body += [f"    key = ({''.join(f'kv[{j}], ' for j in key_at)})",
                     "    if None not in key:",
                     f"        g = by{n}.get(key)",
                     "        if g is None:",
                     f"            g = new_group({i}, key)"]
        body += ["        entries = g.entries",
                 "        entries.append(entry)"]
        if lbits:  # (Group.note: the referenced rules' last match)
            body.append("        last = g.last")
            for b in lbits:
                body += [f"        if last[{b}] == _NEVER:",
                         "            g.matched += 1",
                         f"        last[{b}] = ts"]
        if hope == HOPE_VALUES:
            body += ["        if not g.ready:",
                     f"            value = kv[{vat}]",
                     "            if value is not None:",
                     "                seen = g.seen",
                     "                seen.add(value)",
                     f"                if len(seen) >= {corr.hope}:",
                     "                    g.ready, g.seen = True, None"]
        elif hope == HOPE_RULES:
            body += [f"        if not g.ready and g.matched >= {corr.hope}:",
                     "            g.ready = True"]
        # _settle, unrolled: trim (`Group.oldest`: entries[0]'s time, or -INF until looked
        # up again after a cut), anchor (a group of a correlation without `hope` is always
        # ready), mark changed, timer
        body += ["        if touched is None:",
                 f"            if g.oldest < ts - {stale!r}:",
                 "                oldest = g.oldest = entries[0][0]",
                 f"                if oldest < ts - {stale!r}:"]
        if corr.counted:
            body.append(f"                    g.trim(c{n}, ts)")
        else:  # (Group.trim and _cut without counts: stale >= keep, so the cut is due)
            body += [f"                    cut = bisect_left(entries, ts - {corr.keep!r}, key=_TS)",
                     "                    del entries[:cut]",
                     "                    g.base += cut",
                     "                    g.oldest = _UNSEEN"]
        ready = "g.ready and " if hope != HOPE_NONE else ""
        body += [f"            if {ready}len(entries) >= {gate}:",
                 f"                anchor({i}, c{n}, g, ts, out)",
                 "            dirty.add(g.skey)",
                 "            if g.burst is not None or g.items:  # (else idle: the sweep's)",
                 f"                schedule(g.skey, group_due(c{n}, g))",
                 "        else:",
                 f"            touched[g] = s{n}"]
    setup += [f"    P{i} = plain_rules[{i}]" for i in plains]
    return "\n".join([
        "def make(steps, plain_rules, plain, new_group, anchor, schedule, group_due):",
        *setup,
        "    def run(ts, row, mask, kv, out, dirty, touched):",
        *("    " + line for line in body),
        "    return run", ""])


def make_runner(source: str, steps: list[tuple[Any, ...]], plain_rules: list[Any],
                plain: Any, new_group: Any, anchor: Any, schedule: Any,
                group_due: Any, never: float, ts_key: Any) -> Runner:
    namespace: dict[str, Any] = {"bisect_left": bisect_left, "_NEVER": never, "_TS": ts_key,
                                 "_UNSEEN": -float("inf")}
    exec(compile(source, "<stream steps>", "exec"), namespace)  # noqa: S102 - our own generated code
    run: Runner = namespace["make"](steps, plain_rules, plain, new_group, anchor, schedule,
                                    group_due)
    return run
