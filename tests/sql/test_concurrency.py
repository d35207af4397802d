"""Installs running at the same time all succeed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql

from auditsql import __version__
from auditsql.installer import install
from auditsql.render import Settings
from tests.harness.databases import unique_name
from tests.harness.roles import drop_role
from tests.harness.server import Server
from tests.sql.sqltools import connect, scalar

WORKERS = 2


@dataclass(frozen=True)
class Outcome:
    """What one install thread ended with."""

    version: str | None = None
    error: BaseException | None = None


def install_together(dsns: list[str], settings: Settings) -> list[Outcome]:
    """Run one install per DSN, all released at the same moment."""
    barrier = threading.Barrier(len(dsns))
    outcomes: list[Outcome] = [Outcome()] * len(dsns)

    def work(index: int, dsn: str) -> None:
        try:
            with psycopg.connect(dsn, connect_timeout=10) as conn:
                barrier.wait(timeout=30)
                outcomes[index] = Outcome(version=install(conn, settings))
        except BaseException as exc:
            outcomes[index] = Outcome(error=exc)

    threads = [threading.Thread(target=work, args=(i, dsn)) for i, dsn in enumerate(dsns)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "an install did not finish"
    return outcomes


def assert_installed(dsn: str, schema: str) -> None:
    """The log exists in *schema* with one installation row."""
    with connect(dsn) as conn:
        assert scalar(conn, sql.SQL("SELECT count(*) FROM {}.installation").format(
            sql.Identifier(schema))) == 1
        assert scalar(conn, "SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.events",))


def test_concurrent_installs_into_one_database(db: str) -> None:
    outcomes = install_together([db] * WORKERS, Settings())
    assert [o.error for o in outcomes] == [None] * WORKERS
    assert {o.version for o in outcomes} == {__version__}
    assert_installed(db, "audit")


@pytest.fixture
def fresh_roles(pg: Server) -> Iterator[Settings]:
    """Settings naming owner and reader roles that do not exist yet."""
    settings = Settings(owner=unique_name("auditsql_r_own"), reader=unique_name("auditsql_r_rd"))
    yield settings
    for role in (settings.owner, settings.reader):
        drop_role(pg, role)


@pytest.fixture
def second_db(pg: Server, db: str) -> Iterator[str]:
    """Another fresh database on the same server."""
    name = unique_name("auditsql_t")
    pg.admin().execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
        sql.Identifier(name)))
    yield pg.dsn(name)
    pg.admin().execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
        sql.Identifier(name)))


def test_concurrent_first_installs_into_two_databases(
        db: str, second_db: str, fresh_roles: Settings) -> None:
    """Roles are shared by the cluster: two first installs must not race creating them."""
    outcomes = install_together([db, second_db], fresh_roles)
    assert [o.error for o in outcomes] == [None, None]
    for dsn in (db, second_db):
        assert_installed(dsn, "audit")
