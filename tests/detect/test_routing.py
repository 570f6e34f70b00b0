"""The fast paths must not change results: routing each kind of event only to the detectors
whose `wants()` accepts it, and the inline `@timestamp` fast path of `extract`."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from support.detector_cases import CASES, Case
from support.event_builders import at, ev

from secretsight.config import Config
from secretsight.detect import BATCH_DETECTORS, Detectors, open_store
from secretsight.detect import events as ts_cache
from secretsight.detect.detectors import Route, RouteKey
from secretsight.detect.events import Ev, extract, parse_ts


class Unrouted(Detectors):
    """Every event to every detector: what routing must be indistinguishable from."""

    def _route(self, key: RouteKey) -> Route:
        return self._all


def _findings(cls: type[Detectors], case: Case, only: Any) -> list[dict[str, Any]]:
    det = cls(Config.model_validate(case.config), open_store(None), only=only)
    out = [f for e in case.events for f in det.process(e)] + det.finish(case.now)
    return [dataclasses.asdict(f) for f in out]


@pytest.mark.parametrize("detectors", ["case", "all"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_routing_only_skips_detectors_with_nothing_to_do(case: Case, detectors: str) -> None:
    """The case's own detectors, and all of them (reads then take fused.read_route): the
    same findings, in the same order, as every detector called for every event."""
    only = case.only if detectors == "case" else None
    assert _findings(Detectors, case, only) == _findings(Unrouted, case, only)


def test_routes_are_narrower_than_all_detectors() -> None:
    """A plain read does not reach rotation_without_deploy; a list reaches neither
    first_path_access nor path_diversity (else routing would be pointless)."""
    det = Detectors(Config(), open_store(None))
    read = {d.__self__.name for d in det._route(("secret", "read", True, True))}
    listing = {d.__self__.name for d in det._route(("secret", "list", True, True))}
    assert "rotation_without_deploy" not in read and "first_path_access" in read
    assert not {"first_path_access", "path_diversity", "rotation_without_read"} & listing
    assert "bulk_read" in listing


@pytest.mark.parametrize("only", [None, BATCH_DETECTORS], ids=["watch", "scan"])
def test_a_read_is_one_fused_call(only: tuple[str, ...] | None) -> None:
    """The detector sets of watch and scan take fused.read_route for a read (so the parity
    test above compares it with the separate calls); a smaller set keeps the separate calls."""
    key = ("secret", "read", True, True)
    assert [fn.__name__ for fn in Detectors(Config(), open_store(None), only=only)._compile(key)
            ] == ["reads"]
    small = Detectors(Config(), open_store(None), only=["first_path_access", "bulk_read"])
    assert [fn.__self__.name for fn in small._compile(key)] == ["first_path_access", "bulk_read"]


def test_unhashable_operation_reaches_every_detector() -> None:
    det = Detectors(Config(), open_store(None))
    e = {"@timestamp": "2026-01-05T10:00:00Z", "event": {"dataset": "vault.audit"},
         "secretsight": {"category": "secret"}, "user": {"id": "u1", "name": "u1"},
         "secret": {"operation": ["read"], "path": "secret/a"}}
    assert det.process(e) == [] and det.events == 1


TIMES = [
    # id, value, epoch (None: not an RFC 3339 time)
    ("millis", "2026-01-05T00:00:00.005Z", 1767571200.005),
    ("whole_seconds", "2026-01-05T00:00:59Z", 1767571259.0),
    ("nanos", "2026-01-05T00:00:00.123456789Z", 1767571200.123456789),
    ("micros", "2026-01-05T00:00:00.000782Z", 1767571200.000782),
    ("non_ascii_digit", "2026-01-05T00:00:0\u0663.5Z", 1767571203.5),
    ("offset", "2026-01-05T02:00:00.5+02:00", 1767571200.5),
    ("date_only", "2026-01-05", 1767571200.0),
    ("second_of_previous_event", "2026-01-05T00:00:00.250Z", 1767571200.25),
    ("exponent_fraction", "2026-01-05T00:00:00.5e3Z", None),
    ("underscore_fraction", "2026-01-05T00:00:00.1_0Z", None),
    ("space_in_fraction", "2026-01-05T00:00:00. 5Z", None),
    ("letter_in_seconds", "2026-01-05T00:00:0aZ", None),
    ("month_13", "2026-13-05T00:00:00Z", None),
    ("trailing_junk", "2026-01-05T00:00:00Zx", None),
    ("lowercase_z", "2026-01-05T00:00:00.005z", None),
    ("not_a_string", 1767571200, None),
]


@pytest.mark.parametrize("call", ["first", "cached"])
@pytest.mark.parametrize(("value", "epoch"), [t[1:] for t in TIMES], ids=[t[0] for t in TIMES])
def test_timestamp_fast_paths(value: Any, epoch: float | None, call: str) -> None:
    """parse_ts and extract's inline copy agree, on a cold and on a warm prefix cache (the
    minute of the previous time parsed, which both test first, warm too); a warm parse
    equals a cold one exactly."""
    ts_cache._MINUTES.clear()
    ts_cache._SECS.clear()
    ts_cache._LAST_MINUTE[:] = ["\0" * 18, 0.0]
    cold = parse_ts(value)
    if call == "cached":
        parse_ts(value)
        extract({"@timestamp": "2026-01-05T00:00:00.005Z", "event": {"dataset": "vault.audit"}})
    got = parse_ts(value)
    assert got == cold
    assert got == pytest.approx(epoch) if epoch is not None else got is None
    ev = extract({"@timestamp": value, "event": {"dataset": "vault.audit"}})
    if epoch is None:
        assert isinstance(ev, str) and ev.startswith("bad or missing @timestamp")
    else:
        assert not isinstance(ev, str) and ev.ts == got


def test_extract_sets_every_field_of_ev() -> None:
    """extract() builds Ev without its __init__: a field added to Ev must be set there too."""
    ev = extract({"@timestamp": "2026-01-05T00:00:00.005Z", "event": {"dataset": "vault.audit"}})
    assert not isinstance(ev, str)
    missing = [f.name for f in dataclasses.fields(Ev) if not hasattr(ev, f.name)]
    assert missing == []


@pytest.mark.parametrize("field,value", [
    ("user.roles", 5), ("user.roles", [["admin"]]), ("user.id", ["u1"]), ("user", "bob"),
    ("secret.path", 7), ("secret.operation", {"op": "read"}), ("secret", ["a"]),
    ("secretsight", 3), ("vault", "x"), ("event.id", {"a": 1}),
])
def test_a_field_of_a_wrong_type_is_counted_not_raised(field: str, value: object) -> None:
    """Normalized events from `watch` inputs are not schema-checked: a wrong type that would
    break a detector is counted as a rejection (one that breaks nothing, such as a number for
    secret.path, is simply no concrete path); the next event is processed as usual."""
    det = Detectors(Config(), open_store(None))
    bad = ev(at(0), user="u1", path="secret/a")
    parent, _, key = field.partition(".")
    if key:
        bad[parent][key] = value
    else:
        bad[parent] = value
    det.process(bad)
    assert det.events + sum(det.rejected.values()) == 1, "every event is accounted for"
    assert all(r.startswith("field of a wrong type") for r in det.rejected)
    det.process(ev(at(1), user="u2", path="secret/b"))
    assert det.events + sum(det.rejected.values()) == 2 and det.events >= 1
