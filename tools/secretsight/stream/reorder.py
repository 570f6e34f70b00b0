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
from collections import OrderedDict
from typing import Any

from secretsight.detect.state import StateCache
from secretsight.engine.dedupe import rank
from secretsight.stream.codec import pack, unpack

NS = "stream-buffer"
RELEASED_KEYS = 200_000
_META = "_meta"


class Reorder:
    def __init__(self, lateness: float, cache: StateCache | None = None) -> None:
        self.lateness = lateness
        self.cache = cache
        self.heap: list[tuple[float, int, dict[str, Any]]] = []
        self.held: dict[tuple[Any, Any], tuple[int, int]] = {}  # key -> (rank, seq) held
        self.dead: set[int] = set()  # seqs replaced by a better duplicate
        self.released: OrderedDict[tuple[Any, Any], None] = OrderedDict()
        self.bound: float | None = None
        self.newest: float | None = None
        self.seq = 0
        self.late = 0
        self.duplicates = 0
        self.chunk = 0
        self.chunk_of: dict[int, int] = {}  # seq -> chunk
        self.live: dict[int, int] = {}  # chunk -> events still held
        self.fresh: list[tuple[float, int, dict[str, Any]]] = []  # added since the last flush
        self.emptied: set[int] = set()
        if cache is not None:
            self._load()

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
        for seq, ts, event, chunk in sorted(entries, key=lambda e: e[0]):
            self._hold(ts, seq, event, chunk)

    def _key(self, event: dict[str, Any]) -> tuple[Any, Any] | None:
        meta = event.get("event")
        if not isinstance(meta, dict) or meta.get("id") is None:
            return None
        try:
            key = (meta.get("dataset"), meta.get("id"))
            hash(key)
        except TypeError:
            return None
        return key

    def _hold(self, ts: float, seq: int, event: dict[str, Any], chunk: int) -> bool:
        key = self._key(event)
        if key is not None:
            if key in self.released:
                self.duplicates += 1
                return False
            held = self.held.get(key)
            if held is not None:
                self.duplicates += 1
                if rank(event) <= held[0]:
                    return False
                self.dead.add(held[1])
                self._gone(held[1])
            self.held[key] = (rank(event), seq)
        heapq.heappush(self.heap, (ts, seq, event))
        self.chunk_of[seq] = chunk
        self.live[chunk] = self.live.get(chunk, 0) + 1
        return True

    def _gone(self, seq: int) -> None:
        chunk = self.chunk_of.pop(seq)
        self.live[chunk] -= 1
        if not self.live[chunk]:
            del self.live[chunk]
            self.emptied.add(chunk)

    def add(self, event: dict[str, Any], ts: float) -> list[tuple[float, list[dict[str, Any]]]]:
        """Hold one event; returns the batches (timestamp, events) the new bound releases."""
        if self.bound is not None and ts < self.bound:
            self.late += 1
            return []
        self.seq += 1
        if self._hold(ts, self.seq, event, self.chunk):
            self.fresh.append((ts, self.seq, event))
        if self.newest is None or ts > self.newest:
            self.newest = ts
            bound = ts - self.lateness
            if self.bound is None or bound > self.bound:
                return self.release(bound)
        return []

    def release(self, upto: float | None) -> list[tuple[float, list[dict[str, Any]]]]:
        """Release every held event older than `upto` (None: all of them)."""
        heap = self.heap
        out: list[tuple[float, list[dict[str, Any]]]] = []
        while heap and (upto is None or heap[0][0] < upto):
            ts, seq, event = heapq.heappop(heap)
            if seq in self.dead:
                self.dead.discard(seq)
                continue
            self._gone(seq)
            key = self._key(event)
            if key is not None:
                self.held.pop(key, None)
                self.released[key] = None
                if len(self.released) > RELEASED_KEYS:
                    self.released.popitem(last=False)
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
        if self.fresh:
            alive = [[ts, seq, ev] for ts, seq, ev in self.fresh if seq in self.chunk_of]
            if alive:
                cache.put(NS, str(self.chunk), pack(alive))
            self.fresh = []
            if self.chunk not in self.live:
                self.emptied.add(self.chunk)
            self.chunk += 1
        for chunk in self.emptied:
            cache.put(NS, str(chunk), None)
        self.emptied = set()
        cache.put(NS, _META, {"bound": self.bound, "newest": self.newest, "seq": self.seq,
                              "chunk": self.chunk})
