"""The stateful detectors of a batch replay, fed the events while they load (see
`engine.replay`): in this process (`Tap`), or in a second process (`LoadProcess`, which also
inserts the rows into a database file), on the other core while this one normalizes, builds the
rows and evaluates the rules.

Both give the same `TapResult`, or None when the pass was unusable (an event later than the
reorder lag, a duplicate): the caller then runs the detectors over the sorted events instead.
"""

from __future__ import annotations

import gc
import marshal
import multiprocessing
import operator
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
from secretsight.engine.solo import single_threaded
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


# The collector's thresholds in the worker: few of the objects made per event outlive it, but
# the detectors' state and the rows waiting for their INSERT do, and collecting every 700
# allocations walked them again and again (0.65 s of 7.4 s per 300k events); the thresholds
# `watch` uses (watch/runner.py). Not kept for the main process (measured, engine/README.md).
GC_THRESHOLDS = (50_000, 20, 10)


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

    def feed_many(self, events: Iterable[dict[str, Any]], times: Iterable[float | None],
                  keys: Iterable[int | None]) -> None:
        """`feed` of each (event, ts, key) in turn, its common case (a new event in time
        order, which releases what it pushed out of the lag) inline: the load worker's loop,
        without two method calls and a dozen attribute lookups per event."""
        if not self.usable:
            return
        assert self.detectors is not None
        seen, held, untimed = self._seen, self._held, self._untimed
        add, append, popleft = seen.add, held.append, held.popleft
        process, extend, lag = self.detectors.process, self.findings.extend, self.REORDER_LAG
        for event, ts, key in zip(events, times, keys, strict=True):
            if key is not None:
                if key in seen:
                    self._abandon()
                    return
                add(key)
            if ts is None:
                untimed.append(event)
                continue
            newest = self._newest
            if newest is not None and ts > newest:  # in order, a new time: releases
                append((ts, event))
                self._newest = ts
                upto = ts - lag
                while held and held[0][0] <= upto:
                    released, out = popleft()
                    self._released = released
                    extend(process(out))
                continue
            key = None  # seen above: `feed` must not see it again
            self.feed(event, ts, key)
            if not self.usable:
                return

    def _release(self, upto: float | None) -> None:
        assert self.detectors is not None
        held, process, extend = self._held, self.detectors.process, self.findings.extend
        while held and (upto is None or held[0][0] <= upto):
            ts, event = held.popleft()
            self._released = ts
            extend(process(event))


# Messages on the pipes: a one-byte tag, then the payload.
# to the worker: a batch (`_Batch`) marshalled, or pickled when marshal refuses an event (an
# object that is not JSON's); the end of the input
_BATCH, _PICKLED, _END = b"B", b"P", b"E"
_TAKEN, _ABANDONED = b"T", b"A"  # from it: a batch taken; the detectors' pass is unusable
_LOADED, _RESULT, _FAILED = b"L", b"R", b"X"  # the engine's counts, the outcome, a crash

# A batch: (its rows or None, the events' times and dedupe keys or None (then the rows'),
# the events, each orjson-encoded, or as itself when orjson refuses it, or None when its
# row holds it: `table.event_maker`).
_Batch = tuple[list[table.Row] | None, list[float | None] | None, list[int | None] | None,
               list[Any]]


class LoadProcess:
    """The second process of `replay(jobs=2)`, on the other core: it runs the detectors (a
    `Tap`) on the events this process normalizes and, into a database file, inserts the rows
    this process builds, while this one goes on reading and normalizing (then evaluates the
    rules). The load then takes about the longer of the two halves instead of their sum.

    `feed(event, ts, key)` (as `Tap.feed`; this process inserts the rows, into memory):
    the events cross. `load(events)` (`database`, a fresh file: ids from 1): the rows
    (`table.rows`, built here: a Vault event's come from its normalizer) cross with the events,
    the worker inserts them as `Engine.load` would (one SQLite writer, which commits and closes
    the file before this process opens it) and feeds the detectors each event with its row's
    time and key. An event given with its cells (`table.Celled`) does not cross: its row holds
    exactly its fields, and the worker makes it of that (`table.event_maker`, as fast as
    decoding it). Which side inserts was measured (engine/README.md, Speed): the detectors
    alone are the lighter half.

    Each event is encoded by orjson as it is fed (about a microsecond, a third of pickle's
    cost; holding the dicts for a batch instead costs more than encoding them, because the
    next events then no longer reuse their memory; one orjson refuses, such as an integer
    beyond 64 bits, crosses as itself); BATCH of them travel in one message, with their rows,
    marshalled (pickled if an event is not marshal's), which keeps the rows' NULL cells
    (`table.NULL`, a NaN; orjson would write null, which binds slowly).

    A thread writes the messages, so this process goes on while the pipe is full and the
    worker is up to IN_FLIGHT batches behind (on a busy machine a process waits for a core now
    and then; a short queue made each such wait stop the other side too). The worker reports
    each batch taken, and once whether the detectors' pass became unusable (a late event, a
    duplicate: no more events cross then). A worker that fails raises its traceback here; one
    that dies raises SecretSightError."""

    BATCH = 256  # events per message (~130 KB of Vault events)
    IN_FLIGHT = 64  # batches sent and not yet taken (~8 MB)
    PIPE_BYTES = 1 << 20  # Linux's default limit for an unprivileged process

    def __init__(self, config: Config, *, detectors: bool = True, database: str | None = None):
        self.database = database
        context = multiprocessing.get_context("fork")
        inbox, self._out = context.Pipe(duplex=False)
        self._in, outbox = context.Pipe(duplex=False)
        _enlarge(self._out.fileno(), self.PIPE_BYTES)
        _enlarge(outbox.fileno(), self.PIPE_BYTES)
        self._worker = context.Process(
            target=_work, args=(inbox, outbox, config, detectors, database), daemon=True,
            name="secretsight-load")
        self._worker.start()
        inbox.close()
        outbox.close()
        self.usable = detectors  # False once the worker said its detectors' pass is unusable
        self._events: list[Any] = []  # the batch's events, encoded
        self._times: list[float | None] = []
        self._keys: list[int | None] = []
        self._in_flight = 0
        self._sending = _writer(self._out, "secretsight-load-events")
        self._state: tuple[int, int, bool] | None = None
        self._outcome: TapResult | None = None
        self._closed = self._finished = False

    def feed(self, event: dict[str, Any], ts: float | None, key: int | None) -> None:
        """As `Tap.feed` (without a database); nothing crosses once the pass is unusable."""
        if not self.usable:
            return
        self._encode(event)
        self._times.append(ts)
        self._keys.append(key)
        if len(self._events) >= self.BATCH:
            self._send((None, self._times, self._keys, self._events))
            self._times, self._keys = [], []

    def load(self, events: Iterable[dict[str, Any] | table.Celled]) -> tuple[int, int, bool]:
        """`events` inserted into the database file by the worker, as `Engine.load` does
        (same rows, same ids), and fed to its detectors; when this returns, the worker has
        committed and closed the file. Returns its engine's `state()`, for `Engine.adopt`."""
        if self.database is None:
            raise ValueError("no database file: feed()")
        batch: list[table.Row] = []
        append, batch_size = batch.append, self.BATCH
        for row in table.rows(self._encoded(events), 1):
            append(row)
            if len(batch) >= batch_size:
                self._send((batch, None, None, self._events if self.usable else []))
                batch = []
                append = batch.append
        if batch:
            self._send((batch, None, None, self._events if self.usable else []))
        self.close()
        while self._state is None:
            self._receive()
        return self._state

    def _encoded(self, items: Iterable[dict[str, Any] | table.Celled]
                 ) -> Iterator[dict[str, Any] | table.Celled]:
        """`items`, each event encoded on its way to `table.rows`; one given with its cells
        crosses as None: the worker makes it of its row (`table.event_maker`)."""
        for item in items:
            if self.usable:
                if item.__class__ is tuple:
                    self._events.append(None)
                else:
                    self._encode(item)  # type: ignore[arg-type]
            yield item

    def _encode(self, event: dict[str, Any]) -> None:
        try:
            self._events.append(_dumps(event))
        except TypeError:  # not orjson's JSON: crosses as itself
            self._events.append(event)

    def close(self) -> None:
        """End of input (as `Tap.close`): the worker releases what its detectors hold."""
        if self._closed:
            return
        self._closed = True
        if self._events and self.database is None:
            self._send((None, self._times, self._keys, self._events))
        self._write(_END)

    def result(self) -> TapResult | None:
        """After `close()` or `load()`: the detectors' outcome (None: the pass was unusable,
        or no detectors)."""
        self.close()
        while not self._finished:
            self._receive()
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

    def _send(self, batch: _Batch) -> None:
        self._events = []
        while self._in_flight >= self.IN_FLIGHT:
            self._receive()
        try:
            # marshal: the rows' str, int and float (NaN kept) cost ~25 % less than pickle's
            message = _BATCH + marshal.dumps(batch)
        except ValueError:
            message = _PICKLED + pickle.dumps(batch, pickle.HIGHEST_PROTOCOL)
        self._write(message)
        self._in_flight += 1
        while self._in.poll():  # acknowledgements already there: the pipe stays free
            self._receive()

    def _write(self, payload: bytes) -> None:
        self._sending[0].put(payload)  # a worker gone is seen by _receive

    def _receive(self) -> None:
        try:
            data = self._in.recv_bytes()
        except (OSError, EOFError) as exc:
            raise self._lost() from exc
        tag = data[:1]
        if tag == _TAKEN:
            self._in_flight -= 1
        elif tag == _ABANDONED:
            self.usable = False
            self._events, self._times, self._keys = [], [], []
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


def _work(inbox: Any, outbox: Any, config: Config, detectors: bool,
          database: str | None) -> None:
    """The worker: batches in, their events fed to a `Tap` (and their rows inserted into
    `database`, then its engine's counts sent), each batch acknowledged; the outcome last."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; a closed pipe ends us
    # What was inherited lives as long as this process: the collector skips it (no copy of
    # the parent's pages just to walk their objects).
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    # forked before any SQLite connection of its own, which only this thread uses: the inserts
    # and the detectors' in-memory store then take no mutex (engine/solo.py)
    single_threaded()
    loads = orjson.loads if orjson is not None else None  # no orjson: events cross as dicts
    sending, writer = _writer(outbox, "secretsight-load-acks")
    tap = Tap(load_detectors(config) if detectors else None)
    engine: Any = None
    told = False
    shape: tuple[str, ...] | None = None  # the fixed row shape `make` rebuilds events of
    make: Any = None

    def take(rows: list[table.Row] | None, times: list[float | None] | None,
             keys: list[int | None] | None, events: list[Any]) -> None:
        """One batch: its events fed to the detectors, its rows inserted (one `load_rows`
        per batch, not a generator the engine pulls each row through)."""
        nonlocal shape, make
        if events and tap.usable:
            if rows is None:
                tap.feed_many([loads(e) if e.__class__ is bytes else e for e in events],
                              times, keys)  # type: ignore[arg-type]
            else:
                made: list[dict[str, Any]] = []
                append = made.append
                for (present, values, _), event in zip(rows, events, strict=True):
                    if event is None:  # given with its cells: the row holds the event
                        if present is not shape:
                            shape, make = present, table.event_maker(present)
                        event = make(values)
                    elif event.__class__ is bytes:
                        event = loads(event)
                    append(event)
                tap.feed_many(made, map(_second, map(_second, rows)), map(_third, rows))
        if rows is not None:
            if engine is None:  # pragma: no cover - no rows without a database
                raise RuntimeError("rows sent without a database")
            engine.load_rows(rows)

    try:
        if database is not None:
            engine = _engine(database, config)
        if not tap.usable:  # no detectors: no events to send
            told = True
            sending.put(_ABANDONED)
        while (data := inbox.recv_bytes())[:1] != _END:
            body = memoryview(data)[1:]
            take(*(marshal.loads(body) if data[:1] == _BATCH else pickle.loads(body)))
            sending.put(_TAKEN)  # after its rows are inserted
            if not tap.usable and not told:
                told = True
                sending.put(_ABANDONED)
        if engine is not None:
            engine.conn.commit()
            state = engine.state()
            engine.close()
            engine = None
            sending.put(_LOADED + pickle.dumps(state))
        tap.close()
        sending.put(_RESULT + pickle.dumps(tap.result(), pickle.HIGHEST_PROTOCOL))
    except (EOFError, OSError):  # the parent is gone
        pass
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
        sending.put(_FAILED + traceback.format_exc().encode())
    finally:
        if engine is not None:
            engine.close()
        sending.put(None)
        writer.join()
        inbox.close()
        outbox.close()
        os._exit(0)  # no atexit handlers or buffers of the parent's to run


_second, _third = operator.itemgetter(1), operator.itemgetter(2)


def _engine(database: str, config: Config) -> Any:
    """The worker's `Engine` on the file it loads (a temporary file, as replay's own: no
    journal, no sync)."""
    from secretsight.engine import Engine

    engine = Engine(config, database=database)
    engine.conn.execute("PRAGMA journal_mode=OFF")
    engine.conn.execute("PRAGMA synchronous=OFF")
    return engine
