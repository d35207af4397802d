"""`auditsql install` and `auditsql upgrade`."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Annotated

import typer

from auditsql import installer
from auditsql.audit import Audit, Roles
from auditsql.cli import options
from auditsql.cli.options import Dsn, Json, Schema, NoRequireActor, Strict
from auditsql.cli.output import err, reported
from auditsql.render import NEWEST_MAJOR, OLDEST_MAJOR, server_version_num

# install's --dsn: needed, except to print the script (--dry-run).
DsnUnlessDryRun = Annotated[
    str | None,
    typer.Option(
        "--dsn",
        envvar="AUDITSQL_DSN",
        help="libpq connection string or URI of the target database. With --dry-run and "
             "no DSN, the script is rendered without a server (see --server-version).",
        show_envvar=True,
        show_default=False,
    ),
]


def _supported_major(value: int | None) -> int | None:
    """--server-version: a supported major (checked here rather than shown
    as a range, which would crowd the help at 80 columns)."""
    if value is not None and not OLDEST_MAJOR <= value <= NEWEST_MAJOR:
        raise typer.BadParameter(f"{value} is not a supported major: use {OLDEST_MAJOR} to "
                                 f"{NEWEST_MAJOR}")
    return value


def install(
    dsn: DsnUnlessDryRun = None,
    schema: Schema = "audit",
    owner_role: Annotated[
        str, typer.Option("--owner-role", help="NOLOGIN role that owns every audit object.")
    ] = "auditsql_owner",
    reader_role: Annotated[
        str, typer.Option("--reader-role", help="Role allowed to read the audit log.")
    ] = "auditsql_reader",
    admin_role: Annotated[
        str,
        typer.Option(
            "--admin-role",
            help="Role whose members may change, disable or drop audit triggers and objects.",
        ),
    ] = "auditsql_admin",
    operator_role: Annotated[
        str,
        typer.Option(
            "--operator-role",
            help="Role whose members may attach and detach the tables they own; "
            "grant it to the roles that run migrations.",
        ),
    ] = "auditsql_operator",
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
            "--admin-actor-roles",
            help="Comma-separated actor roles (values of auditsql.actor_role) whose events "
            "are admin actions, always stored with whole before and after rows. "
            "Omitted: keep (first install: admin).",
            show_default=False,
        ),
    ] = None,
    require_actor: Annotated[
        bool | None,
        typer.Option("--require-actor",
                     help="Refuse every audited write that has no actor in context; "
                     "--no-require-actor lifts it (also spelled --strict/--no-strict). "
                     "Omitted: keep (first install: off).",
                     show_default=False),
    ] = None,
    no_require_actor: NoRequireActor = False,
    strict: Strict = None,
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
            "--dry-run", help="Print the SQL (one transaction, for psql) instead of running it. "
            "With a DSN, the script is the one for that server and role; without one, it is "
            "rendered for --server-version and, unless --no-event-triggers, a superuser."
        ),
    ] = False,
    server_version: Annotated[
        int | None,
        typer.Option(
            "--server-version",
            metavar="MAJOR",
            callback=_supported_major,
            help=f"With --dry-run and no DSN: the PostgreSQL major version "
                 f"({OLDEST_MAJOR}-{NEWEST_MAJOR}) to render the script for. Default "
                 f"{OLDEST_MAJOR}, whose script runs on every supported version; on a newer "
                 "server, status and verify report the functions written differently for it "
                 "as outdated until `auditsql upgrade`.",
            show_default=False,
        ),
    ] = None,
    no_event_triggers: Annotated[
        bool,
        typer.Option(
            "--no-event-triggers",
            help="With --dry-run and no DSN: render the script for a role that is not a "
                 "superuser, without the event triggers. By default the script creates "
                 "them, and only a superuser may run it.",
        ),
    ] = False,
) -> None:
    """Install auditsql into a database, or bring an install up to date.

    Safe to run again (an existing retention policy stays unless --retention
    is given). Runs in one transaction: on any error nothing is left behind.
    Run as a superuser, it also creates the event triggers that refuse DDL
    weakening auditing. --dry-run needs no database unless a DSN is given.
    """
    required = options.require_actor(require_actor, no_require_actor, strict)
    offline = dry_run and dsn is None
    for given, option in ((server_version is not None, "--server-version"),
                          (no_event_triggers, "--no-event-triggers")):
        if given and not offline:
            raise typer.BadParameter(
                "only with --dry-run and no DSN; with a DSN the script is rendered for "
                "that server and role", param_hint=f"'{option}'")
    if dsn is None and not dry_run:
        raise typer.BadParameter(
            "missing: give --dsn or set AUDITSQL_DSN (only --dry-run works without one)",
            param_hint="'--dsn'")
    roles = Roles(owner_role, reader_role, writer_role, admin_role, operator_role)
    with reported():
        settings = roles.settings(schema)
        settings.validate()
        actor_roles = installer.parse_names(admin_roles, "--admin-actor-roles")
        if dsn is None:
            to = installer.Target(server_version_num(server_version or OLDEST_MAJOR),
                                  event_trigger=not no_event_triggers)
            # Verbatim, and runnable as is: `auditsql install --dry-run | psql`.
            sys.stdout.write(installer.dry_run_script(
                settings, to, retention_policy, admin_roles=actor_roles,
                require_actor=required))
            return
        with Audit(dsn, schema=schema) as audit:
            if dry_run:
                sys.stdout.write(audit.install_script(
                    retention=retention_policy, admin_actor_roles=actor_roles,
                    require_actor=required, roles=roles))
                return
            version = audit.install(retention=retention_policy, admin_actor_roles=actor_roles,
                                    require_actor=required, roles=roles)
    err.print(f"auditsql {version} installed in schema {schema}", markup=False)


def upgrade(dsn: Dsn, schema: Schema = "audit", as_json: Json = False) -> None:
    """Bring an existing installation up to this version.

    Runs this version's install script with the settings the installation
    was made with (it applies the upgrade steps from the installed version
    first), then attaches again every audited table whose capture triggers
    are missing, disabled, changed or made by another version. Reports each
    table attached again and why, each object restored (it was missing, or
    not as this version makes it), and each object still amiss after it
    (changed by hand in a way upgrade does not undo; see verify); "up to
    date" only when nothing needed doing. One transaction, tried again when
    a long transaction holds a table it must lock; refused when auditsql is
    not installed, or is newer than this package.
    """
    with reported(), Audit(dsn, schema=schema) as audit:
        done = audit.upgrade()
    if as_json:
        print(json.dumps({"schema": schema, **asdict(done), "up_to_date": done.up_to_date},
                         indent=2))
        return
    for table in done.reattached:
        err.print(f"attached {table.table} again ({'; '.join(table.reasons)})", markup=False)
    for item in done.restored:
        err.print(f"restored {item.kind} {item.identity} (was {item.state}: {item.reason})",
                  markup=False)
    for item in done.unresolved:
        err.print(f"still {item.state}: {item.kind} {item.identity} ({item.reason}); "
                  "upgrade does not change it, see `auditsql verify`", markup=False)
    if done.from_version != done.to_version:
        err.print(f"auditsql upgraded from {done.from_version} to {done.to_version} "
                  f"in schema {schema}", markup=False)
    elif done.up_to_date:
        err.print(f"auditsql {done.to_version} in schema {schema} is up to date", markup=False)
    else:
        repaired = []
        if done.reattached:
            repaired.append(f"{_count(len(done.reattached), 'table')} attached again")
        if done.restored:
            repaired.append(f"{_count(len(done.restored), 'object')} restored")
        summary = ", ".join(repaired) or "nothing repaired"
        if done.unresolved:
            summary += f"; {_count(len(done.unresolved), 'object')} still amiss"
        err.print(f"auditsql {done.to_version} in schema {schema}: {summary}", markup=False)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
