"""The incremental sliding windows against a brute-force recount, and their memory bound."""

from __future__ import annotations

import random

import pytest

from secretsight.detect.windows import CountWindow, DistinctWindow

WIDTH = 300.0


def _stream(seed: int, n: int = 3000) -> list[tuple[float, str]]:
    """Time-ordered reads: bursts and pauses, a few hot paths and a long tail."""
    rng = random.Random(seed)
    t, out = 0.0, []
    for _ in range(n):
        t += rng.choice([0.0, 0.5, 2.0, 15.0, 90.0, 400.0])
        hot = rng.random() < 0.7
        out.append((t, f"secret/p{rng.randrange(5) if hot else rng.randrange(500)}"))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_counts_match_a_recount_of_the_window(seed: int) -> None:
    stream = _stream(seed)
    count, distinct = CountWindow(), DistinctWindow()
    for i, (ts, path) in enumerate(stream):
        inside = [(t, p) for t, p in stream[:i + 1] if t >= ts - WIDTH]
        assert count.add(ts, WIDTH) == len(inside)
        assert distinct.add_path(ts, path, WIDTH) == len(inside)
        assert count.first() == inside[0][0]
        if i % 7 == 0:  # as path_diversity does: not at every read
            assert distinct.distinct(ts - WIDTH) == len({p for _, p in inside})
            assert sorted(distinct.last) == sorted({p for _, p in inside})


def test_distinct_paths_stay_bounded_by_the_reads_in_the_window() -> None:
    """A slow reader of ever-new paths never reaches the read threshold, so `distinct()` is
    never called; the window must not keep every path it ever saw."""
    w = DistinctWindow()
    for i in range(10_000):
        reads = w.add_path(i * 60.0, f"secret/new/{i}", WIDTH)
        assert len(w.last) <= reads <= 6
    assert len(w.times) - w.head <= 6 and len(w.times) < 64, "expired times are cut off"


@pytest.mark.parametrize("seed", range(3))
def test_state_round_trip(seed: int) -> None:
    w = DistinctWindow()
    for ts, path in _stream(seed, 500):
        w.add_path(ts, path, WIDTH)
    w.fired = True
    back = DistinctWindow.from_state(w.to_state())
    assert list(back.times) == list(w.times[w.head:])
    assert back.last == w.last and back.fired
    # Paths holding a newline (bad input is normal input) fall back to a list.
    w.add_path(_stream(seed, 500)[-1][0], "odd\npath", WIDTH)
    assert DistinctWindow.from_state(w.to_state()).last == w.last


def test_count_window_and_empty_windows_round_trip() -> None:
    c = CountWindow()
    for t in (0.0, 1.5, 400.0, 401.25):
        c.add(t, WIDTH)
    c.fired = True
    back = CountWindow.from_state(c.to_state())
    assert (list(back.times), back.fired) == ([400.0, 401.25], True)
    assert CountWindow.from_state(CountWindow().to_state()).count() == 0
    empty = DistinctWindow.from_state(DistinctWindow().to_state())
    assert (empty.count(), empty.last, empty.fired) == (0, {}, False)
    # a lone surrogate (JSON allows one) survives the UTF-8 bytes
    odd = DistinctWindow()
    odd.add_path(1.0, "secret/\udc80", WIDTH)
    assert list(DistinctWindow.from_state(odd.to_state()).last) == ["secret/\udc80"]
