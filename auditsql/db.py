"""Connections: open one, check the server, and translate server errors
into the library's typed errors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from auditsql import errors
from auditsql.render import OLDEST_MAJOR

MIN_SERVER_VERSION = OLDEST_MAJOR * 10000


def connect(dsn: str) -> psycopg.Connection:
    """Open a connection, or raise ConnectionFailed with the server's reason."""
    try:
        conn = psycopg.connect(dsn, autocommit=False, connect_timeout=10)
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split()) or "connection refused"
        raise errors.ConnectionFailed(f"cannot connect to the database: {reason}") from exc
    except psycopg.ProgrammingError as exc:
        reason = " ".join(str(exc).split())
        raise errors.ConnectionFailed(f"invalid connection string: {reason}") from exc
    try:
        check_server_version(
            conn.info.server_version,
            conn.info.parameter_status("server_version") or str(conn.info.server_version),
        )
    except errors.UnsupportedServer:
        conn.close()
        raise
    return conn


def check_server_version(num: int, text: str) -> None:
    """Raise UnsupportedServer for a server older than PostgreSQL 14."""
    if num < MIN_SERVER_VERSION:
        raise errors.UnsupportedServer(
            f"auditsql needs PostgreSQL 14 or newer; this server is {text}"
        )


# Server errors a caller reads as one of its own, before the general
# mapping of translate(): a SQLSTATE means something particular coming
# from one of auditsql's functions (no_data_found from place_hold: a hold
# that would hold nothing).
Errors = Mapping[type[psycopg.Error], type[errors.AuditsqlError]]


@contextmanager
def transaction(conn: psycopg.Connection, *, read_only: bool = False,
                errors_as: Errors | None = None) -> Iterator[psycopg.Cursor]:
    """One transaction: everything in the block commits together or not at
    all. Intervals print as PostgreSQL writes them ('7 years'), whatever the
    session's IntervalStyle. ``read_only``: one snapshot, and the server
    refuses any write (previews, verify). Server errors raised inside become typed
    errors (``errors_as`` first)."""
    # SET TRANSACTION only takes at the start of a transaction: inside the
    # caller's own (a savepoint) reads go on in the caller's snapshot.
    fresh = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    try:
        with conn.transaction(), conn.cursor() as cur:
            if read_only and fresh:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cur.execute("SET LOCAL IntervalStyle = 'postgres'")
            yield cur
    except psycopg.Error as exc:
        raise translate(exc, errors_as) from exc


def call(schema: str, function: str, *args: sql.Composable) -> sql.Composed:
    """``SELECT * FROM <schema>.<function>(args)``."""
    return sql.SQL("SELECT * FROM {}.{}({})").format(
        sql.Identifier(schema), sql.Identifier(function), sql.SQL(", ").join(args))


def translate(exc: psycopg.Error, errors_as: Errors | None = None) -> errors.AuditsqlError:
    """Map a server error to a typed error carrying its one-line message."""
    diag = getattr(exc, "diag", None)
    primary = (diag.message_primary if diag else None) or str(exc).splitlines()[0]
    hint = diag.message_hint if diag else None
    message = primary.removeprefix("auditsql: ")
    if hint:
        message = f"{message} ({hint})"
    message = " ".join(message.split())
    for server, ours in (errors_as or {}).items():
        if isinstance(exc, server):
            return ours(message)
    if isinstance(exc, pgerrors.InsufficientPrivilege):
        return errors.PermissionDenied(message)
    if isinstance(exc, pgerrors.UndefinedTable):
        return errors.NoSuchTable(message)
    if isinstance(exc, pgerrors.InvalidTableDefinition):
        return errors.PrimaryKeyRequired(message)
    if isinstance(exc, (pgerrors.InvalidName, pgerrors.InvalidTextRepresentation)):
        return errors.InvalidName(message)
    if isinstance(exc, pgerrors.InvalidParameterValue):
        # auditsql's functions raise it for an argument they refuse (an
        # action, a policy, id columns naming a column twice).
        return errors.InvalidValue(message)
    if isinstance(exc, pgerrors.FeatureNotSupported):
        return errors.UnsupportedServer(message)
    if isinstance(exc, pgerrors.ObjectInUse):
        return errors.HeldEntity(message)
    if isinstance(exc, pgerrors.LockNotAvailable):
        # An OperationalError to psycopg, but the server answered: a lock
        # was busy, not the connection.
        return errors.LockUnavailable(message)
    if isinstance(exc, psycopg.OperationalError):
        return errors.ConnectionFailed(message)
    return errors.DatabaseError(message)
