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


# One name for a write refused without an actor: --require-actor, turned
# off by --no-require-actor; --strict/--no-strict, its earlier name, still
# works. The negatives are left out of the help table, whose two name
# columns they would widen until other options no longer fit 80 columns.
NoRequireActor = Annotated[bool, typer.Option(
    "--no-require-actor", hidden=True, show_default=False,
    help="Accept writes without an actor again.")]
Strict = Annotated[bool | None, typer.Option(
    "--strict/--no-strict", hidden=True, show_default=False,
    help="The earlier name of --require-actor / --no-require-actor.")]


def require_actor(on: bool | None, off: bool, strict: bool | None) -> bool | None:
    """--require-actor, --no-require-actor or --strict/--no-strict as one
    value (None: none given); contradicting ones are a usage error."""
    given = {v for v in (True if on else None, False if off else None, strict) if v is not None}
    if len(given) > 1:
        raise typer.BadParameter("given both on and off", param_hint="'--require-actor'")
    return given.pop() if given else None
