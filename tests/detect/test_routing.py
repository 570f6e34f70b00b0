"""The fast paths must not change results: routing each kind of event only to the detectors
whose `wants()` accepts it, and the inline `@timestamp` fast path of `extract`."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from support.detector_cases import CASES, Case
from support.event_builders import at, ev

from secretsight.config import Config
from secretsight.detect import Detectors, open_store
from secretsight.detect.detectors import Route, RouteKey
from secretsight.detect.events import extract, parse_ts


class Unrouted(Detectors):
    """Every event to every detector: what routing must be indistinguishable from."""

    def _route(self, key: RouteKey) -> Route:
        return self._all


def _findings(cls: type[Detectors], case: Case) -> list[dict[str, Any]]:
    det = cls(Config.model_validate(case.config), open_store(None), only=case.only)
    out = [f for e in case.events for f in det.process(e)] + det.finish(case.now)
    return [dataclasses.asdict(f) for f in out]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_routing_only_skips_detectors_with_nothing_to_do(case: Case) -> None:
    assert _findings(Detectors, case) == _findings(Unrouted, case)


def test_routes_are_narrower_than_all_detectors() -> None:
    """A plain read does not reach rotation_without_deploy; a list reaches neither
    first_path_access nor path_diversity (else routing would be pointless)."""
    det = Detectors(Config(), open_store(None))
    read = {d.__self__.name for d in det._route(("secret", "read", True, True))}
    listing = {d.__self__.name for d in det._route(("secret", "list", True, True))}
    assert "rotation_without_deploy" not in read and "first_path_access" in read
    assert not {"first_path_access", "path_diversity", "rotation_without_read"} & listing
    assert "bulk_read" in listing


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
    """parse_ts and extract's inline copy agree, on a cold and on a warm prefix cache."""
    if call == "cached":
        parse_ts(value)
    got = parse_ts(value)
    assert got == pytest.approx(epoch) if epoch is not None else got is None
    ev = extract({"@timestamp": value, "event": {"dataset": "vault.audit"}})
    if epoch is None:
        assert isinstance(ev, str) and ev.startswith("bad or missing @timestamp")
    else:
        assert not isinstance(ev, str) and ev.ts == got


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
