"""Incremental per-identity sliding windows: O(1) amortized per event.

Each event is appended once and expired once, so no window is ever rescanned (the reference
detector rebuilt the whole burst list for every event: O(n^2) per identity).

Read times live in an `array("d")` with a moving head, not a deque of float objects: a window
is touched at every read of its identity, and with thousands of identities float objects
scattered over the heap miss the CPU caches where contiguous doubles do not (fewer last-level
misses per event under cachegrind: docs/detectors.md, Performance).

A *burst* is a maximal run of events during which the window's condition holds; the detectors
report once per burst. The burst ends when, at an event's arrival, the window (after dropping
entries older than its width) no longer satisfies the condition.
"""

from __future__ import annotations

import base64
from array import array
from binascii import b2a_base64
from struct import Struct
from typing import Any

# State is bytes (the stores keep it as it is: no base64, no JSON escaping at every commit):
# a header, then native doubles. CountWindow: one byte `fired`, the times. DistinctWindow:
# _DISTINCT (fired, reads, paths), the times, the latest read of each path, the paths joined by
# newlines (UTF-8). Older states (JSON lists with base64 times) still load.
_DISTINCT = Struct("<BII")
_FIRED = (b"\x00", b"\x01")


def _b64(times: array) -> str:
    return b2a_base64(times.tobytes(), newline=False).decode("ascii")


def _unpack(data: str) -> array:
    return array("d", base64.b64decode(data))


def _doubles(data: bytes, start: int, n: int) -> array:
    out = array("d")
    out.frombytes(data[start:start + 8 * n])
    return out


class CountWindow:
    """Read times in the window: `times[head:]`. Expired entries are skipped by moving `head`
    and cut off once they are half the array (amortized O(1), and no memmove per event)."""

    __slots__ = ("fired", "head", "times")

    def __init__(self) -> None:
        self.times = array("d")
        self.head = 0
        self.fired = False

    def add(self, ts: float, width: float) -> int:
        """Append ts, expire what is older than ts - width, return the count in the window."""
        times = self.times
        head = self.head
        cutoff = ts - width
        n = len(times)
        if head < n and times[head] < cutoff:
            head += 1
            while head < n and times[head] < cutoff:
                head += 1
            if head + head > n:
                del times[:head]
                head = 0
            self.head = head
        times.append(ts)
        return len(times) - head

    def count(self) -> int:
        return len(self.times) - self.head

    def first(self) -> float:
        """The oldest time in the window (not empty)."""
        return self.times[self.head]

    def newest(self) -> float | None:
        return self.times[-1] if len(self.times) > self.head else None

    def window(self) -> array:
        """The times in the window."""
        return self.times[self.head:] if self.head else self.times

    def to_state(self) -> bytes:
        return _FIRED[self.fired] + self.window().tobytes()

    @classmethod
    def from_state(cls, data: bytes | list[Any]) -> CountWindow:
        w = cls()
        if isinstance(data, bytes):
            w.fired = data[:1] == b"\x01"
            w.times.frombytes(data[1:])
        else:  # older: [base64 times, fired]
            w.times = _unpack(data[0])
            w.fired = bool(data[1])
        return w


class DistinctWindow(CountWindow):
    """Read times in the window, plus `last`: path -> time of its latest read, oldest first.

    The distinct paths in the window are the keys of `last` whose time is still in it; the
    stale ones are a prefix (time-ordered input) and are dropped from the head by `distinct()`,
    which callers need only once enough reads are in the window to matter. `add` keeps `last`
    no larger than the reads in the window (every path in it has a read in it), so memory is
    bounded even when `distinct()` is never called. No path is kept per read: that was a
    string object per read, and the cache misses to expire it cost more than the rest."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        super().__init__()
        self.last: dict[str, float] = {}

    def add_path(self, ts: float, path: str, width: float) -> int:
        """Record a read of `path`; return the reads in the window."""
        # CountWindow.add, inlined: ~1,000 instructions fewer per read (~1.8%, cachegrind).
        # Keep the two in step; test_windows.py checks both against a recount.
        times = self.times
        head = self.head
        n = len(times)
        if head < n and times[head] < ts - width:
            cutoff = ts - width
            head += 1
            while head < n and times[head] < cutoff:
                head += 1
            if head + head > n:
                del times[:head]
                head = 0
            self.head = head
        times.append(ts)
        reads = len(times) - head
        last = self.last
        prev = last.pop(path, None)
        last[path] = ts if prev is None or prev < ts else prev  # to the end: latest read
        if len(last) > reads:
            self.distinct(ts - width)
        return reads

    def distinct(self, cutoff: float) -> int:
        """Distinct paths read at or after `cutoff` (the window's start)."""
        last = self.last
        stale: list[str] = []
        for path, t in last.items():
            if t >= cutoff:
                break
            stale.append(path)
        for path in stale:
            del last[path]
        return len(last)

    def to_state(self) -> bytes | list[Any]:  # type: ignore[override]
        last = self.last
        joined = "\n".join(last)
        times = self.window()
        if joined.count("\n") != len(last) - 1 and last:
            # a path holding a newline (bad input is normal input): the JSON list form
            return [_b64(times), list(last), _b64(array("d", last.values())), self.fired]
        return b"".join((_DISTINCT.pack(self.fired, len(times), len(last)), times.tobytes(),
                         array("d", last.values()).tobytes(),
                         joined.encode("utf-8", "surrogatepass")))

    @classmethod
    def from_state(cls, data: bytes | list[Any]) -> DistinctWindow:
        w = cls()
        if isinstance(data, bytes):
            fired, reads, n = _DISTINCT.unpack_from(data)
            at = _DISTINCT.size
            w.times = _doubles(data, at, reads)
            at += 8 * reads
            latest = _doubles(data, at, n)
            paths = data[at + 8 * n:].decode("utf-8", "surrogatepass").split("\n") if n else []
            w.last = dict(zip(paths, latest, strict=True))
            w.fired = bool(fired)
            return w
        w.times = _unpack(data[0])
        paths = data[1].split("\n") if isinstance(data[1], str) else data[1]
        if len(data) >= 4:  # [times, distinct paths, their latest read times, fired]
            w.last = dict(zip(paths, _unpack(data[2]), strict=True))
            w.fired = bool(data[3])
            return w
        # The oldest format: [times, the path of each read, fired].
        last = w.last
        for t, path in zip(w.times, paths, strict=False):
            last.pop(path, None)
            last[path] = t
        w.fired = bool(data[2])
        return w
