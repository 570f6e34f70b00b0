"""The watch loop: read lines, decode, run the detectors, commit, emit.

Exactly-once across a crash (kill -9) for file inputs and a file output:
- every commit is ONE store transaction holding the detector state, the input offsets, the
  output file's size BEFORE this batch and the batch of findings (the "outbox"); for a shared
  store (Redis) the same script records which provisional findings lost their claim;
- after the commit the outbox is written to the outputs;
- on start the output file is truncated back to the committed size and the committed outbox is
  written again (it may or may not have reached the file before the crash), then inputs resume
  from the committed offsets. Events after the last commit are re-read and re-processed against
  the committed state, so their findings come out once.
stdout and HTTP outputs get the last committed batch again after a crash (at-least-once; the
finding `id` lets a receiver de-duplicate). stdin cannot be replayed.
"""

from __future__ import annotations

import gc
import queue
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from secretsight.detect import Detectors
from secretsight.detect.stores import StoreError
from secretsight.detect.timeguard import OUT_OF_RANGE
from secretsight.errors import SecretSightError
from secretsight.findings import Finding
from secretsight.normalize import dedupe_key
from secretsight.watch.decode import decode_lines
from secretsight.watch.inputs import FileInput, StdinInput
from secretsight.watch.metrics import Metrics
from secretsight.watch.outputs import FileOutput, Output, OutputError, finding_json

# Recent audit records remembered to drop repeats (CloudTrail delivers some eventIDs twice;
# shippers retry). Bounded: a repeat older than this many events gets through.
RECENT_RECORDS = 200_000

# The loop allocates dozens of containers per event, nearly all freed at once by reference
# counting (cyclic garbage is rare here); with the collector's default thresholds (700, 10,
# 10) it still walked the whole long-lived heap (every window and identity record) every
# ~1,500 events: ~20% of the CPU of `watch --no-rules` (docs/detectors.md, Performance). Set
# while the loop runs, restored after.
GC_THRESHOLDS = (50_000, 20, 10)

OUTBOX = "__outbox__"
OUTPUT_POS = "__output__"
LOST = "__lost__"


def process_each(det: Detectors, events: Iterable[Any], out: list[Finding],
                 accepted: list[tuple[dict[str, Any], float]], refused: list[str]) -> None:
    """StreamingDetectors.process_many's contract for any `Detectors`, one process() call
    per event: findings to `out`, (event, timestamp) of each event taken to `accepted`, the
    detectors' last_rejected of each refused to `refused`."""
    for e in events:
        before = det.events
        found = det.process(e)
        if found:  # (an event rejected half-way may still have completed findings)
            out.extend(found)
        if det.events == before:  # rejected (counted by reason in det.rejected)
            refused.append(det.last_rejected)
        else:
            accepted.append((e, det.last_ts or 0.0))


class Watcher:
    def __init__(self, detectors: Detectors, *, files: list[str], outputs: list[Output],
                 metrics: Metrics | None = None, stdin: bool = False,
                 work: queue.Queue | None = None, commit_every: int = 100_000,
                 commit_interval: float = 1.0, tick_interval: float = 1.0,
                 exit_at_eof: bool = False, clock: Callable[[], float] = time.time,
                 log: Callable[[str], None] | None = None) -> None:
        self.det = detectors
        self.outputs = outputs
        self.metrics = metrics or Metrics(clock=clock)
        self.work: queue.Queue = work or queue.Queue(maxsize=1000)
        self.commit_every = commit_every
        self.commit_interval = commit_interval
        self.tick_interval = tick_interval
        self.exit_at_eof = exit_at_eof
        self.clock = clock
        self.log = log or (lambda m: print(f"secretsight watch: {m}", file=sys.stderr))
        self.stop_requested = False
        self.read_errors: list[str] = []  # inputs that could not be read to their end
        self._carry: Any = None
        self._outbox_pending = False
        self.pending: list[Finding] = []
        # the dedupe keys of the last RECENT_RECORDS records, and the same in arrival order (a
        # set and a deque cost less per event than an OrderedDict and its linked list)
        self.recent: set[int] = set()
        self.recent_order: deque[int] = deque()
        self.since_commit = 0
        saved = detectors.state_offsets()
        self.files = [FileInput(p) for p in files]
        for f in self.files:
            f._saved = saved.get(f.name)
        self.stdin = StdinInput(self.work) if stdin else None
        self.stdin_open = stdin
        self._recover(saved)

    # ---- crash recovery of the outputs
    def _recover(self, saved: dict[str, Any]) -> None:
        positions = saved.get(OUTPUT_POS) or {}
        for o in self.outputs:
            o.restore(positions.get(o.name))
        lost = set(saved.get(LOST) or [])
        outbox = [fj for cid, fj in saved.get(OUTBOX) or [] if not (cid and cid in lost)]
        if outbox:
            self.log(f"re-emitting {len(outbox)} finding(s) committed before a restart")
            self._write_all(outbox)

    # ---- processing
    def handle_lines(self, source: str, lines: list[bytes]) -> None:
        m = self.metrics
        m.count("lines_by_input", source, len(lines))
        skips: list[str] = []
        errors: list[str] = []
        events = decode_lines(lines, skips, errors)
        # counted per reason, not per line: a Vault request entry is every other line
        for reason, n in Counter(errors).items():
            m.count("parse_errors", (source, reason), n)
        for reason, n in Counter(skips).items():
            m.count("skipped", (source, reason), n)
        self.handle_events(source, events)

    def handle_events(self, source: str, events: list[dict[str, Any]]) -> None:
        accepted: list[tuple[dict[str, Any], float]] = []  # for the metrics, in one call
        try:
            self._process(source, events, accepted)
        finally:  # (a store failure half-way: what was accepted still counts)
            self.metrics.observe_many(accepted)

    def _process(self, source: str, events: list[dict[str, Any]],
                 accepted: list[tuple[dict[str, Any], float]]) -> None:
        det, m = self.det, self.metrics
        refused: list[str] = []
        repeats = [0]
        taken = len(accepted)
        # The whole read in one call (StreamingDetectors.process_many); the repeats are
        # dropped on the way, one event at a time, as the detectors pull them.
        many = getattr(det, "process_many", None)
        try:
            if many is not None:
                many(self._unseen(events, repeats), self.pending, accepted, refused)
            else:
                process_each(det, self._unseen(events, repeats), self.pending, accepted, refused)
        finally:  # (counted once per read; a store failure half-way counts what was accepted)
            self.since_commit += len(accepted) - taken
            if repeats[0]:
                m.count("duplicates", source, repeats[0])
            if refused:  # by reason (counted by reason in det.rejected too)
                for reason, n in Counter(refused).items():
                    m.count("parse_errors", (source, OUT_OF_RANGE if reason == OUT_OF_RANGE
                                             else "invalid_event"), n)

    def _unseen(self, events: list[dict[str, Any]], repeats: list[int]) -> Iterator[Any]:
        """The events that are not a repeat of a recent audit record; repeats[0] counts the
        others. A generator: an event's key is remembered only once the one before it was
        processed (a failure half-way leaves the rest unseen, as they were)."""
        recent = self.recent
        remember, order = self.recent_order.append, self.recent_order
        for e in events:
            try:
                # dedupe_key, its Vault case inline (most events): the same tuple hashed
                meta = e["event"]
                ds = meta["dataset"]
                if ds == "vault.audit":
                    vault = e.get("vault")
                    key: int | None = hash((ds, meta["id"], vault.get("entry_type")
                                            if vault else None))
                else:
                    key = dedupe_key(e)
            except (KeyError, TypeError, AttributeError):
                key = None  # not a well-formed event: the detectors reject and count it
            if key is not None:
                if key in recent:
                    repeats[0] += 1
                    continue
                recent.add(key)
                remember(key)
                if len(recent) > RECENT_RECORDS:
                    recent.discard(order.popleft())
            yield e

    def commit(self) -> None:
        t0 = time.perf_counter()
        pending, self.pending = self.pending, []
        cids = self.det.claim_ids()
        as_json = [finding_json(f, self.det.config.alerting) for f in pending]
        offsets: dict[str, Any] = {f.name: f.offset() for f in self.files if f.inode is not None}
        offsets[OUTPUT_POS] = {o.name: o.position() for o in self.outputs
                               if isinstance(o, FileOutput)}
        offsets[OUTBOX] = [[cids.get(id(f), 0), fj] for f, fj in zip(pending, as_json, strict=True)]
        try:
            lost = {id(f) for f in self.det.commit(offsets)}
        except BaseException as exc:
            if isinstance(exc, Exception):  # not a stop signal: the store failed
                self.metrics.count_commit_failure()  # alerting: SecretSightStateCommitFailing
            self.pending = pending + self.pending  # computed: emitted by _emit_uncommitted
            raise
        emit = [fj for f, fj in zip(pending, as_json, strict=True) if id(f) not in lost]
        m = self.metrics
        with m.lock:
            m.findings_dropped += len(lost)
            for fj in emit:
                m.findings[fj["anomaly"]] += 1
                m.findings_by_severity[(fj["anomaly"], fj["severity"])] += 1
                if fj["anomaly"] == "first_path_access":
                    m.first_path_accesses += 1
            m.commits += 1
            m.commit_seconds += time.perf_counter() - t0
        self._outbox_pending = bool(pending)
        self.since_commit = 0
        self.last_commit = self.clock()
        self._write_all(emit)

    def _write_all(self, findings: list[dict[str, Any]]) -> None:
        """Every output gets the batch even when one fails (a full disk under the file
        output must not keep findings from stdout or HTTP); then the failure stops the run."""
        failed: list[str] = []
        for o in self.outputs:
            try:
                o.write(findings)
            except (OSError, ValueError) as exc:  # ValueError: a file already closed
                failed.append(f"{o.name}: {exc}")
        if failed:
            raise OutputError("cannot write findings to " + "; ".join(failed))

    def _emit_uncommitted(self) -> None:
        """After a store or output failure: every finding already computed goes out before
        the run stops. They were not committed: a restart computes them again (the file
        output is rewound to its committed size first; stdout and HTTP may see them twice)."""
        pending, self.pending = self.pending, []
        if not pending:
            return
        self.log(f"emitting {len(pending)} finding(s) computed before the failure")
        rows = [finding_json(f) for f in pending]
        for o in self.outputs:
            try:
                o.write(rows)
            except (OSError, ValueError) as exc:
                self.log(f"{o.name}: {exc}")

    def run(self) -> int:
        """Process until stopped (or, one-shot, to the end of the inputs). A store or output
        failure emits what was computed, then raises (the side-car exits 2)."""
        thresholds = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            return self._run()
        except SecretSightError:
            self._emit_uncommitted()
            raise
        finally:
            gc.set_threshold(*thresholds)

    def _run(self) -> int:
        if self.stdin:
            self.stdin.start()
        self.last_commit = self.clock()
        last_tick = self.clock()
        while not self.stop_requested:
            progressed = False
            for f in self.files:
                lines = f.poll()
                if lines:
                    progressed = True
                    self.handle_lines(f.name, lines)
                if f.error is not None and f.error not in self.read_errors:
                    self.read_errors.append(f.error)
                    self.metrics.count("parse_errors", (f.name, "truncated_input"))
                    self.log(f"error: {f.error}")
            acks: list[tuple[Any, dict]] = []
            try:
                while True:
                    if self._carry is not None:
                        item, self._carry = self._carry, None
                    else:
                        item = self.work.get_nowait()
                    kind, source, payload = item
                    progressed = True
                    if kind == "lines":
                        self.handle_lines(source, payload)
                    elif kind == "events":
                        events, done, result = payload
                        try:
                            self.handle_events(source, events)
                        except StoreError as exc:  # the store is gone: answer, then stop
                            result["error"] = f"processing failed: {exc}"
                            done.set()
                            raise
                        except Exception as exc:  # noqa: BLE001 - one request never kills the loop
                            result["error"] = f"processing failed: {exc}"
                        acks.append((done, result))
                    elif kind == "eof":
                        self.stdin_open = False
                    if self.since_commit >= self.commit_every:
                        break
            except queue.Empty:
                pass
            now = self.clock()
            if now - last_tick >= self.tick_interval:
                self.pending.extend(self.det.tick(now))
                last_tick = now
            if (acks or self.since_commit >= self.commit_every
                    or (now - self.last_commit >= self.commit_interval
                        and (self.since_commit or self.pending))):
                self.commit()
            for done, _ in acks:
                done.set()
            if self.exit_at_eof and not progressed and not self.stdin_open and all(
                    f.at_eof() for f in self.files) and self.work.empty() and self._carry is None:
                for f in self.files:
                    self.handle_lines(f.name, f.flush_partial())
                self.pending.extend(self.det.finish())
                self.commit()
                break
            if not progressed:
                try:  # idle: sleep until something arrives (handled next round)
                    self._carry = self.work.get(timeout=0.05)
                except queue.Empty:
                    pass
        if not self.exit_at_eof:
            self.commit()
        if self._outbox_pending:
            # A clean stop: the last batch reached the outputs, so a restart must not
            # re-emit it (only a crash leaves a non-empty outbox behind).
            self.commit()
        return 2 if self.read_errors else 0

    def close(self) -> None:
        for f in self.files:
            f.close()
        for o in self.outputs:
            try:
                o.close()
            except (OSError, ValueError) as exc:  # already reported when the write failed
                self.log(f"closing {o.name}: {exc}")
