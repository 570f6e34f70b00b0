"""The Loki form of audit_gap against the stateful detector, on the same event streams.

No Loki runs here, so the compiled ruler expression is evaluated by a model of exactly the
LogQL it uses (label-less `sum(count_over_time({dataset="x"}[R] offset O))` terms, `> 0`,
`and`, `unless`; a range covers (t-O-R, t-O]), parsed from the compiled text, at every ruler
step. The streams: a continuous source that goes silent once (both must fire, once), and a
healthy bursty source with 70-110 s pauses, where the previous form (any event in the look-back,
none in the last minute) was true at most steps (the issue measured ~60% on a real Loki)."""

from __future__ import annotations

import bisect
import random
import re
from datetime import timedelta

from support.event_builders import at, ev

from secretsight.compile.stateful import loki_audit_gap
from secretsight.config import Config, parse_duration
from secretsight.detect import Detectors, open_store

STEP = 60.0  # ruler interval
_TERM = re.compile(r"sum\(count_over_time\(\{[^}]*\}\[(\w+)\](?: offset (\w+))?\)\)( > 0)?")


def evaluate(expr: str, times: list[float], t: float) -> bool:
    """True when the expression returns a series at `t` (the alert fires)."""
    head, _, unless = expr.partition(" unless ")

    def count(rng: str, off: str | None) -> int:
        end = t - (parse_duration(off).total_seconds() if off else 0)
        start = end - parse_duration(rng).total_seconds()
        return bisect.bisect_right(times, end) - bisect.bisect_right(times, start)

    for term in head.split(" and "):
        rng, off, positive = _TERM.fullmatch(term).groups()
        assert positive, term
        if count(rng, off) == 0:
            return False
    if unless:
        rng, off, positive = _TERM.fullmatch(unless).groups()
        assert not positive
        return count(rng, off) == 0
    return True


OLD_FORM = ('sum(count_over_time({dataset="vault.audit"}[11m])) > 0 unless '
            'sum(count_over_time({dataset="vault.audit"}[1m]))')


def firing_steps(expr: str, times: list[float], end: float) -> list[float]:
    return [k * STEP for k in range(int(end // STEP) + 1) if evaluate(expr, times, k * STEP)]


def detector_findings(times: list[float]) -> int:
    det = Detectors(Config(), open_store(None), only=["audit_gap"])
    found = []
    for t in times:
        found += det.process(ev(at(t)))
    found += det.finish(None)
    return len([f for f in found if f.rule_name == "audit_gap"])


def expr() -> str:
    return loki_audit_gap(Config(), timedelta(minutes=1))["vault.audit"]


def test_continuous_source_going_silent_fires_once_like_the_detector() -> None:
    times = [float(s) for s in range(0, 1200)] + [float(s) for s in range(1800, 2400)]
    assert detector_findings(times) == 1
    fired = firing_steps(expr(), times, 2400)
    assert fired and all(1200 <= t <= 1200 + 2 * STEP for t in fired), fired


def _bursty(seed: int, hours: int) -> list[float]:
    rnd = random.Random(seed)
    times, t = [], 0.0
    while t < hours * 3600:
        for _ in range(rnd.randint(5, 40)):  # a burst, events 0.2-3 s apart
            times.append(t)
            t += rnd.uniform(0.2, 3)
        t += rnd.uniform(70, 110)  # a pause longer than max_silence (60 s)
    return times


def test_bursty_healthy_source_does_not_fire() -> None:
    times = _bursty(7, 6)
    end = times[-1]
    steps = int(end // STEP) + 1
    old = len(firing_steps(OLD_FORM, times, end)) / steps
    new = firing_steps(expr(), times, end)
    # The previous form was true at most steps; the detector never sees the source as
    # continuous (every pause breaks the run); neither does the continuity form.
    assert old > 0.2, old
    assert detector_findings(times) == 0
    assert new == []


def test_no_events_ever_does_not_fire() -> None:
    assert firing_steps(expr(), [], 3600) == []
