"""Options shared by several commands, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

Dsn = Annotated[
    str,
    typer.Option(
        "--dsn",
        envvar="AUDITSQL_DSN",
        help="libpq connection string or URI of the target database.",
        show_envvar=True,
    ),
]

Schema = Annotated[
    str,
    typer.Option(
        "--schema",
        envvar="AUDITSQL_SCHEMA",
        help="Schema auditsql is installed in.",
        show_envvar=True,
    ),
]

Json = Annotated[
    bool,
    typer.Option("--json", help="Print machine-readable JSON on stdout."),
]

Tables = Annotated[
    list[str],
    typer.Argument(
        help="Tables to act on: orders, public.orders or \"Quoted Name\".",
        show_default=False,
    ),
]
