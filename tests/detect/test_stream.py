"""Stream-only behaviour: audit_gap by wall clock (injected clock), replicas sharing Redis."""

from __future__ import annotations

import uuid

from support.event_builders import at, baseline_events, ev, reads

from secretsight.config import Config
from secretsight.detect import Detectors, open_store


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_audit_gap_tick_fires_once_on_wall_clock_silence() -> None:
    clock = FakeClock()
    det = Detectors(Config(), open_store(None), only=["audit_gap"], clock=clock)
    for e in reads(0, 601):  # 10 minutes of events; watch ticks every second while they flow
        det.process(e)
        assert det.tick() == []
        clock.now += 1
    clock.now += 30
    assert det.tick() == []  # 30 s: still within the 60 s allowed
    clock.now += 40
    first = det.tick()
    assert [(f.rule_name, f.evidence["reason"], f.evidence["last_event"]["time"])
            for f in first] == [("audit_gap", "silence", at(600))]
    assert det.tick() == []  # the same silence is reported once
    clock.now += 5
    assert det.process(reads(700, 1)[0]) == []  # the late event does not report it again


def test_audit_gap_tick_ignores_sparse_source() -> None:
    clock = FakeClock()
    det = Detectors(Config(), open_store(None), only=["audit_gap"], clock=clock)
    for e in reads(0, 30, every=300):
        det.process(e)
    clock.now += 3600
    assert det.tick() == []


def _replica(url: str, name: str) -> Detectors:
    return Detectors(Config(), open_store(url), only=["first_path_access", "dormant_identity"],
                     instance=name)


def test_replicas_sharing_redis_report_a_first_access_once(redis_server) -> None:
    url = f"{redis_server.url}?prefix=t{uuid.uuid4().hex[:12]}"
    a, b = _replica(url, "a"), _replica(url, "b")
    for e in baseline_events():
        a.process(e)
    assert a.commit() == []
    b = _replica(url, "b")
    late = ev(at(days=15), path="secret/new")
    fa, fb = a.process(late), b.process(dict(late))
    assert [f.rule_name for f in fa] == ["first_path_access"]
    assert [f.rule_name for f in fb] == ["first_path_access"]
    lost_a = a.commit()
    lost_b = b.commit()  # b commits second: the path is already known in Redis
    assert lost_a == [] and lost_b == fb


def test_replicas_sharing_redis_report_a_dormant_identity_once(redis_server) -> None:
    url = f"{redis_server.url}?prefix=t{uuid.uuid4().hex[:12]}"
    a = _replica(url, "a")
    a.process(ev(at(0)))
    a.commit()
    b = _replica(url, "b")
    fa = a.process(ev(at(days=40)))
    fb = b.process(ev(at(days=40, seconds=5)))
    assert [f.rule_name for f in fa + fb] == ["dormant_identity", "dormant_identity"]
    assert a.commit() == [] and b.commit() == fb


def test_replica_sees_history_written_by_another(redis_server) -> None:
    url = f"{redis_server.url}?prefix=t{uuid.uuid4().hex[:12]}"
    a = _replica(url, "a")
    for e in baseline_events():
        a.process(e)
    a.commit()
    b = _replica(url, "b")
    assert b.process(ev(at(days=15), path="secret/b")) == []  # known through Redis


def test_expired_windows_are_pruned_from_memory_and_store(tmp_path) -> None:
    from secretsight.detect import detectors as mod

    store = open_store(f"sqlite:///{tmp_path}/s.db")
    det = Detectors(Config(), store, only=["bulk_read", "path_diversity"])
    for e in reads(0, 5, user="gone") + reads(0, 5, user="active"):
        det.process(e)
    det.commit()
    det.process(reads(3600, 1, user="active")[0])  # an hour later
    for _ in range(mod.PRUNE_EVERY - 1):
        det.commit()
    bulk = next(d for d in det.detectors if d.name == "bulk_read")
    assert sorted(bulk.windows.items) == ["active"]
    assert [k for k, _ in store.scan_kv("default/bulk_read")] == ["active"]


def test_rotation_read_seen_by_another_replica_cancels_the_finding(redis_server) -> None:
    from support.event_builders import vault_write

    url = f"{redis_server.url}?prefix=t{uuid.uuid4().hex[:12]}"

    def replica(name: str) -> Detectors:
        return Detectors(Config(), open_store(url), only=["rotation_without_read"],
                         instance=name)

    a, b = replica("a"), replica("b")
    a.process(ev(at(-60), user="app", path="secret/stripe"))  # the secret has a consumer
    a.process(vault_write(at(0), "secret/stripe"))
    b.process(ev(at(minutes=5), user="app", path="secret/stripe"))  # the consumer's read
    assert a.commit() == [] and b.commit() == []
    provisional = a.process(ev(at(minutes=45), user="x", path="secret/other"))
    assert [f.rule_name for f in provisional] == ["rotation_without_read"]
    assert a.commit() == provisional  # B's read is in Redis: not reported


def test_rotation_unread_everywhere_is_reported_once(redis_server) -> None:
    from support.event_builders import vault_write

    url = f"{redis_server.url}?prefix=t{uuid.uuid4().hex[:12]}"
    a = Detectors(Config(), open_store(url), only=["rotation_without_read"], instance="a")
    a.process(ev(at(-60), user="app", path="secret/stripe"))  # the secret has a consumer
    a.process(vault_write(at(0), "secret/stripe"))
    found = a.process(ev(at(minutes=45), user="x", path="secret/other"))
    assert [f.rule_name for f in found] == ["rotation_without_read"]
    assert a.commit() == []


def test_lost_claims_are_recorded_with_the_offsets(redis_server) -> None:
    """watch re-emits the committed outbox after a crash: it must know which findings lost."""
    url = f"{redis_server.url}?prefix=t{uuid.uuid4().hex[:12]}"
    a = _replica(url, "a")
    for e in baseline_events():
        a.process(e)
    a.commit()
    b = _replica(url, "b")
    late = ev(at(days=15), path="secret/new")
    a.process(late)
    fb = b.process(dict(late))
    a.commit({"__outbox__": []})
    cids = b.claim_ids()
    assert b.commit({"__outbox__": []}) == fb
    assert b.state_offsets()["__lost__"] == [cids[id(fb[0])]]
