"""A correlation group's window state as records written once: state format 2.

Format 1 (0.2.0 to 0.3.2) was one record per group, rewritten at every commit that touched
the group with every event of its window: a one-hour window of a token read each second
rewrote its hour of events each second. Format 2 writes a group as *runs*: each commit that
touches the group writes one new record, under `{group key}#{slot}`, holding the
entries added since the last commit (`"e"`, from global index `"f"`) and the group's small
state of now (`"s"`: group-by values, first live entry index `b`, counted range, nested
items, open burst; `Group.to_state`). The newest run (the largest `f`) holds the state of
the group; the older ones hold entries only as far as they are still live.

What a commit writes per touched group:
- only entries a window can still read: those at or after (stream time - `keep`), stream
  time being the newest entry of the groups the commit writes (events come in time order,
  so no later window starts before it). Uncut older entries (the evaluator cuts them in
  bulk, `TRIM_SLACK`) are not written, and a run all of whose entries are older is deleted:
  the store holds what the windows hold, bounded by time like them;
- merged runs: a new run takes in the runs before it while they are no more than twice its
  size (their live entries rewritten in it, their records deleted), so a group has at most
  log2(its live entries) + 2 runs (the newest may hold none) and an entry is rewritten
  O(log n) times over its life, not at every commit.

A group gone deletes its runs. Format-1 records load as runs (their `b` is their first
entry), and the next write of their group takes them in or deletes them like any other run.
"""

from __future__ import annotations

import json
from typing import Any

FORMAT = 2
SEP = "#"  # a run's key: its group's key, SEP, a slot number (`plan`)
# A record as loaded: (first entry index, format, entries, state, key)
Run = tuple[int, int, list[Any], dict[str, Any], str]


class Runs:
    """The records a group has in the store: `[first index, entries, key]`, oldest first,
    for the group object they were written from (a group dropped and created again starts
    its indices at 0 and deletes the old runs)."""

    __slots__ = ("group", "runs")

    def __init__(self, group: Any, runs: list[list[Any]] | None = None) -> None:
        self.group = group
        self.runs = runs or []


def plan(runs: list[list[Any]], live: int, end: int, skey: str
         ) -> tuple[int, str, list[str]]:
    """A commit of a group (state key `skey`) whose entries [live, end) are live (global
    indices): the first index of the run to write (it holds [start, end)), its key, and the
    keys of the runs it deletes (dead, or merged into it). `runs` is updated to what the
    store will hold, the new run last.

    The new run takes the key of a run it replaces when there is one (one upsert instead of
    a delete and an insert: a group read more often than its window's length between two
    commits, all of `bench_watch`'s, replaces its one run at every commit; a format-1
    record's key too, the loader tells formats by content); else the first free slot
    (`{skey}#0`, `#1`, ...)."""
    gone = []
    while runs and runs[0][0] + runs[0][1] <= live:  # every entry older than any window
        gone.append(runs.pop(0)[2])
    start = max(runs[-1][0] + runs[-1][1], live) if runs else live
    # take in the runs no more than twice the new one (counting their live entries)
    while runs and runs[-1][1] - max(live - runs[-1][0], 0) <= 2 * (end - start):
        first, _, key = runs.pop()
        gone.append(key)
        start = max(first, live)
    if gone:
        key = gone.pop()
    else:
        used = {r[2] for r in runs}
        slot = 0
        while (key := f"{skey}{SEP}{slot}") in used:
            slot += 1
    runs.append([start, end - start, key])
    return start, key, gone


def assemble(runs: list[Run]) -> dict[str, Any]:
    """A group's records, oldest first, as its state in format 1's shape
    (`Group.from_state`: `e` its live entries from index `b`). The newest record's state is
    the group's."""
    state = dict(runs[-1][3])
    base = state["b"]
    out: list[Any] = []
    nxt = base
    for first, _, entries, _, _ in runs:
        if first > nxt:  # a gap (this module leaves none): keep what follows it
            out, base = [], first
        out.extend(entries[max(nxt - first, 0):])
        nxt = max(nxt, first + len(entries))
    state["b"], state["e"] = base, out
    return state


def group_id(record: dict[str, Any]) -> tuple[str, str]:
    """Which group a record belongs to: its rule and group-by values."""
    return record["r"], json.dumps(record["s"]["k"])
