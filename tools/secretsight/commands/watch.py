"""`secretsight watch`: stream audit events through the stateful detectors."""

from __future__ import annotations

import os
import queue
import signal
import sys

import click

from secretsight.config import load_config
from secretsight.errors import SecretSightError


def _listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}")
    return (host.strip("[]") or "127.0.0.1", int(port))


@click.command()
@click.option("--input", "-i", "inputs", multiple=True, metavar="PATH|-",
              help="NDJSON file to tail (repeatable), or - for stdin. Raw audit lines or "
                   "normalized events.")
@click.option("--listen", metavar="HOST:PORT",
              help="Serve POST /ingest, GET /metrics and /healthz (e.g. 127.0.0.1:8686).")
@click.option("--token", envvar="SECRETSIGHT_WATCH_TOKEN",
              help="Bearer token required on /ingest and /metrics (env SECRETSIGHT_WATCH_TOKEN).")
@click.option("--max-body", default=10 * 1024 * 1024, show_default=True, type=int,
              help="Largest accepted /ingest body in bytes (413 above).")
@click.option("--output", "-o", "outputs", multiple=True, default=["-"], show_default=True,
              metavar="-|PATH|URL", help="Where findings go (repeatable): - (stdout), a file, "
                                         "or an http(s) URL to POST NDJSON to.")
@click.option("--output-token", envvar="SECRETSIGHT_OUTPUT_TOKEN",
              help="Bearer token for HTTP outputs.")
@click.option("--state", default="sqlite:///secretsight-state.db", show_default=True,
              help="State store: sqlite:///path or redis://host:port/db[?prefix=...].")
@click.option("--instance", default="default", show_default=True,
              help="Name of this watcher: its offsets and windows live under it "
                   "(replicas sharing Redis need distinct names).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="SecretSight config YAML.")
@click.option("--detectors", "only", help="Comma-separated detectors to run (default: all).")
@click.option("--commit-every", default=100_000, show_default=True, type=int,
              help="Commit state and offsets after this many events... (a commit costs about "
                   "the number of identities active since the last one, not the events)")
@click.option("--commit-interval", default=1.0, show_default=True, type=float,
              help="...or after this many seconds, whichever comes first.")
@click.option("--exit-at-eof", is_flag=True,
              help="Stop at the end of the inputs, closing every window (one-shot run).")
def command(inputs: tuple[str, ...], listen: str | None, token: str | None, max_body: int,
            outputs: tuple[str, ...], output_token: str | None, state: str, instance: str,
            config_path: str | None, only: str | None, commit_every: int,
            commit_interval: float, exit_at_eof: bool) -> None:
    """Stream audit events through the stateful detectors; findings as NDJSON."""
    from secretsight.detect import Detectors, open_store
    from secretsight.watch.http import IngestServer
    from secretsight.watch.metrics import Metrics
    from secretsight.watch.outputs import open_output
    from secretsight.watch.runner import Watcher

    if not inputs and not listen:
        raise SecretSightError("nothing to watch: give --input PATH, --input - or --listen")
    if listen and exit_at_eof:
        raise SecretSightError("--exit-at-eof cannot be combined with --listen")
    config = load_config(config_path)
    store = open_store(state)
    names = [n.strip() for n in only.split(",")] if only else None
    detectors = Detectors(config, store, only=names, instance=instance)
    metrics = Metrics()
    outs = [open_output(o, output_token) for o in outputs]
    for o in outs:
        if hasattr(o, "on_error"):
            o.on_error = lambda name: metrics.count("output_errors", name)
    work: queue.Queue = queue.Queue(maxsize=1000)
    files = [p for p in inputs if p != "-"]
    watcher = Watcher(detectors, files=files, outputs=outs, metrics=metrics,
                      stdin="-" in inputs, work=work, commit_every=commit_every,
                      commit_interval=commit_interval, exit_at_eof=exit_at_eof)
    server = None
    if listen:
        server = IngestServer(_listen(listen), work=work, metrics=metrics, token=token,
                              max_body=max_body)
        server.start()
        print(f"secretsight watch: listening on {server.url} (/ingest, /metrics, /healthz)",
              file=sys.stderr, flush=True)

    def stop(signum: int, frame: object) -> None:
        watcher.stop_requested = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        watcher.run()
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        watcher.close()
        store.close()
    if os.environ.get("SECRETSIGHT_WATCH_STATS"):
        print(f"secretsight watch: {detectors.events} events, rejected "
              f"{dict(detectors.rejected)}", file=sys.stderr)
