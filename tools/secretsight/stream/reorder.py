"""The watermark: events held until stream time has moved `lateness` past them, then released
in (`@timestamp`, arrival) order, all events of one timestamp together.

- bound = newest timestamp seen - lateness; everything older than the bound is released, and
  an event that arrives older than the bound is late: dropped and counted (`late`). Input
  shuffled by less than `lateness` therefore gives the same released sequence as sorted input.
- duplicates: one event per (`event.dataset`, `event.id`) as the engine's dedupe keeps it (the
  highest `engine.dedupe.rank`, else the first); a copy arriving after its original was
  released is dropped (the memory of released ids is bounded: RELEASED_KEYS).
- restart safety: held events are persisted in chunks (one per commit, deleted once every
  event of it is released) through the detectors' `StateCache`, committed with the offsets.
  Bounded by lateness x event rate.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any

from secretsight.detect.state import StateCache
from secretsight.engine.dedupe import rank
from secretsight.stream.codec import pack, unpack

NS = "stream-buffer"
RELEASED_KEYS = 200_000
_META = "_meta"

# A held entry: [timestamp, seq, event (None once replaced by a better duplicate), dedupe key,
# chunk]. (timestamp, seq) is unique, so ordering never compares past it. A list so a replaced
# entry is marked in place, wherever it sits.
_TS, _SEQ, _EVENT, _KEY, _CHUNK = range(5)


class Reorder:
    """Entries arriving in time order (the usual case: one source, or sources in step) are
    appended to a deque and released from its head, O(1) each; only the out-of-order ones go
    through a heap. Release merges the two heads, so the order is (timestamp, arrival) either
    way."""

    def __init__(self, lateness: float, cache: StateCache | None = None) -> None:
        self.lateness = lateness
        self.cache = cache
        self.queue: deque[list[Any]] = deque()  # in (timestamp, seq) order, appended at the tail
        self.heap: list[list[Any]] = []  # the entries that arrived out of order
        self.held: dict[tuple[Any, Any], list[Any]] = {}  # dedupe key -> its held entry
        # the ids of the last RELEASED_KEYS events released, and the same in release order
        # (a set and a deque cost less per event than an OrderedDict and its linked list), by
        # the hash of the key, as the watch loop remembers recent records: an int is not
        # tracked by the collector, the 200,000 (dataset, id) tuples it replaces were
        self.released: set[int] = set()
        self.released_order: deque[int] = deque()
        self.bound: float | None = None
        self.newest: float | None = None
        self.seq = 0
        self.late = 0
        self.duplicates = 0
        self.chunk = 0
        self.live: dict[int, int] = {}  # chunk -> events still held
        # Whether an event was held since the last flush, and the entries pushed on the heap
        # since then: the chunk written at a flush is those of the heap and the tail of the
        # deque (appended since), not a list of every entry added (which would keep each
        # one alive until the commit, not just until its release).
        self.added = False
        self.strays: list[list[Any]] = []
        self.emptied: set[int] = set()
        if cache is not None:
            self._load()

    def holding(self) -> bool:
        """Whether any event waits for the watermark."""
        return bool(self.queue or self.heap)

    def _load(self) -> None:
        assert self.cache is not None
        entries = []
        for key, value in self.cache.scan(NS):
            if value is None:
                continue
            if key == _META:
                self.bound, self.newest, self.seq, self.chunk = (
                    value["bound"], value["newest"], value["seq"], value["chunk"])
                continue
            chunk = int(key)
            for ts, seq, event in unpack(value):
                entries.append((seq, ts, event, chunk))
        # A chunk stays until every event of it is released: the ones released before the
        # commit are older than its bound (a release takes every event older than the bound it
        # sets; none younger is ever released but by the idle flush, which empties every
        # chunk). They reached the detectors and the rules already: not held again.
        bound = self.bound
        for seq, ts, event, chunk in sorted(entries, key=lambda e: e[0]):
            if bound is not None and ts < bound:
                continue
            self._hold([ts, seq, event, self._key(event), chunk])

    @staticmethod
    def _key(event: dict[str, Any]) -> tuple[Any, Any] | None:
        meta = event.get("event")
        if meta.__class__ is not dict or (eid := meta.get("id")) is None:
            return None
        key = (meta.get("dataset"), eid)
        try:
            hash(key)
        except TypeError:
            return None
        return key

    def _hold(self, entry: list[Any]) -> bool:
        key = entry[_KEY]
        if key is not None:
            if hash(key) in self.released:
                self.duplicates += 1
                return False
            held = self.held.get(key)
            if held is not None:
                self.duplicates += 1
                # (ranks only on a duplicate: most events have none)
                if rank(entry[_EVENT]) <= rank(held[_EVENT]):
                    return False
                held[_EVENT] = None  # replaced: skipped when its turn comes
                self._gone(held[_CHUNK])
            self.held[key] = entry
        queue = self.queue
        if not queue or queue[-1][_TS] <= entry[_TS]:  # seq grows: (ts, seq) is in order
            queue.append(entry)
        else:
            heapq.heappush(self.heap, entry)
            if self.cache is not None:  # (only a flush empties it)
                self.strays.append(entry)
        chunk = entry[_CHUNK]
        self.live[chunk] = self.live.get(chunk, 0) + 1
        return True

    def _gone(self, chunk: int) -> None:
        live = self.live
        n = live[chunk] - 1
        if n:
            live[chunk] = n
        else:
            del live[chunk]
            self.emptied.add(chunk)

    def add(self, event: dict[str, Any], ts: float) -> list[tuple[float, list[dict[str, Any]]]]:
        """Hold one event; returns the batches (timestamp, events) the new bound releases."""
        if self.bound is not None and ts < self.bound:
            self.late += 1
            return []
        self.seq = seq = self.seq + 1
        # _key and _hold inline for the usual entry (an id never seen, in time order): this
        # runs for every event of `watch`; anything else takes _hold.
        meta = event.get("event")
        key = None
        if meta.__class__ is dict and (eid := meta.get("id")) is not None:
            key = (meta.get("dataset"), eid)
        chunk = self.chunk
        entry = [ts, seq, event, key, chunk]
        queue = self.queue
        try:
            usual = key is None or not (hash(key) in self.released or key in self.held)
        except TypeError:  # an unhashable id (bad input): no key, as _key decides
            entry[_KEY] = key = None
            usual = True
        if usual and (not queue or queue[-1][_TS] <= ts):
            if key is not None:
                self.held[key] = entry
            queue.append(entry)
            live = self.live
            live[chunk] = live.get(chunk, 0) + 1
            self.added = True
        elif self._hold(entry):
            self.added = True
        newest = self.newest
        if newest is None or ts > newest:
            self.newest = ts
            bound = ts - self.lateness
            if self.bound is None or bound > self.bound:
                return self.release(bound)
        return []

    def release(self, upto: float | None) -> list[tuple[float, list[dict[str, Any]]]]:
        """Release every held event older than `upto` (None: all of them)."""
        queue, heap = self.queue, self.heap
        held, released = self.held, self.released
        remember = self.released_order.append
        live = self.live
        popleft = queue.popleft
        out: list[tuple[float, list[dict[str, Any]]]] = []
        limit = float("inf") if upto is None else upto
        while True:
            # the smaller head of the two, by (timestamp, seq)
            if not heap:  # the usual case: only the in-order deque holds entries
                if not queue or queue[0][_TS] >= limit:
                    break
                entry = popleft()
            elif queue and queue[0][_TS] < limit and not heap[0] < queue[0]:
                entry = popleft()
            elif heap[0][_TS] < limit:
                entry = heapq.heappop(heap)
            else:
                break
            event = entry[_EVENT]
            if event is None:  # replaced by a better duplicate
                continue
            entry[_EVENT] = None  # released: not written at the next flush
            chunk = entry[_CHUNK]  # _gone(chunk), inline
            n = live[chunk] - 1
            if n:
                live[chunk] = n
            else:
                del live[chunk]
                self.emptied.add(chunk)
            key = entry[_KEY]
            if key is not None:
                held.pop(key, None)
                # (never there already: a key released is a duplicate, never held again)
                key = hash(key)
                released.add(key)
                remember(key)
                if len(released) > RELEASED_KEYS:
                    released.discard(self.released_order.popleft())
            ts = entry[_TS]
            if out and out[-1][0] == ts:
                out[-1][1].append(event)
            else:
                out.append((ts, [event]))
        if upto is not None:
            self.bound = upto
        return out

    def flush(self) -> None:
        cache = self.cache
        if cache is None:
            return
        if self.added:
            chunk = self.chunk
            fresh = [e for e in self.strays if e[_CHUNK] == chunk]
            for e in reversed(self.queue):  # (chunks never decrease along the deque)
                if e[_CHUNK] != chunk:
                    break
                fresh.append(e)
            fresh.sort(key=lambda e: e[_SEQ])  # in arrival order
            alive = [[e[_TS], e[_SEQ], e[_EVENT]] for e in fresh if e[_EVENT] is not None]
            if alive:
                cache.put(NS, str(chunk), pack(alive))
            self.added = False
            if chunk not in self.live:
                self.emptied.add(chunk)
            self.chunk += 1
        live = self.live
        for chunk in self.emptied:
            # (not the current chunk if it was emptied, then added to again before this flush:
            # deleting it would lose those events at a restart)
            if chunk not in live:
                cache.put(NS, str(chunk), None)
        self.emptied = set()
        self.strays = []
        cache.put(NS, _META, {"bound": self.bound, "newest": self.newest, "seq": self.seq,
                              "chunk": self.chunk})
