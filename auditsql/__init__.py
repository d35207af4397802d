"""auditsql: audit logging for PostgreSQL.

Capture happens inside the database (see ``sql/``); this package installs it,
attaches tables, lets applications name the actor of a transaction, and
records application events such as logins.
"""

from importlib.metadata import version as _version

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

# The version is written once, in pyproject.toml; the installed package's
# metadata carries it here.
__version__ = _version("auditsql")

__all__ = [
    "Address", "AuditsqlError", "Id", "__version__", "audit_context", "log_event",
    "pop_context", "push_context", "set_actor", "set_context", "set_request",
]
