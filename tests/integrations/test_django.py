"""A small Django project (tests/integrations/djangoapp) with the middleware,
the database hook and the auth signals, driven by Django's test client in
threads, one user each, with ATOMIC_REQUESTS on and off, directly and
through PgBouncer in transaction pooling."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("django")

import django  # noqa: E402
from django.conf import settings  # noqa: E402
from psycopg.conninfo import conninfo_to_dict  # noqa: E402

from tests.harness.pgbouncer import PgBouncer  # noqa: E402
from tests.harness.templates import Templates  # noqa: E402
from tests.integrations.conftest import NOTES, Bouncer  # noqa: E402
from tests.integrations.tools import misattributed  # noqa: E402
from tests.sql.sqltools import Conn, attach, connect, run, scalar  # noqa: E402

USERS = 5
PASSWORD = "correct horse"


def role_of(user: Any) -> dict[str, Any]:
    """The project's ``AUDITSQL['ACTOR']``: staff users act as ``staff``."""
    return {"actor_id": user.pk, "email": user.email,
            "role": "staff" if user.is_staff else "member"}


def database_settings(dsn: str) -> dict[str, Any]:
    params = conninfo_to_dict(dsn)
    return {"ENGINE": "django.db.backends.postgresql", "NAME": params["dbname"],
            "USER": params["user"], "HOST": params["host"], "PORT": str(params["port"]),
            "CONN_MAX_AGE": None, "ATOMIC_REQUESTS": False}


@pytest.fixture(scope="module")
def django_db(templates: Templates) -> Iterator[str]:
    """A database with auditsql, the audited ``notes`` table, Django's auth
    tables and a few users; Django configured to use it."""
    with templates.installed_database() as dsn:
        with connect(dsn) as conn:
            run(conn, NOTES)
            attach(conn, "notes")
        if not settings.configured:
            settings.configure(
                DEBUG=False,
                SECRET_KEY="auditsql-tests",
                ALLOWED_HOSTS=["testserver"],
                ROOT_URLCONF="tests.integrations.djangoapp.urls",
                INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth",
                                "django.contrib.sessions", "auditsql.integrations.django",
                                "tests.integrations.djangoapp"],
                MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                            "django.contrib.auth.middleware.AuthenticationMiddleware",
                            "auditsql.integrations.django.middleware.AuditContextMiddleware"],
                DATABASES={"default": database_settings(dsn)},
                PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
                USE_TZ=True,
                AUDITSQL={"TRUSTED_PROXY_HEADER": "X-Forwarded-For",
                          "ACTOR": "tests.integrations.test_django.role_of"},
            )
            django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.db import connections

        connections["default"].settings_dict.update(database_settings(dsn))
        connections.close_all()
        call_command("migrate", verbosity=0)
        model = get_user_model()
        for i in range(USERS):
            model.objects.create_user(f"user{i}", f"user{i}@example.com", PASSWORD,
                                      is_staff=i == 0)
        connections.close_all()
        yield dsn
        connections.close_all()


def use(dsn: str, bouncer: PgBouncer | None, atomic_requests: bool) -> None:
    from django.db import connections

    db = database_settings(dsn)
    if bouncer is not None:
        db.update(HOST=str(bouncer.dsn_params()["host"]), PORT=str(bouncer.port))
    db["ATOMIC_REQUESTS"] = atomic_requests
    connections.close_all()
    connections["default"].settings_dict.update(db)


def session(prefix: str, number: int, errors: list[BaseException]) -> None:
    """One user's visit: a failed login, a login, writes (one nested, one
    failing), a password change, a logout, and a write after it."""
    from django.db import connections
    from django.test import Client

    client = Client(raise_request_exception=False)

    def post(path: str, step: str, body: dict[str, Any]) -> int:
        response = client.post(path, json.dumps(body), content_type="application/json",
                               headers={"X-Request-ID": f"{prefix}-{number}-{step}",
                                        "X-Forwarded-For": f"203.0.113.{number + 1}",
                                        "User-Agent": "tests"})
        return int(response.status_code)

    try:
        user = f"user{number}"
        assert post("/login/", "bad", {"username": user, "password": "wrong"}) == 401
        assert post("/login/", "login", {"username": user, "password": PASSWORD}) == 204
        assert post("/notes/", "plain", {}) == 200
        assert post("/notes/", "nested", {"nested": True}) == 200
        assert post("/notes/", "fail", {"fail": True}) == 500
        assert post("/password/", "password", {"password": PASSWORD}) == 204
        assert post("/logout/", "logout", {}) == 204
        assert post("/notes/", "anonymous", {}) == 200
    except BaseException as exc:
        errors.append(exc)
    finally:
        connections.close_all()


@pytest.mark.parametrize("atomic_requests", [True, False], ids=["atomic", "autocommit"])
@pytest.mark.parametrize("mode", ["direct", "transaction"])
def test_every_write_carries_its_requests_user(
        mode: str, atomic_requests: bool, django_db: str, pgbouncer: Bouncer) -> None:
    from django.contrib.auth import get_user_model

    bouncer = None if mode == "direct" else pgbouncer("transaction", 2)
    use(django_db, bouncer, atomic_requests)
    prefix = f"{mode}-{atomic_requests}"
    errors: list[BaseException] = []
    threads = [threading.Thread(target=session, args=(prefix, n, errors))
               for n in range(USERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    pks = {u.username: str(u.pk) for u in get_user_model().objects.all()}
    with connect(django_db) as su:
        check(su, prefix, pks, atomic_requests)


def check(su: Conn, prefix: str, pks: dict[str, str], atomic_requests: bool) -> None:
    like = f"{prefix}-%"
    assert misattributed(su) == []
    # Events go with their writes: as many row events as rows, request by
    # request; the failed request left only what it wrote outside the
    # atomic block, and only without ATOMIC_REQUESTS.
    rows = su.execute(
        "SELECT request, count(*) AS n FROM notes WHERE request LIKE %s GROUP BY 1 ORDER BY 1",
        (like,)).fetchall()
    created = su.execute(
        "SELECT request_id AS request, count(*) AS n FROM audit.events"
        " WHERE request_id LIKE %s AND action = 'created' GROUP BY 1 ORDER BY 1",
        (like,)).fetchall()
    assert rows == created
    for number in range(USERS):
        failed = f"{prefix}-{number}-fail"
        assert scalar(su, "SELECT count(*) FROM notes WHERE request = %s", (failed,)) == (
            0 if atomic_requests else 1)
    auth = su.execute(
        "SELECT request_id, action, actor_id, actor_email, actor_role, entity_id,"
        " host(ip_address) AS ip, after FROM audit.events WHERE category = 'auth'"
        " AND request_id LIKE %s ORDER BY id", (like,)).fetchall()
    by_request = {(e["request_id"], e["action"]): e for e in auth}
    assert len(auth) == 4 * USERS
    for number in range(USERS):
        pk = pks[f"user{number}"]
        role = "staff" if number == 0 else "member"
        email = f"user{number}@example.com"
        ip = f"203.0.113.{number + 1}"
        bad = by_request[(f"{prefix}-{number}-bad", "login_failed")]
        assert (bad["actor_id"], bad["entity_id"], bad["ip"], bad["after"]) == (
            None, None, ip, {"username": f"user{number}"})
        for step, action in (("login", "login"), ("password", "password_changed"),
                             ("logout", "logout")):
            event = by_request[(f"{prefix}-{number}-{step}", action)]
            assert (event["actor_id"], event["actor_email"], event["actor_role"],
                    event["entity_id"], event["ip"]) == (pk, email, role, pk, ip)


def test_request_id_is_generated_and_the_proxy_header_read(django_db: str) -> None:
    """Without the request id header a UUID is made; the client address is
    the trusted proxy's rightmost entry, else the peer's."""
    from django.test import RequestFactory

    from auditsql.integrations.django.conf import config
    from auditsql.integrations.django.middleware import request_context

    factory = RequestFactory()
    bare = request_context(factory.get("/", REMOTE_ADDR="10.0.0.1"), config())
    assert bare.ip_address == "10.0.0.1" and bare.request_id is not None
    assert len(bare.request_id) == 36
    proxied = request_context(factory.get("/", REMOTE_ADDR="10.0.0.1",
                                          headers={"X-Forwarded-For": "1.2.3.4, 203.0.113.5",
                                                   "X-Request-ID": "req-7"}), config())
    assert (proxied.ip_address, proxied.request_id) == ("203.0.113.5", "req-7")
