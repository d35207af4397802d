"""Auth events from Django's auth signals, recorded with ``audit.log_event``
in the transaction of the write that caused them, or one of their own.

- ``user_logged_in``: ``login``; the rest of the request carries the user;
- ``user_logged_out``: ``logout``, by the user leaving; the rest of the
  request carries no actor;
- ``user_login_failed``: ``login_failed``, with the user name tried (never
  the password) in ``details``;
- a user saved after ``set_password``: ``password_changed``, in the
  transaction of that save when it runs in one (Django has no signal of
  its own for it).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model, signals
from django.db import router, transaction
from django.db.models.signals import post_save

from auditsql.integrations.context import bind, current, update
from auditsql.integrations.django.conf import Config, config
from auditsql.integrations.django.middleware import actor_of, request_context

ENTITY_TYPE = "user"


def record(action: str, settings: Config, user: Any = None,
           details: dict[str, Any] | None = None) -> None:
    """``audit.log_event(action, 'user', user.pk, details)`` on the user
    model's database, in an atomic block (a savepoint inside an open one)."""
    model = get_user_model()
    alias = router.db_for_write(model)
    from django.db import connections
    connection = connections[alias]
    query = (f"SELECT {connection.ops.quote_name(settings.schema)}.log_event"
             "(%s, %s, %s, %s::jsonb)")
    params = [action, ENTITY_TYPE, None if user is None else str(user.pk),
              None if details is None else json.dumps(details)]
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        cursor.execute(query, params)


def _outside_request(request: Any, settings: Config) -> Any:
    """A context for a signal sent outside the middleware (a test's
    ``force_login``, a management command): the request's, if any."""
    if current() is not None or request is None or not hasattr(request, "META"):
        return bind(current())
    return bind(request_context(request, settings))


def logged_in(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    settings = config()
    if not settings.auth_events:
        return
    with _outside_request(request, settings):
        update(**actor_of(user, settings))
        record("login", settings, user)
    if current() is not None:
        update(**actor_of(user, settings))


def logged_out(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    settings = config()
    if not settings.auth_events:
        return
    with _outside_request(request, settings):
        record("logout", settings, user)
    if current() is not None:
        update(actor_id=None, email=None, role=None)


def login_failed(sender: Any, credentials: dict[str, Any] | None = None, request: Any = None,
                 **kwargs: Any) -> None:
    settings = config()
    if not settings.auth_events:
        return
    field = get_user_model().USERNAME_FIELD
    tried = (credentials or {}).get(field)
    with _outside_request(request, settings):
        record("login_failed", settings, None, {field: None if tried is None else str(tried)})


def password_saved(sender: Any, instance: Any = None, created: bool = False,
                   **kwargs: Any) -> None:
    # set_password keeps the new raw password in _password until save()
    # has run the password validators' hooks, after this signal.
    if created or getattr(instance, "_password", None) is None:
        return
    settings = config()
    if settings.auth_events:
        record("password_changed", settings, instance)


def connect() -> None:
    """Connect the receivers (``AppConfig.ready``)."""
    signals.user_logged_in.connect(logged_in, dispatch_uid="auditsql.login")
    signals.user_logged_out.connect(logged_out, dispatch_uid="auditsql.logout")
    signals.user_login_failed.connect(login_failed, dispatch_uid="auditsql.login_failed")
    post_save.connect(password_saved, sender=get_user_model(),
                      dispatch_uid="auditsql.password_changed")
