"""Fixtures for the framework and driver integrations: an installed database
with an audited table, and PgBouncer in front of the server.

These tests check Python-side behaviour (what the integrations send, and
when); the SQL they rely on is tested on every version by tests/sql. The
test matrix runs them on the newest PostgreSQL only (scripts/test_matrix.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scripts.test_matrix import NEWEST_ONLY
from tests.harness.pgbouncer import SKIP_REASON, PgBouncer, find_pgbouncer, start_pgbouncer
from tests.harness.server import Server
from tests.sql.sqltools import Conn, attach, connect, run

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In the test matrix, run these on the newest PostgreSQL only."""
    newest = os.environ.get(NEWEST_ONLY)
    if not newest:
        return
    skip = pytest.mark.skip(reason=f"integrations test Python-side behaviour: the test "
                                   f"matrix runs them on PostgreSQL {newest} only")
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(skip)


NOTES = ("CREATE TABLE notes (id bigserial PRIMARY KEY, author text, request text,"
         " body text)")


@pytest.fixture
def notes_db(installed_db: str) -> str:
    """DSN of an installed database with an audited table ``notes`` whose
    ``author`` and ``request`` columns say which actor and request wrote each
    row, so that every event can be checked against its own row."""
    with connect(installed_db) as conn:
        run(conn, NOTES)
        attach(conn, "notes")
    return installed_db


@pytest.fixture
def su(notes_db: str) -> Iterator[Conn]:
    """An autocommit superuser connection to ``notes_db``."""
    with connect(notes_db) as conn:
        yield conn


Bouncer = Callable[[str, int], PgBouncer]


@pytest.fixture
def pgbouncer(pg: Server) -> Iterator[Bouncer]:
    """Factory: ``pgbouncer(pool_mode, pool_size)`` starts a PgBouncer in front
    of the test server; stopped at teardown. Skips if pgbouncer is absent,
    or fails if ``$AUDITSQL_REQUIRE_PGBOUNCER`` is set (as .ci/run sets it)."""
    if find_pgbouncer() is None:
        if os.environ.get("AUDITSQL_REQUIRE_PGBOUNCER"):
            pytest.fail(SKIP_REASON)
        pytest.skip(SKIP_REASON)
    started: list[PgBouncer] = []

    def start(pool_mode: str, pool_size: int) -> PgBouncer:
        bouncer = start_pgbouncer(str(pg.params["host"]), int(pg.params["port"]),
                                  pg.superuser, pool_mode=pool_mode, pool_size=pool_size)
        started.append(bouncer)
        return bouncer

    yield start
    for bouncer in started:
        bouncer.stop()
