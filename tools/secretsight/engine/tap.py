"""The stateful detectors of a batch replay, fed the events while they load (see
`engine.replay`): in this process (`Tap`), or in a second process that also builds the table
rows (`LoadProcess`), on the other core while this one normalizes, inserts and evaluates the
rules.

Both give the same `TapResult`, or None when the pass was unusable (an event later than the
reorder lag, a duplicate): the caller then runs the detectors over the sorted events instead.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import traceback
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from secretsight.config import Config
from secretsight.engine import table
from secretsight.errors import SecretSightError
from secretsight.findings import Finding

try:  # POSIX only
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

try:  # a pinned dependency
    import orjson
except ImportError:  # pragma: no cover
    orjson = None  # type: ignore[assignment]


def _no_orjson(value: Any) -> bytes:  # pragma: no cover - pickle carries every event then
    raise TypeError("no orjson")


_dumps: Any = orjson.dumps if orjson is not None else _no_orjson


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


# Messages on the pipes: a one-byte tag, then the payload.
_JSON, _PICKLE, _END = b"J", b"P", b"E"  # to the worker: events (orjson lines / one pickled), end
_ROWS, _RESULT, _FAILED = b"W", b"R", b"X"  # from it: a batch's rows, the outcome, a crash
_TAKEN, _LOADED = b"T", b"L"  # into a database file: a batch inserted; all of them (+ counts)

Row = tuple[tuple[str, ...], tuple[Any, ...], int | None]  # what `table.rows` yields


class LoadProcess:
    """The second process of `replay(jobs=2)`: it builds the table rows of the events this
    process normalizes (`table.rows`: the same rows, numbered from the same id) and runs the
    detectors on them through a `Tap`, while this process goes on normalizing, inserting the
    rows it gets back and (after the input) evaluating the rules. On two cores the load then
    takes about the longer of the two halves instead of their sum.

    Each event is encoded by orjson as it is read (about a microsecond, a third of pickle's
    cost, paid here where the time is scarce; holding the dicts for a batch instead costs more
    than encoding them, because the next events then no longer reuse their memory); BATCH of
    them travel in one message, and their rows come back pickled, in order, one message per
    batch. An event orjson refuses (an integer beyond 64 bits) travels alone, pickled.

    Both sides write from a thread: neither ever waits on a full pipe the other cannot empty
    (both writing to the other at once would be a deadlock, whatever the sizes), and this
    process goes on while the worker is up to IN_FLIGHT batches behind (on a busy machine a
    process waits for a core now and then; a short queue made each such wait stop the other
    side too). A worker that fails raises its traceback here; one that dies raises
    SecretSightError (its rows are lost).

    With `database` (a file, fresh: ids from 1), the worker inserts the rows itself (`load`,
    instead of `rows`): one SQLite writer, which closes the file before this process opens it;
    no row is pickled, sent back or inserted here. Then this process, which has less to do,
    builds the rows (`table.rows`) and sends each with its event, (shape, names of a new
    shape, values, dedupe key, event), the worker feeding the detectors the event with the
    row's time and key, as `Engine.load` would. It reports each batch taken (the same bound on
    batches in flight), then the engine's counts, then the detectors' outcome, so the rules
    can start while the detectors finish."""

    BATCH = 256  # events per message (~130 KB of Vault events)
    IN_FLIGHT = 64  # batches sent and not yet returned as rows (~8 MB)
    PIPE_BYTES = 1 << 20  # Linux's default limit for an unprivileged process

    def __init__(self, config: Config, *, start_id: int, detectors: bool,
                 database: str | None = None):
        if database is not None and start_id != 1:
            raise ValueError("a worker loads a fresh database file: ids start at 1")
        self.database = database
        self._state: tuple[int, int, bool] | None = None
        context = multiprocessing.get_context("fork")
        inbox, self._out = context.Pipe(duplex=False)
        self._in, outbox = context.Pipe(duplex=False)
        _enlarge(self._out.fileno(), self.PIPE_BYTES)
        _enlarge(outbox.fileno(), self.PIPE_BYTES)
        self._worker = context.Process(
            target=_work, args=(inbox, outbox, config, start_id, detectors, database), daemon=True,
            name="secretsight-load")
        self._worker.start()
        inbox.close()
        outbox.close()
        self._lines: list[bytes] = []  # the events of the batch, encoded
        self._in_flight = 0
        self._sending = _writer(self._out, "secretsight-load-events")
        self._outcome: TapResult | None = None
        self._finished = False

    def rows(self, events: Iterable[dict[str, Any]]) -> Iterator[Row]:
        """The rows of `events`, in order (as `table.rows(events, start_id, tap.feed)`)."""
        if self.database is not None:
            raise ValueError("this worker inserts its rows into its database file: load()")
        return self._stream(events)

    def load(self, events: Iterable[dict[str, Any]]) -> tuple[int, int, bool]:
        """`events` inserted into the database file by the worker, as `Engine.load` does
        (same rows, same ids); when this returns, the worker has committed and closed it.
        Returns its engine's `state()`, for `Engine.adopt`."""
        if self.database is None:
            raise ValueError("no database file: rows()")
        for _ in self._stream(_with_rows(events)):  # pragma: no cover - no rows come back
            raise RuntimeError("the load process sent rows")
        while self._state is None:
            for _ in self._receive():  # pragma: no cover - idem
                raise RuntimeError("the load process sent rows")
        return self._state

    def _stream(self, items: Iterable[Any]) -> Iterator[Row]:
        lines, dumps = self._lines, _dumps
        for item in items:
            try:
                lines.append(dumps(item))
            except TypeError:  # not orjson's JSON: alone, after the batch so far
                yield from self._send_batch()
                yield from self._send(_PICKLE + pickle.dumps(item, pickle.HIGHEST_PROTOCOL))
                lines = self._lines  # a new list since the batch went
                continue
            if len(lines) >= self.BATCH:
                yield from self._send_batch()
                lines = self._lines
        yield from self._send_batch()
        self._write(_END)
        while self._in_flight:
            yield from self._receive()

    def result(self) -> TapResult | None:
        """After `rows()`: the detectors' outcome (None: unusable, or no detectors)."""
        if not self._finished:
            while not self._finished:
                for _ in self._receive():
                    pass
            self.stop()
        return self._outcome

    def stop(self) -> None:
        """Ends the worker (idempotent; what `replay` calls when it stops early)."""
        self._in.close()
        self._worker.join(timeout=0 if not self._finished else 5)
        if self._worker.is_alive():  # stopped early: the writer may wait on a full pipe
            self._worker.kill()
            self._worker.join()
        queue_, thread = self._sending
        queue_.put(None)
        thread.join()
        self._out.close()

    def _send_batch(self) -> Iterator[Row]:
        if not self._lines:
            return
        # orjson never writes a raw newline (JSON escapes it in strings): a safe separator
        payload = _JSON + b"\n".join(self._lines)
        self._lines = []
        yield from self._send(payload)

    def _send(self, payload: bytes) -> Iterator[Row]:
        while self._in_flight >= self.IN_FLIGHT:
            yield from self._receive()
        self._write(payload)
        self._in_flight += 1
        while self._in.poll():  # rows already back: take them now, the pipe stays free
            yield from self._receive()

    def _write(self, payload: bytes) -> None:
        self._sending[0].put(payload)  # a worker gone is seen by _receive

    def _receive(self) -> Iterator[Row]:
        try:
            data = self._in.recv_bytes()
        except (OSError, EOFError) as exc:
            raise self._lost() from exc
        tag = data[:1]
        if tag == _ROWS:
            self._in_flight -= 1
            rows: list[Row] = pickle.loads(memoryview(data)[1:])
            yield from rows
        elif tag == _TAKEN:
            self._in_flight -= 1
        elif tag == _LOADED:
            self._state = pickle.loads(memoryview(data)[1:])
        elif tag == _RESULT:
            self._outcome = pickle.loads(memoryview(data)[1:])
            self._finished = True
        else:
            raise RuntimeError(f"the load process failed:\n{data[1:].decode()}")

    def _lost(self) -> SecretSightError:
        code = self._worker.exitcode
        return SecretSightError(f"the load process ended unexpectedly (exit code {code})")


def _with_rows(events: Iterable[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    """What `load` sends per event: (shape number, its column names the first time, else
    None, the row's values, its dedupe key, the event). The values are str, int, None and the
    time, a float, which orjson writes in its shortest exact form: they come back equal."""
    shapes: dict[tuple[str, ...], int] = {}
    held: list[dict[str, Any]] = []
    for present, values, key in table.rows(events, 1, lambda event, ts, key: held.append(event)):
        shape = shapes.get(present)
        names = None
        if shape is None:
            shape = shapes[present] = len(shapes)
            names = present
        yield shape, names, values, key, held.pop()


def _rows_of(items: Iterable[Any], tap: Tap) -> Iterator[Row]:
    """The worker's side of `_with_rows`: the rows, the detectors fed in their order."""
    shapes: dict[int, tuple[str, ...]] = {}
    feed = tap.feed if tap.usable else None
    for shape, names, values, key, event in items:
        if names is not None:
            shapes[shape] = tuple(names)
        if feed is not None:
            feed(event, values[1], key)
        yield shapes[shape], tuple(values), key


def _writer(conn: Any, name: str) -> tuple[queue.SimpleQueue[bytes | None], threading.Thread]:
    """A thread that sends what is put on its queue through `conn`, until None. Blocking on a
    full pipe there lets the thread that puts go on."""
    sending: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    def send() -> None:
        while (message := sending.get()) is not None:
            try:
                conn.send_bytes(message)
            except OSError:  # the other side is gone: its reader sees that
                return

    thread = threading.Thread(target=send, name=name, daemon=True)
    thread.start()
    return sending, thread


def _enlarge(fd: int, size: int) -> None:
    """Ask for a pipe buffer of `size` bytes (Linux); the default one otherwise."""
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if setpipe is None:
        return
    try:
        fcntl.fcntl(fd, setpipe, size)
    except OSError:  # over this system's limit: the default size works, a little slower
        pass


def _work(inbox: Any, outbox: Any, config: Config, start_id: int, detectors: bool,
          database: str | None) -> None:
    """The worker: events in; their rows out, batch by batch (or into `database`, then its
    engine's counts); the detectors' outcome last."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; a closed pipe ends us
    # What was inherited lives as long as this process: the collector skips it (no copy of
    # the parent's pages just to walk their objects).
    gc.freeze()
    # Few of the objects made per event outlive it, but the detectors' state and the rows
    # waiting for their INSERT do: collecting every 700 allocations walked them again and
    # again (0.65 s of 7.4 s per 300k events); the thresholds `watch` uses (watch/runner.py).
    gc.set_threshold(50_000, 20, 10)
    loads = orjson.loads if orjson is not None else None  # no orjson: every event pickled
    out: list[Row] = []
    shapes: dict[tuple[str, ...], tuple[str, ...]] = {}  # one object per INSERT shape
    taken = False  # into the database: a batch's events all taken, not yet reported

    def events() -> Iterator[dict[str, Any]]:
        nonlocal taken
        while True:
            if out:  # the rows of the batch before: all made once its last event is taken
                sending.put(_ROWS + pickle.dumps(out, pickle.HIGHEST_PROTOCOL))
                out.clear()
            elif taken:
                sending.put(_TAKEN)
            taken = database is not None
            data = inbox.recv_bytes()
            tag = data[:1]
            if tag == _END:
                return
            if tag == _JSON:
                yield from map(loads, data[1:].split(b"\n"))
            else:
                yield pickle.loads(memoryview(data)[1:])

    sending, writer = _writer(outbox, "secretsight-load-rows")
    try:
        tap = Tap(load_detectors(config) if detectors else None)
        if database is not None:
            state = _load(database, config, _rows_of(events(), tap))
            sending.put(_LOADED + pickle.dumps(state))
        else:
            intern, append = shapes.setdefault, out.append
            for present, values, key in table.rows(events(), start_id,
                                                   tap.feed if tap.usable else None):
                append((intern(present, present), values, key))
        tap.close()
        sending.put(_RESULT + pickle.dumps(tap.result(), pickle.HIGHEST_PROTOCOL))
    except (EOFError, OSError):  # the parent is gone
        pass
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
        sending.put(_FAILED + traceback.format_exc().encode())
    finally:
        sending.put(None)
        writer.join()
        inbox.close()
        outbox.close()
        os._exit(0)  # no atexit handlers or buffers of the parent's to run


def _load(database: str, config: Config, rows: Iterator[Row]) -> tuple[int, int, bool]:
    """The worker's `Engine.load_rows` into the file; committed and closed when this returns."""
    from secretsight.engine import Engine

    engine = Engine(config, database=database)
    try:
        engine.conn.execute("PRAGMA journal_mode=OFF")  # a temporary file: as replay's own
        engine.conn.execute("PRAGMA synchronous=OFF")
        engine.load_rows(rows)
        engine.conn.commit()
        return engine.state()
    finally:
        engine.close()
