"""`secretsight generate SCENARIO --out DIR`: write a labelled scenario's raw audit logs."""

from __future__ import annotations

import click

from secretsight.errors import SecretSightError


@click.command(name="generate")
@click.argument("scenario", required=False)
@click.option("--out", "out", type=click.Path(file_okay=False), help="Directory to write into.")
@click.option("--seed", type=int, default=None, help="Random seed (default: the fixed one).")
@click.option("--list", "list_", is_flag=True, help="List the scenarios and exit.")
def command(scenario: str | None, out: str | None, seed: int | None, list_: bool) -> None:
    """Generate the raw logs (Vault, CloudTrail, Kubernetes native formats) of a scenario."""
    from secretsight.scenarios import DEFAULT_SEED, SCENARIOS, generate

    if list_:
        for name in sorted(SCENARIOS):
            s = SCENARIOS[name]
            click.echo(f"{name:32} {','.join(s.sources):28} {' '.join(s.anomalies) or '(benign)'}")
        return
    if not scenario or not out:
        raise click.UsageError("give a SCENARIO and --out DIR (or --list)")
    try:
        generated = generate(scenario, out, seed=DEFAULT_SEED if seed is None else seed)
    except SecretSightError as exc:
        raise click.UsageError(str(exc)) from exc
    for path in generated.files:
        click.echo(str(path))
    if generated.config:
        click.echo(f"{generated.config}  (use: secretsight scan --config {generated.config})")
