"""`auditsql uninstall`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from auditsql import errors
from auditsql.audit import Audit
from auditsql.cli.options import Dsn, Schema
from auditsql.cli.output import err, reported


def uninstall(
    dsn: Dsn,
    schema: Schema = "audit",
    drop_data: Annotated[
        bool,
        typer.Option("--drop-data",
                     help="Drop the log too. Asks for the schema's name on a terminal; "
                     "elsewhere give it with --confirm."),
    ] = False,
    confirm: Annotated[
        str | None,
        typer.Option("--confirm", metavar="SCHEMA",
                     help="The schema's name, confirming --drop-data without a prompt.",
                     show_default=False),
    ] = None,
) -> None:
    """Take auditsql out of a database, keeping the log unless --drop-data.

    Stops auditing every table (their triggers and capture functions go),
    drops the event triggers, auditsql's functions and views, and the roles
    install created (those another database still uses stay), and removes
    the pg_cron job. The log stays, as plain tables owned by the connected
    role, ending with an `uninstalled` event; it is no longer guarded. One
    transaction. Run it as a superuser (or, without event triggers, as the
    role that installed).
    """
    with reported():
        if confirm is not None and not drop_data:
            raise errors.InvalidValue("--confirm goes with --drop-data")
        if drop_data:
            given = confirm
            if given is None:
                if not sys.stdin.isatty():
                    raise errors.InvalidValue(
                        f"--drop-data drops every event: confirm with --confirm {schema}")
                given = typer.prompt(f"This drops the audit log. Type the schema's name ({schema})")
            if given != schema:
                raise errors.InvalidValue(
                    f"confirmation {given!r} is not the schema's name {schema!r}; nothing done")
        with Audit(dsn, schema=schema) as audit:
            done, job = audit.uninstall(drop_data=drop_data)
    if job is not None:
        err.print(f"removed pg_cron job {job.jobid} {job.name!r}", markup=False)
    for table in done.tables:
        err.print(f"no longer audited: {table}", markup=False)
    for role in done.dropped_roles:
        err.print(f"dropped role {role}", markup=False)
    for warning in done.warnings:
        err.print(f"warning: {warning}", markup=False)
    kept = "its log dropped" if done.data_dropped else (
        f"its log kept in schema {schema}, no longer guarded")
    err.print(f"auditsql uninstalled from schema {schema}; {kept}", markup=False)
