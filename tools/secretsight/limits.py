"""Operating limits of the side-car and the event path: forged or skewed timestamps, the HTTP
ingest edge, the findings spool. Referenced from `config.Config` as `limits:` (one key), so a
deployment tunes them in the same YAML as thresholds; `config/secretsight.example.yml` lists
every key with its default.

Durations here are numbers of seconds (not `5m` strings): this module sits below `config.py`
and must not import it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeSanity(_Strict):
    """Events whose @timestamp cannot be true are refused (reason `out_of_range`) before any
    detector sees them, so one forged 9999-12-31 or 0001-01-01 event can neither move stream
    time nor open a window that ends before it starts."""

    # An event older than the stream's watermark (the newest accepted @timestamp) by more than
    # this, or newer than the wall clock by more than this, is out of range. Forward jumps
    # in stream time are allowed (a silence of weeks is what dormant_identity looks for).
    max_skew_seconds: float = Field(default=86_400.0, gt=0)
    # Nothing before this instant (RFC 3339) is a secret-store audit record: Vault, CloudTrail
    # and Kubernetes audit logs all postdate it. Guards the first event, which has no watermark.
    not_before: str = "2000-01-01T00:00:00Z"


class HttpLimits(_Strict):
    """The /ingest server (watch --listen)."""

    # Request line + headers must arrive within this; it is also the keep-alive idle time.
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    # A whole request body must arrive within this (a slow-drip client is cut off: 408).
    body_timeout_seconds: float = Field(default=60.0, gt=0)
    # Open connections at most; one more is answered 503 and closed at once.
    max_connections: int = Field(default=256, ge=1)
    # Request bodies being received or decoded at once, in bytes (declared Content-Length,
    # or --max-body for a chunked body); a request that would pass it is answered 503.
    max_inflight_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    # listen(2) backlog (the kernel caps it at net.core.somaxconn).
    backlog: int = Field(default=1024, ge=1)
    # Request line + headers, in bytes (431 above).
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)


class SpoolLimits(_Strict):
    """Findings an HTTP output could not deliver, kept next to the state and retried."""

    # Findings kept per output; when full, the OLDEST are dropped (and counted) so the newest
    # evidence survives an outage longer than the spool.
    max_findings: int = Field(default=100_000, ge=1)
    # Retry backoff: doubles from the first delay up to the cap.
    retry_initial_seconds: float = Field(default=1.0, gt=0)
    retry_max_seconds: float = Field(default=300.0, gt=0)
    # One POST attempt may take this long (a hanging receiver is given up on).
    request_timeout_seconds: float = Field(default=10.0, gt=0)
    # A one-shot run (--exit-at-eof) tries to empty the spool for this long before exiting.
    drain_seconds: float = Field(default=30.0, ge=0)


class Limits(_Strict):
    time: TimeSanity = TimeSanity()
    http: HttpLimits = HttpLimits()
    spool: SpoolLimits = SpoolLimits()
