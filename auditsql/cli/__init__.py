"""The auditsql command line: one module per command group."""

from __future__ import annotations

from typing import Annotated

import typer

from auditsql import __version__
from auditsql.cli import retention
from auditsql.cli.erase import erase
from auditsql.cli.export import export
from auditsql.cli.log import diff, history, log, show
from auditsql.cli.revert import revert
from auditsql.cli.snapshot import snapshot
from auditsql.cli.install import install, upgrade
from auditsql.cli.integrity import digest, seal
from auditsql.cli.status import status
from auditsql.cli.tables import attach, detach
from auditsql.cli.uninstall import uninstall
from auditsql.cli.verify import verify

app = typer.Typer(
    name="auditsql",
    help="Audit logging for PostgreSQL: install, attach tables, inspect, verify, keep for as long as required.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        print(f"auditsql {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Audit logging for PostgreSQL: install, attach tables, inspect, verify, keep for as long as required."""


app.command()(install)
app.command()(upgrade)
app.command()(attach)
app.command()(detach)
app.command()(snapshot)
app.command()(status)
app.command()(verify)
app.command()(log)
app.command()(show)
app.command()(history)
app.command()(diff)
app.command()(export)
app.command()(revert)
app.command()(seal)
app.command()(digest)
app.command()(erase)
app.command()(uninstall)
app.add_typer(retention.app)


def main() -> None:
    """Console-script entry point."""
    app()
