"""Databases for tests: created empty or as copies of a template, and dropped."""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from tests.harness.server import Server

# Names of the databases tests get (tests/test_harness.py counts them).
TEST_DB_PREFIX = "auditsql_t"


def unique_name(prefix: str) -> str:
    """A fresh identifier-safe name (cluster-wide objects must not clash)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def create_database(conn: psycopg.Connection[Any], name: str, version_num: int,
                    template: str = "template0") -> None:
    """CREATE DATABASE *name* as a copy of *template* (default: empty).

    On PostgreSQL 15+ the copy is made file by file (STRATEGY FILE_COPY):
    for a small database that is faster than writing it through the WAL,
    the default there. No session may be connected to *template*.
    """
    query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
        sql.Identifier(name), sql.Identifier(template))
    if version_num >= 150000:
        query += sql.SQL(" STRATEGY FILE_COPY")
    conn.execute(query)


def disconnect_all(conn: psycopg.Connection[Any], dbname: str, timeout: float = 2.0) -> None:
    """Terminate sessions on *dbname* and wait until they are gone.

    DROP DATABASE ... WITH (FORCE) would wait for them in 100 ms steps.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        ).fetchone()
        if row is None or row[0] == 0:
            return
        time.sleep(0.005)


def drop_database(conn: psycopg.Connection[Any], name: str, version_num: int) -> None:
    """DROP DATABASE *name* if it exists, disconnecting its sessions first."""
    disconnect_all(conn, name)
    query = sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name))
    if version_num >= 130000:
        query += sql.SQL(" WITH (FORCE)")
    conn.execute(query)


@contextmanager
def scratch_database(pg: Server, prefix: str = TEST_DB_PREFIX,
                     template: str = "template0") -> Iterator[str]:
    """Superuser DSN of a new database (a copy of *template*), dropped after.

    A failure to drop it is a warning: the test's own outcome stands.
    """
    name = unique_name(prefix)
    create_database(pg.admin(), name, pg.version_num, template)
    try:
        yield pg.dsn(name)
    finally:
        try:
            drop_database(pg.admin(), name, pg.version_num)
        except psycopg.Error as exc:
            warnings.warn(f"could not drop test database {name}: {exc}", stacklevel=1)
