"""auditsql: audit logging for PostgreSQL.

Capture happens inside the database (see ``sql/``); this package installs it,
attaches tables, lets applications name the actor of a transaction, and
records application events such as logins.
"""

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

__version__ = "0.1.0"

__all__ = [
    "Address", "AuditsqlError", "Id", "__version__", "audit_context", "log_event",
    "pop_context", "push_context", "set_actor", "set_context", "set_request",
]
