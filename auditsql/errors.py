"""Typed errors raised by the library. Only the CLI turns them into messages
and exit codes."""

from __future__ import annotations

from collections.abc import Sequence


class AuditsqlError(Exception):
    """Base class: an expected failure with a one-line explanation."""


class ConnectionFailed(AuditsqlError):
    """The database could not be reached or refused the login."""


class UnsupportedServer(AuditsqlError):
    """The server is older than the oldest supported PostgreSQL (14)."""


class NotInstalled(AuditsqlError):
    """auditsql is not installed in the target schema."""


class InvalidName(AuditsqlError):
    """A table or column name could not be parsed."""


class NoSuchTable(AuditsqlError):
    """The named table does not exist."""


class PrimaryKeyRequired(AuditsqlError):
    """The table has no primary key and no id columns were given."""


class PermissionDenied(AuditsqlError):
    """The connected role lacks a privilege the operation needs."""


class CannotUpgrade(AuditsqlError):
    """The installed version is one this package cannot upgrade from: newer
    than the package, or one no upgrade step leads from."""


class LockUnavailable(AuditsqlError):
    """A lock the operation needs was not had in time (another session held
    it); the operation changed nothing and can be run again."""


class DatabaseError(AuditsqlError):
    """Any other error reported by the server, with its message."""


class InvalidValue(AuditsqlError):
    """A value given on the command line or to the API is not acceptable
    (an unknown retention policy, a bad schedule, an empty reason)."""


class PolicyRefused(InvalidValue):
    """A retention policy keeping events for less than a year, or for less
    time than the policy in force, was not asked for explicitly.
    ``removes`` is what the next retention run would remove under it (one
    ``auditsql.retention.Removed`` per partition)."""

    def __init__(self, message: str, removes: Sequence[object] = ()) -> None:
        super().__init__(message)
        self.removes = list(removes)


class NoPolicy(AuditsqlError):
    """No retention policy is set, so retention cannot run or be scheduled."""


class NoSuchHold(AuditsqlError):
    """The entity is not under legal hold."""


class HoldsNothing(AuditsqlError):
    """A legal hold would match no event in the log, and was not meant for
    the entity's future events."""


class PgCronUnavailable(AuditsqlError):
    """pg_cron is not loaded on the server, or not created in its database."""


class HeldEntity(AuditsqlError):
    """The entity is under legal hold: its events may not be erased."""


class NoSuchEvent(AuditsqlError):
    """No event has the id given."""


class CannotRevert(AuditsqlError):
    """A change cannot be undone from the log: it holds no value to restore
    (an excluded, redacted or erased column), or the table is not audited."""


class RevertConflict(AuditsqlError):
    """A row to restore was changed again after the changes being undone;
    ``conflicts`` lists them (``auditsql.revert.Conflict``)."""

    def __init__(self, message: str, conflicts: Sequence[object] = ()) -> None:
        super().__init__(message)
        self.conflicts = list(conflicts)


class NotAudited(AuditsqlError):
    """The table exists but is not audited, so the log cannot say what its
    rows were."""


class InvalidEntityId(InvalidValue):
    """An entity id that cannot be one of the table's: not a value of its
    key's type, or a composite key not given as a JSON array of its values."""
