"""`auditsql uninstall`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from auditsql import db, errors, installer, retention
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
        with db.connect(dsn) as conn:
            job = _unschedule(dsn, schema)
            done = installer.uninstall(conn, schema, drop_data=drop_data)
    if job:
        err.print(f"removed pg_cron job {job}", markup=False)
    for table in done.tables:
        err.print(f"no longer audited: {table}", markup=False)
    for role in done.dropped_roles:
        err.print(f"dropped role {role}", markup=False)
    for warning in done.warnings:
        err.print(f"warning: {warning}", markup=False)
    kept = "its log dropped" if done.data_dropped else (
        f"its log kept in schema {schema}, no longer guarded")
    err.print(f"auditsql uninstalled from schema {schema}; {kept}", markup=False)


def _unschedule(dsn: str, schema: str) -> str | None:
    """Remove the pg_cron job, if there is one and pg_cron can be reached."""
    try:
        job = retention.unschedule(dsn, schema)
    except errors.AuditsqlError:
        return None
    return None if job is None else f"{job.jobid} {job.name!r}"
