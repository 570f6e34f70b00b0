"""The state store interface: `Store`, and what a commit carries (`Batch`, `Claim`).

Detectors keep their working state in memory (`state.StateCache`, a write-back cache) and the
store is where it is made durable: `commit(batch)` writes every change since the last commit
TOGETHER WITH the input offsets in one transaction (SQLite) or one Lua script (Redis), so a
restart resumes from a consistent (offsets, state) pair and neither repeats nor misses findings.

Two implementations: `sqlite.SQLiteStore` (embedded default, one writer) and `redis.RedisStore` (several
`watch` replicas share identity history; `shared = True`, so findings that depend on shared
facts are *claims* re-checked atomically at commit, see `Claim`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from secretsight.errors import SecretSightError


class StoreError(SecretSightError):
    """The state store failed (unreachable, corrupted, read-only, full). The side-car emits
    the findings it already computed, then stops with this message (exit status 2)."""


@dataclass(frozen=True)
class Claim:
    """A finding's premise, re-checked against the shared store at commit.

    kinds: ("first_path", identity, path)               lost if the path is already known;
           ("dormant", identity, cutoff)                lost if last_seen > cutoff;
           ("rotation_read", path, writer, start, end)  lost if another reader read in [start, end];
           ("rotation_deploy", path, [workloads], start, end) lost if one rolled out in [start, end].
    """

    cid: int
    kind: str
    args: tuple[Any, ...]


@dataclass
class Batch:
    """Everything that changed since the last commit."""

    identities: dict[str, tuple[float, float]] = field(default_factory=dict)  # id -> first, last
    paths: dict[str, dict[str, float]] = field(default_factory=dict)  # id -> path -> last_seen
    evicted: dict[str, set[str]] = field(default_factory=dict)  # id -> paths forgotten (LRU)
    # (ns, key) -> a JSON value, bytes (stored as they are: packed windows), or None (delete)
    kv: dict[tuple[str, str], Any] = field(default_factory=dict)
    offsets: dict[str, Any] = field(default_factory=dict)  # input name -> position (JSON)
    offsets_ns: str = "default"
    claims: list[Claim] = field(default_factory=list)
    # Shared facts (only written by shared stores): last read of a path by a reader, last
    # rollout of a workload. Claims of other replicas are checked against them.
    reads: dict[tuple[str, str], float] = field(default_factory=dict)
    rollouts: dict[str, float] = field(default_factory=dict)
    max_paths: int = 10_000
    reads_keep: float = 7200.0  # seconds of shared read facts kept (>= the rotation windows)

    def empty(self) -> bool:
        return not (self.identities or self.paths or self.evicted or self.kv or self.offsets
                    or self.claims or self.reads or self.rollouts)


class Store(ABC):
    """Durable detector state. Reads happen on first touch of a key; writes only in commit."""

    shared: bool = False  # several processes write it concurrently

    @abstractmethod
    def load_identity(self, identity: str) -> tuple[float, float] | None: ...

    @abstractmethod
    def load_paths(self, identity: str) -> list[tuple[str, float]]:
        """Known paths of an identity, least recently seen first."""

    @abstractmethod
    def load_kv(self, ns: str, key: str) -> Any: ...

    @abstractmethod
    def scan_kv(self, ns: str) -> list[tuple[str, Any]]: ...

    @abstractmethod
    def load_offsets(self, ns: str) -> dict[str, Any]: ...

    @abstractmethod
    def commit(self, batch: Batch) -> set[int]:
        """Apply the batch atomically; return the ids of claims that lost."""

    def stats(self) -> dict[str, int]:
        return {}

    def close(self) -> None:  # noqa: B027 - optional: a store holding no connection has nothing to release
        pass
