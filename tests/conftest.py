"""Fixtures for every test: the PostgreSQL server, new databases (empty, or
with auditsql installed) and throwaway roles. The harness behind them is
the package ``tests.harness``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.databases import scratch_database
from tests.harness.roles import TEST_ROLE_PREFIX, MakeRole, create_login_role, drop_role
from tests.harness.server import SKIP_REASON, Server, describe_server, open_server
from tests.harness.templates import Templates


def pytest_report_header(config: pytest.Config) -> str:
    """Show which PostgreSQL server the run uses."""
    return describe_server()


@pytest.fixture(scope="session")
def pg() -> Iterator[Server]:
    """The PostgreSQL server for this test session."""
    server = open_server()
    if server is None:
        pytest.skip(SKIP_REASON)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def templates(pg: Server) -> Iterator[Templates]:
    """The server's template databases with auditsql installed, made when
    first needed and dropped at the end of the session."""
    made = Templates(pg)
    try:
        yield made
    finally:
        made.drop()


@pytest.fixture
def db(pg: Server) -> Iterator[str]:
    """DSN (superuser) of a brand-new empty database, dropped afterwards."""
    with scratch_database(pg) as dsn:
        yield dsn


@pytest.fixture
def installed_db(templates: Templates) -> Iterator[str]:
    """DSN (superuser) of a new database with auditsql installed by the
    superuser with default settings, dropped afterwards: a copy of a
    database installed once per session (see tests/harness/templates.py).
    Tests of install itself install into ``db``."""
    with templates.installed_database() as dsn:
        yield dsn


@pytest.fixture
def make_role(request: pytest.FixtureRequest, pg: Server) -> Iterator[MakeRole]:
    """Factory: ``make_role("CREATEDB", prefix="app") -> name`` of a new LOGIN role.

    Roles get ``ROLE_PASSWORD`` and are dropped (with what they own) at teardown.
    """
    for database in ("db", "installed_db"):
        if database in request.fixturenames:
            request.getfixturevalue(database)  # drop roles before the test database
    created: list[str] = []

    def make(*attributes: str, prefix: str = TEST_ROLE_PREFIX) -> str:
        name = create_login_role(pg, *attributes, prefix=prefix)
        created.append(name)
        return name

    yield make
    for name in reversed(created):
        drop_role(pg, name)
