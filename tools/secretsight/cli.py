"""`secretsight` command line. Each sub-command lives in `secretsight.commands.<name>` and is
imported only when it runs, so `secretsight normalize` never pays for pySigma's backends."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import click

from secretsight import __version__
from secretsight.errors import SecretSightError

# name -> (module, help line). A module exposes a click command named `command`.
COMMANDS: dict[str, tuple[str, str]] = {
    "normalize": ("secretsight.commands.normalize", "Normalize audit logs to the SecretSight schema."),
    "compile": ("secretsight.commands.compile", "Compile Sigma rules to Loki, Elastic or Splunk."),
    "scan": ("secretsight.commands.scan", "Run every rule and detector over audit logs."),
    "watch": ("secretsight.commands.watch", "Stream audit events through every rule and the stateful detectors."),
    "release": ("secretsight.commands.release", "Build a versioned content pack."),
    "generate": ("secretsight.commands.generate", "Generate labelled scenario logs."),
}


class UserError(click.ClickException):
    """A SecretSightError on its way out of a command: click prints it and exits 2, the same under
    `main()` and under click's CliRunner (the one place an error becomes an exit status)."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n, (mod, _) in COMMANDS.items() if importlib.util.find_spec(mod))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or importlib.util.find_spec(COMMANDS[name][0]) is None:
            return None
        return importlib.import_module(COMMANDS[name][0]).command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SecretSightError as exc:
            raise UserError(str(exc)) from exc

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, COMMANDS[n][1]) for n in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="secretsight")
def cli() -> None:
    """SecretSight: who is reading your secrets."""


def main() -> None:
    try:
        rv = cli.main(standalone_mode=False)
        sys.exit(rv if isinstance(rv, int) else 0)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
