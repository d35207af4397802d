"""auditsql: audit logging for PostgreSQL.

Capture happens inside the database (see ``sql/``). :class:`Audit` installs
it, attaches tables, verifies and runs retention (the CLI is a thin layer
over it); ``set_actor`` and ``audit_context`` name the actor of an
application's transaction, and ``log_event`` records events such as logins.
"""

from importlib.metadata import version as _version

# The version is written once, in pyproject.toml; the installed package's
# metadata carries it here. Set before the imports below: the modules behind
# Audit read it.
__version__ = _version("auditsql")

from auditsql.context import (
    Address,
    Id,
    audit_context,
    log_event,
    pop_context,
    push_context,
    set_actor,
    set_context,
    set_request,
)
from auditsql.errors import AuditsqlError

from auditsql.audit import Audit, Report, RetentionStatus, Roles, Status  # noqa: E402

__all__ = [
    "Address", "Audit", "AuditsqlError", "Id", "Report", "RetentionStatus", "Roles", "Status",
    "__version__", "audit_context", "log_event", "pop_context", "push_context", "set_actor",
    "set_context", "set_request",
]
