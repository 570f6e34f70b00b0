"""One call per read: the route of an effective secret read when all the read detectors run.

Most events are reads (85% in the benchmark), and a read went to eight `process` calls, five of
them per-identity detectors that each unpacked the same event again (user id, paths, the
identity's record, the time) to reach a fast path that changes nothing or little: a known path
read again (first_path_access), a window append (bulk_read, path_diversity), a known reader
(first_seen_principal), the agent used last (new_user_agent), a path whose readers are settled
and has no pending rotation (rotation_without_read), the source's next event (audit_gap), a
reader who is no admin (admin_off_hours). `read_route` does those common cases
inline, in ONE call, and calls a detector's own `process` for anything else (a first read, a
new path, a multi-path read, a burst firing...), so every finding, its evidence and its order
are what the separate calls give (tests/detect/test_routing.py compares every case with the
unrouted driver). The fast paths here mirror the detectors' own; a change to a detector's
state handling must be made in both (docs/detectors.md, Performance).
"""

from __future__ import annotations

from collections.abc import Callable

from secretsight.detect.admin_off_hours import AdminOffHours
from secretsight.detect.audit_gap import AuditGap
from secretsight.detect.base import Detector
from secretsight.detect.bulk_read import BulkRead
from secretsight.detect.events import Ev
from secretsight.detect.first_path_access import FirstPathAccess
from secretsight.detect.first_seen_principal import _UNKNOWN, FirstSeenPrincipal
from secretsight.detect.new_user_agent import NewUserAgent
from secretsight.detect.path_diversity import PathDiversity
from secretsight.detect.rotation_without_read import RotationWithoutRead
from secretsight.detect.state import LAST_SEEN_STEP
from secretsight.findings import Finding

# The detectors a read goes to, in the driver's (deterministic) order: the fused route
# replaces this route, or this route without bulk_read and/or path_diversity (`scan` runs
# BATCH_DETECTORS: Sigma correlations cover those two there), and nothing else.
READ_ROUTE = ("first_path_access", "rotation_without_read", "audit_gap", "admin_off_hours",
              "bulk_read", "path_diversity", "first_seen_principal", "new_user_agent")
_OPTIONAL = ("bulk_read", "path_diversity")
_TYPES = {"first_path_access": FirstPathAccess, "rotation_without_read": RotationWithoutRead,
          "audit_gap": AuditGap, "admin_off_hours": AdminOffHours, "bulk_read": BulkRead,
          "path_diversity": PathDiversity, "first_seen_principal": FirstSeenPrincipal,
          "new_user_agent": NewUserAgent}


def read_route(route: tuple[Callable[[Ev, list[Finding]], None], ...]
               ) -> Callable[[Ev, list[Finding]], None] | None:
    """The fused equivalent of `route` (bound `process` methods), or None when `route` is not
    READ_ROUTE, with or without the optional detectors (another subset of detectors, another
    kind of event, a subclassed detector)."""
    by_name: dict[str, Detector] = {}
    for fn in route:
        det = getattr(fn, "__self__", None)
        name = getattr(det, "name", None)
        if name not in _TYPES or type(det) is not _TYPES[name] or fn != det.process:
            return None
        by_name[name] = det
    if len(by_name) != len(route) or tuple(by_name) != tuple(
            n for n in READ_ROUTE if n in by_name) or any(
            n not in by_name for n in READ_ROUTE if n not in _OPTIONAL):
        return None
    fpa, rwr, ag, aoh, fsp, nua = (by_name[n] for n in READ_ROUTE if n not in _OPTIONAL)
    assert isinstance(fpa, FirstPathAccess) and isinstance(rwr, RotationWithoutRead)
    assert isinstance(ag, AuditGap) and isinstance(aoh, AdminOffHours)
    assert isinstance(fsp, FirstSeenPrincipal) and isinstance(nua, NewUserAgent)
    bulk = by_name.get("bulk_read")
    pd = by_name.get("path_diversity")
    assert bulk is None or isinstance(bulk, BulkRead)
    assert pd is None or isinstance(pd, PathDiversity)
    fpa_process, rwr_process = fpa.process, rwr.process
    fsp_process, nua_process = fsp.process, nua.process
    ag_process, aoh_process, admin_reason = ag.process, aoh.process, aoh.admin_reason
    admin_policies = aoh.vault_policies
    step = LAST_SEEN_STEP
    unknown = _UNKNOWN

    def reads(ev: Ev, out: list[Finding]) -> None:
        uid = ev.user_id
        rec = ev.ident
        paths = ev.paths
        if uid is None or rec is None or paths is None or len(paths) != 1:
            for fn in route:  # the uncommon shapes: each detector as routed
                fn(ev, out)
            return
        path = paths[0]
        ts = ev.ts

        # first_path_access: a known path read again within LAST_SEEN_STEP changes nothing
        od = rec.paths
        old = od.get(path) if od is not None else None
        if old is None or ts - old >= step:
            fpa_process(ev, out)

        # rotation_without_read: the path's readers settled (two known, or this one) and no
        # rotation pending on it
        known = rwr.readers.get(path)
        if ((known.__class__ is not list and known != uid) or rwr.shared
                or path in rwr.pending):
            rwr_process(ev, out)

        # audit_gap: the source's next event within max_silence, nothing to reset (a read is
        # never an audit-device disable: its category is secret)
        src = ag.sources.get(ev.dataset)
        if (src is not None and (last_ts := src.last_ts) is not None and last_ts <= ts
                and ts - last_ts <= ag.max_silence and not src.reported and not src.disabled):
            src.arrived = src.changed = True
            src.last_ts = ts
            src.last_ev = ev
        else:
            ag_process(ev, out)

        # admin_off_hours: most readers are no admins (AdminOffHours.admin_reason's Vault
        # tests inline, in its order: the policies in user.roles, then vault.token_policies)
        if ev.dataset == "vault.audit":
            raw = ev.raw
            user = raw.get("user")
            roles = user.get("roles") if user.__class__ is dict else None
            if roles and not admin_policies.isdisjoint(roles):
                aoh_process(ev, out)
            else:
                vault = raw.get("vault")
                tokens = vault.get("token_policies") if vault.__class__ is dict else None
                if tokens and not admin_policies.isdisjoint(tokens):
                    aoh_process(ev, out)
        elif admin_reason(ev) is not None:
            aoh_process(ev, out)

        # bulk_read: a window append (BulkRead.process past its lookups)
        if bulk is None:
            pass
        elif (w := rec.bulk) is None:
            bulk.process(ev, out)
        else:
            n = w.add(ts, bulk.width)
            bulk.windows.dirty.add(uid)
            if n <= bulk.count:
                if w.fired:
                    w.fired = False
            elif not w.fired:
                bulk.fire(ev, w, n, out)

        # path_diversity: Vault/Kubernetes window append (PathDiversity.process, one path)
        if pd is None:
            pass
        elif (pw := rec.pd) is None or ev.dataset == "aws.cloudtrail":
            pd.process(ev, out)
        else:
            width, need_reads, need_distinct = pd.vault_rule
            pd.windows.dirty.add(uid)
            reads = pw.add_path(ts, path, width)
            if (reads >= need_reads and len(pw.last) >= need_distinct
                    and pw.distinct(ts - width) >= need_distinct):
                if not pw.fired:
                    pd.fire(ev, pw, reads, width, out)
            elif pw.fired:
                pw.fired = False

        # first_seen_principal: a known reader, refreshed less than LAST_SEEN_STEP ago
        last = fsp.last.get(uid, unknown)
        if last is None or last is unknown or ts - last >= step:
            fsp_process(ev, out)

        # new_user_agent: no agent, or the agent used last, seen less than LAST_SEEN_STEP ago
        ua = ev.raw.get("user_agent")
        if ua is not None:
            agent = ua.get("original") if ua.__class__ is dict else None
            if agent.__class__ is str and agent:
                seen = nua._last.get(uid)
                if seen is None or seen[0] != agent or ts - seen[1] >= step:
                    nua_process(ev, out)

    return reads
