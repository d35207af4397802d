"""`auditsql install`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from auditsql import db, installer
from auditsql.cli.options import Dsn, Schema
from auditsql.cli.output import err, reported
from auditsql.render import Settings, install_sql


def install(
    dsn: Dsn,
    schema: Schema = "audit",
    owner_role: Annotated[
        str, typer.Option("--owner-role", help="NOLOGIN role that owns every audit object.")
    ] = "auditsql_owner",
    reader_role: Annotated[
        str, typer.Option("--reader-role", help="Role allowed to read the audit log.")
    ] = "auditsql_reader",
    writer_role: Annotated[
        str,
        typer.Option(
            "--writer-role",
            help="Role allowed to log application events (audit.log_event); "
            "grant it to application roles.",
        ),
    ] = "auditsql_writer",
    admin_roles: Annotated[
        str | None,
        typer.Option(
            "--admin-roles",
            help="Comma-separated actor roles whose events are admin actions, always "
            "stored with whole before and after rows. Omitted: keep (first install: admin).",
            show_default=False,
        ),
    ] = None,
    strict: Annotated[
        bool | None,
        typer.Option(
            "--strict/--no-strict",
            help="Refuse every audited write that has no actor in context. "
            "Omitted: keep (first install: off).",
            show_default=False,
        ),
    ] = None,
    retention_policy: Annotated[
        str | None,
        typer.Option(
            "--retention",
            help="Retention policy to set: financial (7 years), medical (5 years), "
            "saas (3 years) or an interval such as '2 years'.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print the SQL (one transaction, for psql) instead of running it."
        ),
    ] = False,
) -> None:
    """Install auditsql into a database, or bring an install up to date.

    Safe to run again (an existing retention policy stays unless --retention
    is given). Runs in one transaction: on any error nothing is left behind.
    """
    settings = Settings(schema=schema, owner=owner_role, reader=reader_role, writer=writer_role)
    with reported():
        settings.validate()
        roles = installer.parse_names(admin_roles, "--admin-roles")
        conn = db.connect(dsn)
        with conn:
            if dry_run:
                # Verbatim, and runnable as is: `auditsql install --dry-run | psql`.
                script = install_sql(settings, conn.info.server_version)
                if retention_policy is not None:
                    script += installer.set_retention_sql(conn, settings, retention_policy)
                query = installer.configure_query(settings, roles, strict)
                configure = "" if query is None else query.as_string(conn)
                sys.stdout.write(f"BEGIN;\n{script}{configure}COMMIT;\n")
                return
            version = installer.install(conn, settings, retention_policy,
                                        admin_roles=roles, strict=strict)
    err.print(f"auditsql {version} installed in schema {schema}", markup=False)
