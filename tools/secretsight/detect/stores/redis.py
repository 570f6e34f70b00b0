"""Redis state store: several `watch` replicas share identity history.

Layout (prefix `secretsight`, override with `?prefix=` in the URL):
  {p}:id:{identity}      hash  first, last          (epoch seconds)
  {p}:paths:{identity}   zset  path -> last_seen     (the design's "set per accessor", scored so
                                                      the least recently seen path can be evicted)
  {p}:kv:{ns}            hash  key -> JSON, or "b64:" + base64 of a bytes state (packed windows;
                                                      the commit payload to Lua is JSON)
  {p}:offsets:{ns}       hash  input -> JSON
  {p}:reads:{path}       zset  reader -> last read   (shared fact for rotation_without_read)
  {p}:rollouts           hash  workload -> last rollout

`commit` is ONE Lua script (atomic on the server): it first re-checks the batch's claims against
the shared keys (so two replicas cannot both report the same first access or the same dormant
identity), then applies every change and the input offsets. The script touches keys it does not
declare, so it needs a single Redis (or a primary with replicas), not Redis Cluster.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import redis

from secretsight.detect.stores.base import Batch, Store, StoreError

# Timestamps travel as strings: Lua's number formatting keeps only 14 significant digits.
_COMMIT = r"""
local p = ARGV[1]
local b = cjson.decode(ARGV[2])
local lost = {}
local function num(x) return tonumber(x) end
-- Evictions first (this replica's LRU), then claims, then additions: a path evicted and read
-- again in the same batch is new again, as it was for the replica that reported it.
for _, it in ipairs(b.evicted) do
  local k = p .. ':paths:' .. it[1]
  for i = 1, #it[2], 1000 do
    redis.call('ZREM', k, unpack(it[2], i, math.min(i + 999, #it[2])))
  end
end
for _, c in ipairs(b.claims) do
  local kind = c[2]
  if kind == 'first_path' then
    if redis.call('ZSCORE', p .. ':paths:' .. c[3], c[4]) then lost[#lost + 1] = c[1] end
  elseif kind == 'dormant' then
    local last = redis.call('HGET', p .. ':id:' .. c[3], 'last')
    if last and num(last) > num(c[4]) then lost[#lost + 1] = c[1] end
  elseif kind == 'rotation_read' then
    local rs = redis.call('ZRANGEBYSCORE', p .. ':reads:' .. c[3], c[5], c[6])
    for _, r in ipairs(rs) do
      if r ~= c[4] then lost[#lost + 1] = c[1]; break end
    end
  elseif kind == 'rotation_deploy' then
    for _, w in ipairs(c[4]) do
      local t = redis.call('HGET', p .. ':rollouts', w)
      if t and num(t) >= num(c[5]) and num(t) <= num(c[6]) then lost[#lost + 1] = c[1]; break end
    end
  end
end
for _, it in ipairs(b.identities) do
  local k = p .. ':id:' .. it[1]
  local f = redis.call('HGET', k, 'first')
  if (not f) or num(it[2]) < num(f) then redis.call('HSET', k, 'first', it[2]) end
  local l = redis.call('HGET', k, 'last')
  if (not l) or num(it[3]) > num(l) then redis.call('HSET', k, 'last', it[3]) end
end
for _, it in ipairs(b.paths) do
  local k = p .. ':paths:' .. it[1]
  local flat = it[2]
  for i = 1, #flat, 1000 do
    local args = {}
    for j = i, math.min(i + 999, #flat), 2 do
      args[#args + 1] = flat[j + 1]
      args[#args + 1] = flat[j]
    end
    redis.call('ZADD', k, 'GT', unpack(args))
  end
  local n = redis.call('ZCARD', k)
  if n > b.max_paths then redis.call('ZREMRANGEBYRANK', k, 0, n - b.max_paths - 1) end
end
for _, it in ipairs(b.kv_put) do redis.call('HSET', p .. ':kv:' .. it[1], it[2], it[3]) end
for _, it in ipairs(b.kv_del) do redis.call('HDEL', p .. ':kv:' .. it[1], it[2]) end
for _, it in ipairs(b.offsets) do redis.call('HSET', p .. ':offsets:' .. b.offsets_ns, it[1], it[2]) end
-- which provisional findings of this batch lost: a restart re-emitting the committed outbox
-- must skip them (see watch/runner.py)
redis.call('HSET', p .. ':offsets:' .. b.offsets_ns, '__lost__',
           #lost > 0 and cjson.encode(lost) or '[]')
for _, it in ipairs(b.reads) do
  local k = p .. ':reads:' .. it[1]
  redis.call('ZADD', k, 'GT', it[3], it[2])
  -- only reads inside a rotation window can matter: keep the recent ones (bounded memory)
  redis.call('ZREMRANGEBYSCORE', k, '-inf', '(' .. (num(it[3]) - b.reads_keep))
end
for _, it in ipairs(b.rollouts) do
  local t = redis.call('HGET', p .. ':rollouts', it[1])
  if (not t) or num(it[2]) > num(t) then redis.call('HSET', p .. ':rollouts', it[1], it[2]) end
end
return lost
"""


def _s(x: float) -> str:
    return repr(float(x))


_BYTES = "b64:"  # no JSON text starts with it


def _encode(v: Any) -> str:
    if v.__class__ is bytes:
        return _BYTES + base64.b64encode(v).decode("ascii")
    return json.dumps(v)


def _decode(v: str) -> Any:
    return base64.b64decode(v[len(_BYTES):]) if v.startswith(_BYTES) else json.loads(v)


class RedisStore(Store):
    shared = True

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.prefix = query.pop("prefix", ["secretsight"])[0]
        clean = urlunsplit(parts._replace(query="&".join(f"{k}={v[0]}" for k, v in query.items())))
        try:
            self.r = redis.Redis.from_url(clean, decode_responses=True)
            self.r.ping()
        except (redis.RedisError, ValueError) as exc:
            raise StoreError(f"cannot connect to Redis state store {url}: {exc}") from exc
        self._commit = self.r.register_script(_COMMIT)

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def load_identity(self, identity: str) -> tuple[float, float] | None:
        try:
            h = self.r.hgetall(self._k("id", identity))
        except redis.RedisError as exc:
            raise StoreError(f"Redis state store read failed: {exc}") from exc
        return (float(h["first"]), float(h["last"])) if h else None

    def load_paths(self, identity: str) -> list[tuple[str, float]]:
        try:
            rows: Any = self.r.zrange(self._k("paths", identity), 0, -1, withscores=True)
        except redis.RedisError as exc:
            raise StoreError(f"Redis state store read failed: {exc}") from exc
        return [(str(p), float(s)) for p, s in rows]

    def load_kv(self, ns: str, key: str) -> Any:
        try:
            v: Any = self.r.hget(self._k("kv", ns), key)
        except redis.RedisError as exc:
            raise StoreError(f"Redis state store read failed: {exc}") from exc
        return _decode(v) if v is not None else None

    def scan_kv(self, ns: str) -> list[tuple[str, Any]]:
        try:
            h: Any = self.r.hgetall(self._k("kv", ns))
        except redis.RedisError as exc:
            raise StoreError(f"Redis state store read failed: {exc}") from exc
        return sorted((str(k), _decode(v)) for k, v in h.items())

    def load_offsets(self, ns: str) -> dict[str, Any]:
        try:
            h: Any = self.r.hgetall(self._k("offsets", ns))
        except redis.RedisError as exc:
            raise StoreError(f"Redis state store read failed: {exc}") from exc
        return {str(k): json.loads(v) for k, v in h.items()}

    def commit(self, batch: Batch) -> set[int]:
        if batch.empty():
            return set()
        payload = {
            "claims": [
                [c.cid, c.kind, *[_s(a) if isinstance(a, float) else a for a in c.args]]
                for c in batch.claims
            ],
            "identities": [[i, _s(f), _s(last)] for i, (f, last) in batch.identities.items()],
            "paths": [
                [i, [x for p, t in paths.items() for x in (p, _s(t))]]
                for i, paths in batch.paths.items() if paths
            ],
            "evicted": [[i, sorted(ps)] for i, ps in batch.evicted.items() if ps],
            "kv_put": [[ns, k, _encode(v)] for (ns, k), v in batch.kv.items() if v is not None],
            "kv_del": [[ns, k] for (ns, k), v in batch.kv.items() if v is None],
            "offsets": [[k, json.dumps(v)] for k, v in batch.offsets.items()],
            "offsets_ns": batch.offsets_ns,
            "reads": [[p, r, _s(t)] for (p, r), t in batch.reads.items()],
            "rollouts": [[w, _s(t)] for w, t in batch.rollouts.items()],
            "max_paths": batch.max_paths,
            "reads_keep": batch.reads_keep,
        }
        try:
            lost = self._commit(args=[self.prefix, json.dumps(payload)])
        except redis.RedisError as exc:
            raise StoreError(f"Redis state commit failed: {exc}") from exc
        return {int(x) for x in lost}

    def stats(self) -> dict[str, int]:
        return {"used_memory": int(self.r.info("memory")["used_memory"])}

    def close(self) -> None:
        self.r.close()
