"""Fixtures for the SQL tests: connections to an installed database, and an
application role."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from psycopg import sql

from tests.harness.roles import MakeRole
from tests.harness.server import Server
from tests.sql.sqltools import AppRole, Conn, connect, dbname, ident, run


@pytest.fixture
def su(installed_db: str) -> Iterator[Conn]:
    """An autocommit superuser connection to the installed database."""
    with connect(installed_db) as conn:
        yield conn


@pytest.fixture
def app(pg: Server, installed_db: str, make_role: MakeRole, su: Conn) -> AppRole:
    """A plain login role that may create schemas and tables in the database."""
    name = make_role()
    run(
        su,
        sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(ident(name)),
        sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
            ident(dbname(installed_db)), ident(name)),
    )
    return AppRole(name, pg.dsn(dbname(installed_db), user=name))


@pytest.fixture
def app_conn(app: AppRole) -> Iterator[Conn]:
    """An autocommit connection as the application role."""
    with connect(app.dsn) as conn:
        yield conn
