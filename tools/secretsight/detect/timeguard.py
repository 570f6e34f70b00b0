"""Time sanity on the event path, in front of every detector (scan and watch share it through
`Detectors.process`): a forged or skewed @timestamp must neither fire a detector nor move the
stream's watermark.

An event is OUT OF RANGE (refused, counted under `out_of_range`, schema/dispositions.yml) when
its @timestamp is
- before `limits.time.not_before` (no audit log is that old; this also guards the very first
  event, which has no watermark to compare with);
- more than `max_skew_seconds` ahead of the wall clock (a record cannot come from the future;
  past times are not compared with the wall clock: replaying or back-filling old logs is
  normal);
- more than `max_skew_seconds` behind the watermark, the newest @timestamp accepted so far.
Forward jumps of the watermark are allowed: a silence of weeks is what dormant_identity exists
to see.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from secretsight.detect.events import parse_ts
from secretsight.errors import SecretSightError
from secretsight.limits import TimeSanity

OUT_OF_RANGE = "out_of_range"


class TimeGuard:
    __slots__ = ("floor", "horizon", "skew", "wall")

    def __init__(self, limits: TimeSanity, wall: Callable[[], float] = time.time) -> None:
        floor = parse_ts(limits.not_before)
        if floor is None:
            raise SecretSightError(
                f"limits.time.not_before: not an RFC 3339 time: {limits.not_before!r}")
        self.floor = floor
        self.skew = limits.max_skew_seconds
        self.wall = wall
        self.horizon = wall() + self.skew  # re-read only when an event looks beyond it

    def accepts(self, ts: float, watermark: float | None) -> bool:
        if ts < self.floor:
            return False
        if ts > self.horizon:
            self.horizon = self.wall() + self.skew
            if ts > self.horizon:
                return False
        return watermark is None or ts >= watermark - self.skew
