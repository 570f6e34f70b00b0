"""The stateful detectors of a batch replay, fed the events while they load (see
`engine.replay`): in this process (`Tap`), or in a second process (`TapProcess`) so they run on
the other core while this one normalizes, inserts and evaluates the rules.

Both give the same `TapResult`, or None when the pass was unusable (an event later than the
reorder lag, a duplicate): the caller then runs the detectors over the sorted events instead.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import signal
import traceback
from collections import deque
from dataclasses import dataclass
from typing import Any

from secretsight.config import Config
from secretsight.findings import Finding

try:  # POSIX only
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

try:  # a pinned dependency
    import orjson
except ImportError:  # pragma: no cover
    orjson = None  # type: ignore[assignment]


def _dumps(value: Any) -> bytes:
    if orjson is None:  # pragma: no cover - pickle carries every event then
        raise TypeError("no orjson")
    return orjson.dumps(value)


def load_detectors(config: Config, store_url: str | None = None) -> Any | None:
    """`secretsight.detect.Detectors` over BATCH_DETECTORS, or None when not installed."""
    try:
        from secretsight.detect import BATCH_DETECTORS, Detectors, open_store
    except ImportError:
        return None
    return Detectors(config, open_store(store_url), only=BATCH_DETECTORS)


@dataclass
class TapResult:
    """What the detectors made of the whole input."""

    names: list[str]  # the detectors that ran
    findings: list[Finding]  # in the order they were found, `finish()`'s last
    rejected: dict[str, int]  # events the detectors refused, by reason


class Tap:
    """Runs the detectors on the input stream while it loads, through a reorder buffer.

    Logs are time-ordered only roughly (Vault writes a response when the request completes,
    so neighbouring entries can be a few milliseconds out of order): events are held for
    REORDER_LAG seconds of stream time and released in (`@timestamp`, arrival) order, the
    order the sorted replay uses. An event older than one already released, or a duplicate
    (`event.dataset`, `event.id`) that the SQL dedupe would fold, makes this pass unusable: its
    findings are dropped and the detectors run again over the sorted, deduplicated events.

    The buffer is a deque kept in (time, arrival) order: an event in time order (the usual
    case) is appended and later popped from the front, both O(1), with no heap comparisons; a
    slightly late one is inserted where it belongs, searching from the back (it is near it)."""

    REORDER_LAG = 60.0

    def __init__(self, detectors: Any | None):
        self.detectors = detectors
        self.usable = detectors is not None
        self.findings: list[Finding] = []
        self._released: float | None = None
        self._newest: float | None = None
        self._held: deque[tuple[float, dict[str, Any]]] = deque()
        self._seen: set[int] = set()
        self._untimed: list[dict[str, Any]] = []

    def close(self) -> None:
        """End of input: release everything held."""
        if self.usable:
            self._release(None)
            assert self.detectors is not None
            for event in self._untimed:  # the sorted replay puts unparsable times last
                self.findings.extend(self.detectors.process(event))
            self._untimed.clear()
        self._seen.clear()

    def result(self) -> TapResult | None:
        """After `close()`: the findings of the whole input (the detectors' `finish()`
        included), or None when this pass was unusable."""
        det = self.detectors
        if not self.usable or det is None:
            return None
        return TapResult(list(det.names), self.findings + det.finish(), dict(det.rejected))

    def _abandon(self) -> None:
        self.usable = False
        self.findings.clear()
        self._seen.clear()
        self._held.clear()
        self._untimed.clear()

    def feed(self, event: dict[str, Any], ts: float | None, key: int | None) -> None:
        """`key`: the hash of (`event.dataset`, `event.id`), None without an id."""
        if not self.usable:
            return
        if key is not None:
            if key in self._seen:
                self._abandon()
                return
            self._seen.add(key)
        if ts is None:
            self._untimed.append(event)
            return
        newest = self._newest
        if newest is None or ts >= newest:
            self._held.append((ts, event))
            if newest is None or ts > newest:
                self._newest = ts
                if self._held[0][0] <= ts - self.REORDER_LAG:
                    self._release(ts - self.REORDER_LAG)
            return
        if self._released is not None and ts < self._released:
            self._abandon()
            return
        held = self._held
        at = len(held)
        while at and held[at - 1][0] > ts:  # after every held event of the same or an earlier time
            at -= 1
        held.insert(at, (ts, event))

    def _release(self, upto: float | None) -> None:
        assert self.detectors is not None
        held, process, extend = self._held, self.detectors.process, self.findings.extend
        while held and (upto is None or held[0][0] <= upto):
            ts, event = held.popleft()
            self._released = ts
            extend(process(event))


# Messages on the pipe: a one-byte tag, then the payload.
_JSON, _PICKLE, _END = b"J", b"P", b"E"  # to the worker: a batch (orjson / pickle), end of input
_ABANDONED, _RESULT, _FAILED = b"A", b"R", b"X"  # from it: unusable, the outcome, a crash


class TapProcess:
    """A `Tap` in a forked worker process: `feed` batches the events and sends them over a
    pipe, the worker runs the reorder buffer and the detectors on them, in the same order, and
    returns the same `TapResult`. While the worker works, this process goes on normalizing,
    inserting and (after `close()`) evaluating the rules: the detectors cost about as much as
    all of that, so on two cores the replay takes roughly the longer of the two.

    Each event is encoded by orjson as it is fed (about a microsecond, a third of pickle's
    cost, paid here where the time is scarce; holding the dicts for a batch instead costs
    more than encoding them, because the next events then no longer reuse their memory), and
    BATCH of them travel in one message with their times and keys; an event orjson refuses
    (an integer beyond 64 bits) travels alone, pickled. The worker says as soon as the pass is
    abandoned, so no more batches are sent for nothing. A worker that dies makes the pass
    unusable (the caller then runs the detectors itself); one that fails raises its
    traceback here."""

    BATCH = 256  # events per message (~130 KB of Vault events): several fit in the pipe
    PIPE_BYTES = 1 << 20  # Linux's default limit for an unprivileged process

    def __init__(self, config: Config):
        context = multiprocessing.get_context("fork")
        # Two one-way pipes, the outgoing one enlarged: this process goes on while the worker
        # is a few batches behind (descheduled on a busy machine), instead of waiting for it
        # to read each batch.
        inbox, self._out = context.Pipe(duplex=False)
        self._in, outbox = context.Pipe(duplex=False)
        _enlarge(self._out.fileno(), self.PIPE_BYTES)
        self._worker = context.Process(target=_work, args=(inbox, outbox, config), daemon=True,
                                       name="secretsight-detectors")
        self._worker.start()
        inbox.close()
        outbox.close()
        self.usable = True
        self._lines: list[bytes] = []  # the events of the batch, encoded
        self._stamps: list[float | None] = []
        self._keys: list[int | None] = []
        self._ended = False

    def feed(self, event: dict[str, Any], ts: float | None, key: int | None) -> None:
        if not self.usable:
            return
        try:
            self._lines.append(_dumps(event))
        except TypeError:  # not orjson's JSON (or no orjson): alone, after the batch so far
            self._send_batch()
            self._send(_PICKLE + pickle.dumps((event, ts, key), pickle.HIGHEST_PROTOCOL))
            return
        self._stamps.append(ts)
        self._keys.append(key)
        if len(self._lines) >= self.BATCH:
            self._send_batch()

    def _send_batch(self) -> None:
        if not self._lines:
            return
        # orjson never writes a raw newline (JSON escapes it in strings): a safe separator
        head = _dumps([self._stamps, self._keys])
        payload = b"\n".join([_JSON + head, *self._lines])
        self._lines, self._stamps, self._keys = [], [], []
        self._send(payload)

    def _send(self, payload: bytes) -> None:
        try:
            self._out.send_bytes(payload)
            if self._in.poll():  # only ever the abandon notice before the end
                self._receive()
        except (OSError, EOFError):
            self._lost()

    def close(self) -> None:
        """End of input: the last batch, then the worker releases what it holds and finishes
        while the caller goes on (the rules)."""
        if self._ended:
            return
        self._ended = True
        if self.usable:
            self._send_batch()
        try:
            self._out.send_bytes(_END)
        except OSError:
            self._lost()

    def result(self) -> TapResult | None:
        """Waits for the worker's outcome (None: unusable)."""
        self.close()
        outcome: TapResult | None = None
        try:
            while (message := self._receive()) is _ABANDON_NOTICE:
                pass  # the outcome follows it
            outcome = message
        except (OSError, EOFError):
            self._lost()
        finally:
            self.stop()
        return outcome if self.usable else None

    def stop(self) -> None:
        """Ends the worker (idempotent; what `replay` calls when it stops early)."""
        self._ended = True
        self._out.close()
        self._in.close()
        self._worker.join(timeout=5)
        if self._worker.is_alive():  # pragma: no cover - a worker stuck in a detector
            self._worker.kill()
            self._worker.join()

    def _receive(self) -> TapResult | None:
        """The worker's next message: `_ABANDON_NOTICE`, or its outcome."""
        data = self._in.recv_bytes()
        tag, body = data[:1], data[1:]
        if tag == _ABANDONED:
            self._lost()
            return _ABANDON_NOTICE
        if tag == _FAILED:
            raise RuntimeError(f"the detector process failed:\n{body.decode()}")
        result: TapResult | None = pickle.loads(body)
        return result

    def _lost(self) -> None:
        self.usable = False
        self._lines, self._stamps, self._keys = [], [], []


_ABANDON_NOTICE: Any = TapResult([], [], {})  # a marker: compared by identity


def _enlarge(fd: int, size: int) -> None:
    """Ask for a pipe buffer of `size` bytes (Linux); the default one otherwise."""
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if setpipe is None:
        return
    try:
        fcntl.fcntl(fd, setpipe, size)
    except OSError:  # over this system's limit: the default size works, a little slower
        pass


def _work(inbox: Any, outbox: Any, config: Config) -> None:
    """The worker: batches in, through a `Tap`, the outcome out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; a closed pipe ends us
    # What was inherited lives as long as this process: the collector skips it (no copy of
    # the parent's pages just to walk their objects).
    gc.freeze()
    loads = orjson.loads if orjson is not None else None  # no orjson: every event pickled
    try:
        tap = Tap(load_detectors(config))
        abandoned = not tap.usable
        if abandoned:
            outbox.send_bytes(_ABANDONED)
        feed = tap.feed
        while True:
            data = inbox.recv_bytes()
            tag = data[:1]
            if tag == _END:
                break
            if abandoned:
                continue
            if tag == _JSON:
                head, *lines = data[1:].split(b"\n")
                stamps, keys = loads(head)
                for line, ts, key in zip(lines, stamps, keys, strict=True):
                    feed(loads(line), ts, key)
            else:
                feed(*pickle.loads(memoryview(data)[1:]))
            if not tap.usable:
                abandoned = True
                outbox.send_bytes(_ABANDONED)
        tap.close()
        outbox.send_bytes(_RESULT + pickle.dumps(tap.result(), pickle.HIGHEST_PROTOCOL))
    except (EOFError, OSError):  # the parent is gone
        pass
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
        try:
            outbox.send_bytes(_FAILED + traceback.format_exc().encode())
        except OSError:
            pass
    finally:
        inbox.close()
        outbox.close()
        os._exit(0)  # noqa: SLF001 - no atexit handlers or buffers of the parent's to run
