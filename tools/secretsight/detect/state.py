"""Write-back cache between the detectors and the store.

Detectors read and update state here at memory speed; keys are loaded from the store on first
touch and written back (only what changed) by `flush`, in the same transaction as the input
offsets. Known paths per identity are a dict in least-recently-seen order (to within
LAST_SEEN_STEP, see `see_path`), capped at `max_paths_per_identity`: adding one past the cap
forgets the head (LRU). There is no time-based expiry, so an identity that sleeps for months
keeps its history (the TTL footgun of the reference design).
"""

from __future__ import annotations

import math
from typing import Any

from secretsight.detect.stores.base import Batch, Claim, Store

LAST_SEEN_STEP = 3600.0  # seconds: granularity of the stored last_seen of a known path


class IdentityState:
    """Everything kept in memory about one identity, looked up ONCE per event by the driver
    (`Ev.ident`) instead of once per detector: first/last seen, and shortcuts to the objects
    the per-identity detectors own (known paths, bulk_read and path_diversity windows,
    first_path_access's allowlist verdict). The shortcuts point at the same objects as
    `StateCache.paths` / the detectors' `KeyedState` (which stay the persistence registry),
    so a detector that drops a window clears its shortcut too. None means "not looked up
    yet": take the slow path. Stored state is unchanged (still one row per kind)."""

    __slots__ = ("bulk", "first", "fpa_allow", "last", "paths", "pd", "pd_aws")

    def __init__(self, first: float, last: float) -> None:
        self.first = first
        self.last = last
        self.paths: dict[str, float] | None = None
        self.bulk: Any = None  # windows.CountWindow
        self.pd: Any = None  # windows.DistinctWindow (Vault/Kubernetes)
        self.pd_aws: Any = None  # windows.DistinctWindow (Secrets Manager)
        # first_path_access's allowlist verdict: (user_name it was computed for, allowed)
        self.fpa_allow: tuple[str | None, bool] | None = None


class KeyedState:
    """Per-key state objects of one detector (e.g. a sliding window per identity), loaded from
    the store on first use and written back at commit when marked dirty. Faster than going
    through `StateCache.obj/put` on every event."""

    def __init__(self, cache: StateCache, ns: str, cls: Any) -> None:
        self.cache, self.ns, self.cls = cache, ns, cls
        self.items: dict[str, Any] = {}
        self.dirty: set[str] = set()
        self.dropped: set[str] = set()
        cache.keyed.append(self)

    def get(self, key: str) -> Any:
        obj = self.items.get(key)
        if obj is None:
            raw = self.cache.store.load_kv(f"{self.cache.ns}/{self.ns}", key)
            obj = self.items[key] = self.cls.from_state(raw) if raw is not None else self.cls()
        return obj

    def drop(self, key: str) -> None:
        """Forget a key (memory and store), e.g. a window that emptied."""
        if self.items.pop(key, None) is not None:
            self.dirty.discard(key)
            self.dropped.add(key)

    def collect(self, out: dict[tuple[str, str], Any]) -> None:
        prefix = f"{self.cache.ns}/{self.ns}"
        for key in self.dropped:
            out[(prefix, key)] = None
        for key in self.dirty:
            out[(prefix, key)] = self.items[key].to_state()
        self.dirty = set()
        self.dropped = set()


class StateCache:
    def __init__(self, store: Store, *, namespace: str, max_paths: int,
                 reads_keep: float = 7200.0) -> None:
        self.reads_keep = reads_keep
        self.store = store
        self.ns = namespace  # per-instance state lives under this namespace
        self.max_paths = max_paths
        self.identities: dict[str, IdentityState] = {}
        self.paths: dict[str, dict[str, float]] = {}
        self.kv: dict[tuple[str, str], Any] = {}
        self._dirty_ids: set[str] = set()
        self._dirty_paths: dict[str, set[str]] = {}
        self._evicted: dict[str, set[str]] = {}
        self._dirty_kv: set[tuple[str, str]] = set()
        self._claims: list[Claim] = []
        self._next_cid = 0
        self.reads: dict[tuple[str, str], float] = {}
        self.rollouts: dict[str, float] = {}
        self.evictions = 0
        self.keyed: list[KeyedState] = []
        # A lower bound of the earliest pending-window deadline (rotation detectors lower it
        # when they open one): the driver looks at the windows only once stream time passes
        # it, not at every event.
        self.due = math.inf

    # ---- identities
    def identity(self, uid: str) -> IdentityState | None:
        rec = self.identities.get(uid)
        if rec is None:
            loaded = self.store.load_identity(uid)
            if loaded is None:
                return None
            rec = self.identities[uid] = IdentityState(loaded[0], loaded[1])
        return rec

    def touch_identity(self, uid: str, ts: float) -> IdentityState:
        """Record activity (the caller reads first/last BEFORE calling: a new identity comes
        back with first == last == ts)."""
        rec = self.identity(uid)
        if rec is None:
            rec = self.identities[uid] = IdentityState(ts, ts)
            self._dirty_ids.add(uid)
            return rec
        if ts > rec.last:
            rec.last = ts
            self._dirty_ids.add(uid)
        if ts < rec.first:
            rec.first = ts
            self._dirty_ids.add(uid)
        return rec

    # ---- known paths
    def known_paths(self, uid: str) -> dict[str, float]:
        od = self.paths.get(uid)
        if od is None:
            od = self.paths[uid] = dict(self.store.load_paths(uid))
        return od

    def see_path(self, uid: str, path: str, ts: float) -> bool:
        """Mark `path` read by `uid` at ts; True when it was not known before.

        The last_seen of a known path, and with it the LRU order, is refreshed only once it is
        LAST_SEEN_STEP old: a steady reader neither rewrites its paths at every commit nor
        reorders them at every read (the hot path stays a dict lookup). The order in memory
        is the stored order, so a restart evicts exactly what an uninterrupted run would."""
        od = self.paths.get(uid)
        if od is None:
            od = self.known_paths(uid)
        old = od.get(path)
        if old is not None:
            if ts - old >= LAST_SEEN_STEP:
                del od[path]  # re-inserted at the end: most recently seen
                od[path] = ts
                self._mark_path(uid, path)
            return False
        od[path] = ts
        self._mark_path(uid, path)
        if len(od) > self.max_paths:
            dirty = self._dirty_paths[uid]
            evicted = self._evicted.setdefault(uid, set())
            while len(od) > self.max_paths:
                gone = next(iter(od))
                del od[gone]
                dirty.discard(gone)
                evicted.add(gone)
                self.evictions += 1
        return True

    def _mark_path(self, uid: str, path: str) -> None:
        dirty = self._dirty_paths.get(uid)
        if dirty is None:
            dirty = self._dirty_paths[uid] = set()
        dirty.add(path)

    # ---- per-instance key/value state (small JSON documents)
    def get(self, ns: str, key: str, default: Any = None) -> Any:
        k = (ns, key)
        if k in self.kv:
            v = self.kv[k]
        else:
            v = self.kv[k] = self.store.load_kv(f"{self.ns}/{ns}", key)
        return default if v is None else v

    def obj(self, ns: str, key: str, cls: Any) -> Any:
        """A stateful object (with `to_state()` / `cls.from_state(data)`), created when absent."""
        k = (ns, key)
        v = self.kv.get(k)
        if v is None or not isinstance(v, cls):
            raw = v if v is not None else self.store.load_kv(f"{self.ns}/{ns}", key)
            v = self.kv[k] = cls.from_state(raw) if raw is not None else cls()
        return v

    def put(self, ns: str, key: str, value: Any) -> None:
        k = (ns, key)
        self.kv[k] = value
        self._dirty_kv.add(k)

    def delete(self, ns: str, key: str) -> None:
        self.put(ns, key, None)

    def scan(self, ns: str) -> list[tuple[str, Any]]:
        """Every stored key of a namespace (used once at start for pending windows)."""
        out = []
        for key, value in self.store.scan_kv(f"{self.ns}/{ns}"):
            self.kv.setdefault((ns, key), value)
            out.append((key, value))
        return out

    # ---- claims and shared facts (meaningful for shared stores only)
    def claim(self, kind: str, *args: Any) -> int | None:
        if not self.store.shared:
            return None
        self._next_cid += 1
        self._claims.append(Claim(self._next_cid, kind, args))
        return self._next_cid

    def fact_read(self, path: str, reader: str, ts: float) -> None:
        if self.store.shared:
            k = (path, reader)
            if ts > self.reads.get(k, 0.0):
                self.reads[k] = ts

    def fact_rollout(self, workload: str, ts: float) -> None:
        if self.store.shared and ts > self.rollouts.get(workload, 0.0):
            self.rollouts[workload] = ts

    # ---- commit
    def flush(self, offsets: dict[str, Any] | None = None) -> set[int]:
        """Write every change (and the offsets) in one store transaction; return lost claims."""
        batch = Batch(offsets=dict(offsets or {}), offsets_ns=self.ns, max_paths=self.max_paths,
                      reads_keep=self.reads_keep)
        identities = self.identities
        for uid in self._dirty_ids:
            rec = identities[uid]
            batch.identities[uid] = (rec.first, rec.last)
        for uid, dirty in self._dirty_paths.items():
            od = self.paths[uid]
            batch.paths[uid] = {p: od[p] for p in dirty if p in od}
        batch.evicted = {u: s for u, s in self._evicted.items() if s}
        batch_deleted = []
        for ns, key in self._dirty_kv:
            v = self.kv[(ns, key)]
            if v is None:
                batch_deleted.append((ns, key))
            batch.kv[(f"{self.ns}/{ns}", key)] = v.to_state() if hasattr(v, "to_state") else v
        for keyed in self.keyed:
            keyed.collect(batch.kv)
        batch.claims = self._claims
        batch.reads = self.reads
        batch.rollouts = self.rollouts
        lost = self.store.commit(batch)
        self._dirty_ids = set()
        self._dirty_paths = {}
        self._evicted = {}
        self._dirty_kv = set()
        self._claims = []
        self.reads = {}
        self.rollouts = {}
        # Forget deleted kv entries so the cache does not keep tombstones forever.
        for k in batch_deleted:
            if self.kv.get(k, 0) is None:
                del self.kv[k]
        return lost

    def pending_claims(self) -> int:
        return len(self._claims)
