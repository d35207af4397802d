"""Fixtures for every test: the PostgreSQL server, new empty databases and
throwaway roles. The harness behind them is the package ``tests.harness``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.databases import scratch_database
from tests.harness.roles import TEST_ROLE_PREFIX, MakeRole, create_login_role, drop_role
from tests.harness.server import SKIP_REASON, Server, describe_server, open_server


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


@pytest.fixture
def db(pg: Server) -> Iterator[str]:
    """DSN (superuser) of a brand-new empty database, dropped afterwards."""
    with scratch_database(pg) as dsn:
        yield dsn


@pytest.fixture
def make_role(request: pytest.FixtureRequest, pg: Server) -> Iterator[MakeRole]:
    """Factory: ``make_role("CREATEDB", prefix="app") -> name`` of a new LOGIN role.

    Roles get ``ROLE_PASSWORD`` and are dropped (with what they own) at teardown.
    """
    if "db" in request.fixturenames:
        request.getfixturevalue("db")  # drop roles before the test database
    created: list[str] = []

    def make(*attributes: str, prefix: str = TEST_ROLE_PREFIX) -> str:
        name = create_login_role(pg, *attributes, prefix=prefix)
        created.append(name)
        return name

    yield make
    for name in reversed(created):
        drop_role(pg, name)
