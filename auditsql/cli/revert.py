"""`auditsql revert`: undo changes from the log."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from auditsql import errors, times
from auditsql.audit import Audit
from auditsql.cli import eventview as view
from auditsql.cli.options import Dsn, Schema
from auditsql.cli.output import err, reported
from auditsql.revert import Actor, Conflict, one_line


def revert(
    dsn: Dsn,
    table: Annotated[str | None, typer.Argument(
        metavar="[TABLE]", help="The table of the row to put back (with ID and --to).",
        show_default=False)] = None,
    entity_id: Annotated[str | None, typer.Argument(
        metavar="[ID]", help="The row's id: 42, or [7, \"b\"].", show_default=False)] = None,
    to: Annotated[str | None, typer.Option(
        "--to", metavar="TIME", show_default=False,
        help="Put the row back as it was at this time: 7d, 12h, 30m ago, or an ISO 8601 "
             "time.")] = None,
    request_id: Annotated[str | None, typer.Option(
        "--request-id", show_default=False,
        help="Undo every change made under this request id.")] = None,
    txid: Annotated[int | None, typer.Option(
        "--txid", show_default=False, help="Undo every change of this transaction.")] = None,
    apply: Annotated[bool, typer.Option(
        "--apply", help="Run the statements, in one transaction, instead of printing "
                        "them. Needs --actor.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Overwrite rows changed again since.")] = False,
    actor: Annotated[str | None, typer.Option(
        "--actor", metavar="ID", show_default=False,
        help="The actor the revert is recorded as (audit.set_context).")] = None,
    actor_email: Annotated[str | None, typer.Option(
        "--actor-email", show_default=False, help="That actor's email.")] = None,
    actor_role: Annotated[str | None, typer.Option(
        "--actor-role", show_default=False, help="That actor's role.")] = None,
    tz: view.Tz = None,
    schema: Schema = "audit",
) -> None:
    """Print the SQL that undoes changes recorded in the log, or run it.

    `revert TABLE ID --to TIME` puts one row back as it was; `--request-id`
    and `--txid` undo every change of a request or a transaction. Events
    are undone newest first: a created row is deleted, a deleted row
    inserted again, an update's columns set back (key changes too). A row
    changed again since is a conflict: listed on stderr, exit 1, nothing
    printed or changed, unless --force. Values the log does not hold
    (excluded, redacted or erased columns) are refused.
    """
    with reported():
        if apply and actor is None:
            raise errors.InvalidValue("--apply needs --actor: the revert is recorded as "
                                      "that actor's changes")
        if actor is None and (actor_email or actor_role):
            raise errors.InvalidValue("--actor-email and --actor-role go with --actor")
        zone = times.zone(tz)
        moment = view.when(to, zone)
        who = Actor(actor, actor_email, actor_role) if actor is not None else None
        with Audit(dsn, schema=schema) as audit:
            try:
                if apply:
                    assert who is not None
                    done = audit.revert(table, entity_id, to=moment, request_id=request_id,
                                        txid=txid, actor=who, force=force)
                else:
                    done = audit.revert_sql(table, entity_id, to=moment,
                                            request_id=request_id, txid=txid, actor=who)
                    if done.conflicts and not force:
                        raise _conflicts(done.conflicts)
            except errors.RevertConflict as exc:
                _list(exc.conflicts)
                raise
    if not done.steps:
        err.print("nothing to revert", markup=False)
        return
    if not apply:
        sys.stdout.write(done.script)
        return
    for note in done.notes:
        err.print(f"forced: {note}", markup=False)
    err.print(f"reverted {len(done.steps)} change{'s' if len(done.steps) != 1 else ''} in "
              f"transaction {done.txid}", markup=False)


def _conflicts(found: list[Conflict]) -> errors.RevertConflict:
    from auditsql.revert import conflict_error
    return conflict_error(found)


def _list(found: list[object]) -> None:
    for c in found:
        assert isinstance(c, Conflict)
        err.print(one_line(f"conflict: {c.entity_type} {c.entity_id}: {c.reason}"),
                  markup=False)
