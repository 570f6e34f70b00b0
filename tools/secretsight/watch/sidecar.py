"""The `watch` side-car, assembled: state store, detectors, metrics, outputs, the HTTP server
and the loop, and an orderly stop on SIGTERM/SIGINT. `commands/watch.py` only parses options.
"""

from __future__ import annotations

import ipaddress
import os
import queue
import signal
import sys
from dataclasses import dataclass

from secretsight.config import Config
from secretsight.detect import open_store
from secretsight.detect.stores import sqlite_path
from secretsight.errors import SecretSightError
from secretsight.stream import open_detectors
from secretsight.watch.http import IngestServer
from secretsight.watch.metrics import Metrics
from secretsight.watch.outputs import HttpOutput, open_output
from secretsight.watch.runner import Watcher
from secretsight.watch.spool import Spool


@dataclass(frozen=True)
class SidecarOptions:
    inputs: tuple[str, ...] = ()  # file paths, "-" for stdin
    listen: str | None = None  # HOST:PORT
    token: str | None = None
    max_body: int = 10 * 1024 * 1024
    outputs: tuple[str, ...] = ("-",)
    output_token: str | None = None
    state: str = "sqlite:///secretsight-state.db"
    instance: str = "default"
    only: tuple[str, ...] | None = None  # detector names; None: all
    rules: bool = True  # every embedded Sigma rule in the stream (stream/), as scan runs them
    commit_every: int = 100_000
    commit_interval: float = 1.0
    exit_at_eof: bool = False
    insecure_no_token: bool = False  # serve /ingest beyond loopback without a token
    spool: str | None = None  # findings spool file; None: next to a SQLite state (spool_path)


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT`, `[IPv6]:PORT` or `:PORT` (loopback) -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise SecretSightError(f"--listen: expected HOST:PORT or [IPv6]:PORT, got {value!r}")
    if host.startswith("["):
        if not host.endswith("]"):
            raise SecretSightError(f"--listen: unclosed [ in {value!r}")
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise SecretSightError(f"--listen: not an IPv6 address: {host!r}") from None
    elif ":" in host:
        raise SecretSightError(f"--listen: write an IPv6 address in brackets: [{host}]:{port}")
    return (host or "127.0.0.1", int(port))


def check_exposure(host: str, token: str | None, insecure_no_token: bool) -> None:
    """Without a token, /ingest accepts events from anyone who can connect: allowed on
    loopback, refused on any other address unless explicitly asked for."""
    if token or insecure_no_token:
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise SecretSightError(
            f"--listen {host}: refusing to serve /ingest beyond loopback without a token; "
            "set --token (or SECRETSIGHT_WATCH_TOKEN), or pass --insecure-no-token if a "
            "proxy in front authenticates")


UNDELIVERED = 3  # exit status of a one-shot run that ends with findings still in the spool


def spool_path(state: str, spool: str | None) -> str | None:
    """Where HTTP outputs spool findings: `--spool`, else beside a SQLite state file
    (`state.db` -> `state.db.spool`), else `secretsight-spool.db` in the working directory
    (Redis state); in memory (not durable) for an in-memory state."""
    if spool:
        return spool
    if state.startswith(("redis://", "rediss://", "unix://")):
        return "secretsight-spool.db"
    path = sqlite_path(state)
    return None if path == ":memory:" else path + ".spool"


def run(config: Config, opts: SidecarOptions) -> int:
    """Run the side-car until stopped (or, with exit_at_eof, to the end of its inputs)."""
    if not opts.inputs and not opts.listen:
        raise SecretSightError("nothing to watch: give --input PATH, --input - or --listen")
    if opts.listen and opts.exit_at_eof:
        raise SecretSightError("--exit-at-eof cannot be combined with --listen")
    address = parse_listen(opts.listen) if opts.listen else None
    if address is not None:
        check_exposure(address[0], opts.token, opts.insecure_no_token)
    store = open_store(opts.state)
    detectors = open_detectors(config, store, only=opts.only, instance=opts.instance,
                               rules=opts.rules)
    metrics = Metrics(config=config)  # windows and top N for the alerting gauges
    spool = None
    if any(o.startswith(("http://", "https://")) for o in opts.outputs):
        spool = Spool(spool_path(opts.state, opts.spool))

    def on_count(output: str, event: str, n: int) -> None:
        metrics.count("spool", (output, event), n)
        if event == "failed_posts":
            metrics.count("output_errors", output, n)

    outs = [open_output(o, opts.output_token, spool=spool, limits=config.limits.spool,
                        on_count=on_count) for o in opts.outputs]
    https = [o for o in outs if isinstance(o, HttpOutput)]
    metrics.spool_depth = lambda: {o.name: o.pending() for o in https}
    work: queue.Queue = queue.Queue(maxsize=1000)
    files = [p for p in opts.inputs if p != "-"]
    watcher = Watcher(detectors, files=files, outputs=outs, metrics=metrics,
                      stdin="-" in opts.inputs, work=work, commit_every=opts.commit_every,
                      commit_interval=opts.commit_interval, exit_at_eof=opts.exit_at_eof)
    server = None
    if address is not None:
        server = IngestServer(address, work=work, metrics=metrics, token=opts.token,
                              max_body=opts.max_body, limits=config.limits.http)
        server.start()
        print(f"secretsight watch: listening on {server.url} (/ingest, /metrics, /healthz)",
              file=sys.stderr, flush=True)

    def stop(signum: int, frame: object) -> None:
        watcher.stop_requested = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        status = watcher.run()
        if opts.exit_at_eof:
            left = sum(o.drain(config.limits.spool.drain_seconds) for o in https)
            if left:
                where = ", ".join(f"{o.url} ({o.pending()}; {o.last_error})" for o in https
                                  if o.pending())
                print(f"secretsight watch: {left} finding(s) undelivered to {where}; kept in "
                      f"the spool {spool.path if spool else ''} for the next run",
                      file=sys.stderr)
                status = status or UNDELIVERED
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        watcher.close()
        store.close()
        if spool is not None:
            spool.close()
    if os.environ.get("SECRETSIGHT_WATCH_STATS"):
        print(f"secretsight watch: {detectors.events} events, rejected "
              f"{dict(detectors.rejected)}", file=sys.stderr)
    return status
