"""Typed errors raised by the library. Only the CLI turns them into messages
and exit codes."""

from __future__ import annotations


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


class InvalidArgument(AuditsqlError):
    """An option value outside what the operation accepts."""


class NoSuchTable(AuditsqlError):
    """The named table does not exist."""


class PrimaryKeyRequired(AuditsqlError):
    """The table has no primary key and no id columns were given."""


class PermissionDenied(AuditsqlError):
    """The connected role lacks a privilege the operation needs."""


class DatabaseError(AuditsqlError):
    """Any other error reported by the server, with its message."""
