"""Incremental per-identity sliding windows: O(1) amortized per event.

Each event is appended once and popped once, and the distinct-path count is a Counter kept in
step with the deque, so no window is ever rescanned (the reference detector rebuilt the whole
burst list for every event: O(n^2) per identity).

A *burst* is a maximal run of events during which the window's condition holds; the detectors
report once per burst. The burst ends when, at an event's arrival, the window (after dropping
entries older than its width) no longer satisfies the condition.
"""

from __future__ import annotations

import base64
from array import array
from binascii import b2a_base64
from collections import deque
from struct import pack
from typing import Any


def _pack(times: deque[float]) -> str:
    # Windows are rewritten at every commit: packed doubles are ~20x cheaper than JSON floats.
    # struct.pack (native doubles, the bytes array("d") would give) is 3x faster than
    # array("d", deque), which converts float by float. (binascii directly: base64.b64encode
    # is a Python wrapper around it, same output.)
    return b2a_base64(pack(f"{len(times)}d", *times), newline=False).decode("ascii")


def _unpack(data: str) -> array:
    return array("d", base64.b64decode(data))


class CountWindow:
    __slots__ = ("fired", "times")

    def __init__(self) -> None:
        self.times: deque[float] = deque()
        self.fired = False

    def add(self, ts: float, width: float) -> int:
        """Append ts, drop what is older than ts - width, return the count in the window."""
        times = self.times
        cutoff = ts - width
        while times and times[0] < cutoff:
            times.popleft()
        times.append(ts)
        return len(times)

    def to_state(self) -> list[Any]:
        return [_pack(self.times), self.fired]

    @classmethod
    def from_state(cls, data: list[Any]) -> CountWindow:
        w = cls()
        w.times = deque(_unpack(data[0]))
        w.fired = bool(data[1])
        return w


class DistinctWindow:
    """Reads in the window and how many distinct paths they touched. Two parallel deques (no
    tuple per event) and a Counter kept in step with them."""

    __slots__ = ("counts", "fired", "paths", "times")

    def __init__(self) -> None:
        self.times: deque[float] = deque()
        self.paths: deque[str] = deque()
        self.counts: dict[str, int] = {}  # plain dict: no Python-level __missing__ per new key
        self.fired = False

    def add(self, ts: float, path: str, width: float) -> int:
        """Append (ts, path), expire what is older than ts - width; return the distinct paths
        in the window (the read count is len(self.times): no tuple built per event)."""
        times, paths, counts = self.times, self.paths, self.counts
        cutoff = ts - width
        while times and times[0] < cutoff:
            times.popleft()
            old = paths.popleft()
            n = counts[old] - 1
            if n:
                counts[old] = n
            else:
                del counts[old]
        times.append(ts)
        paths.append(path)
        counts[path] = counts.get(path, 0) + 1
        return len(counts)

    def to_state(self) -> list[Any]:
        # The paths as ONE newline-joined string when no path holds a newline: JSON-encoding
        # one string is ~30% cheaper than a list of dozens (windows are rewritten at every
        # commit). A list (the older format, still read) otherwise.
        paths = self.paths
        joined = "\n".join(paths)
        if paths and joined.count("\n") == len(paths) - 1:
            return [_pack(self.times), joined, self.fired]
        return [_pack(self.times), list(paths), self.fired]

    @classmethod
    def from_state(cls, data: list[Any]) -> DistinctWindow:
        w = cls()
        w.times.extend(_unpack(data[0]))
        paths = data[1].split("\n") if isinstance(data[1], str) else data[1]
        w.paths.extend(paths)
        for p in paths:
            w.counts[p] = w.counts.get(p, 0) + 1
        w.fired = bool(data[2])
        return w
