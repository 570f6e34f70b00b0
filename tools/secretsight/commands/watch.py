"""`secretsight watch`: stream audit events through every rule and the stateful detectors. The side-car is
assembled in `secretsight.watch.sidecar`; this module only maps options onto it."""

from __future__ import annotations

import click

from secretsight.config import load_config


@click.command()
@click.option("--input", "-i", "inputs", multiple=True, metavar="PATH|-",
              help="NDJSON file to tail (repeatable), or - for stdin. Raw audit lines or "
                   "normalized events.")
@click.option("--listen", metavar="HOST:PORT",
              help="Serve POST /ingest, GET /metrics and /healthz (e.g. 127.0.0.1:8514, the port "
                   "the shipped Vector and Fluent Bit configs post to).")
@click.option("--token", envvar="SECRETSIGHT_WATCH_TOKEN",
              help="Bearer token required on /ingest and /metrics (env SECRETSIGHT_WATCH_TOKEN).")
@click.option("--insecure-no-token", is_flag=True,
              help="Allow --listen on a non-loopback address without --token (only behind a "
                   "proxy that authenticates).")
@click.option("--max-body", default=10 * 1024 * 1024, show_default=True, type=int,
              help="Largest accepted /ingest body in bytes (413 above).")
@click.option("--output", "-o", "outputs", multiple=True, default=["-"], show_default=True,
              metavar="-|PATH|URL", help="Where findings go (repeatable): - (stdout), a file, "
                                         "or an http(s) URL to POST NDJSON to.")
@click.option("--output-token", envvar="SECRETSIGHT_OUTPUT_TOKEN",
              help="Bearer token for HTTP outputs.")
@click.option("--spool", metavar="PATH",
              help="Where findings wait for an HTTP output (default: STATE.spool beside a "
                   "SQLite state, secretsight-spool.db with Redis).")
@click.option("--state", default="sqlite:///secretsight-state.db", show_default=True,
              help="State store: sqlite:///relative/path, sqlite:////absolute/path or "
                   "redis://host:port/db[?prefix=...].")
@click.option("--instance", default="default", show_default=True,
              help="Name of this watcher: its offsets and windows live under it "
                   "(replicas sharing Redis need distinct names).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="SecretSight config YAML.")
@click.option("--detectors", "only", help="Comma-separated detectors to run (default: those scan runs; "
              "the Sigma correlations cover bulk_read and path_diversity).")
@click.option("--rules/--no-rules", default=True, show_default=True,
              help="Evaluate every embedded Sigma rule in the stream (as scan does). --no-rules "
                   "runs the stateful detectors only, all of them by default (bulk_read and "
                   "path_diversity included): about twice the throughput, without the Sigma-only "
                   "classes.")
@click.option("--commit-every", default=100_000, show_default=True, type=int,
              help="Commit state and offsets after this many events... (a commit costs about "
                   "the number of identities active since the last one, not the events)")
@click.option("--commit-interval", default=1.0, show_default=True, type=float,
              help="...or after this many seconds, whichever comes first.")
@click.option("--exit-at-eof", is_flag=True,
              help="Stop at the end of the inputs, closing every window (one-shot run). Exit "
                   "status 3 when findings are left undelivered in the spool.")
def command(inputs: tuple[str, ...], listen: str | None, token: str | None,
            insecure_no_token: bool, max_body: int,
            outputs: tuple[str, ...], output_token: str | None, spool: str | None, state: str,
            instance: str,
            config_path: str | None, only: str | None, rules: bool, commit_every: int,
            commit_interval: float, exit_at_eof: bool) -> int:
    """Stream audit events through every rule and the stateful detectors; incidents as NDJSON."""
    from secretsight.watch.sidecar import SidecarOptions, run

    opts = SidecarOptions(
        inputs=inputs, listen=listen, token=token, insecure_no_token=insecure_no_token,
        max_body=max_body, outputs=outputs,
        output_token=output_token, spool=spool, state=state, instance=instance,
        only=tuple(n.strip() for n in only.split(",")) if only else None, rules=rules,
        commit_every=commit_every, commit_interval=commit_interval, exit_at_eof=exit_at_eof)
    return run(load_config(config_path), opts)
