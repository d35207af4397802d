"""Fixtures for the upgrade tests: an installation of auditsql 0.1.0, made
with its own install script as it was released, with audited tables and
events in it; and a fresh installation of this version set up the same way,
to compare with once the first is upgraded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from tests.harness.databases import unique_name
from tests.harness.server import Server
from psycopg import sql

from auditsql.installer import install
from auditsql.render import Settings

FROZEN = Path(__file__).resolve().parent / "frozen"

# The application's tables: a row-captured table with column policies, a
# statement-captured one, a partitioned one, and one that TRUNCATE empties.
APP_TABLES = """
CREATE TABLE public.orders (id int PRIMARY KEY, status text, secret text, role text);
CREATE TABLE public.bulk (id int PRIMARY KEY, v text);
CREATE TABLE public.parted (id int, day date, v text, PRIMARY KEY (id, day))
    PARTITION BY RANGE (day);
CREATE TABLE public.parted_2026 PARTITION OF public.parted
    FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE public.scratch (id int PRIMARY KEY, v text);
"""

# Attaching them, with the same arguments under 0.1.0 and this version.
ATTACH = """
SELECT audit.attach('public.orders', p_redact => ARRAY['secret'],
                    p_on_change => '{"role": "role_changed"}');
SELECT audit.attach('public.bulk', p_capture => 'statement');
SELECT audit.attach('public.parted');
SELECT audit.attach('public.scratch');
"""

# Row and statement capture, a policy at work, TRUNCATE.
WRITES = """
INSERT INTO public.orders VALUES (1, 'new', 's1', 'user'), (2, 'new', 's2', 'user');
UPDATE public.orders SET role = 'admin' WHERE id = 1;
DELETE FROM public.orders WHERE id = 2;
INSERT INTO public.bulk SELECT g, 'x' FROM generate_series(1, 20) AS g;
UPDATE public.bulk SET v = 'y' WHERE id <= 5;
DELETE FROM public.bulk WHERE id > 15;
INSERT INTO public.parted VALUES (1, '2026-03-01', 'a'), (2, '2026-04-01', 'b');
INSERT INTO public.scratch VALUES (1, 'a'), (2, 'b');
TRUNCATE public.scratch;
SELECT audit.log_event('login', 'user', '42', '{"method": "password"}');
"""

# A retention policy and a legal hold (the entity has events by then).
POLICIES = """
SELECT audit.set_retention('financial');
SELECT audit.place_hold('public.orders', '1', 'litigation');
"""


def frozen_script(version: str, server_version_num: int) -> str:
    """The install script of ``version`` as it was released, rendered by its
    own renderer for the default settings and a superuser: one for
    PostgreSQL 14 and 15, one for 16 and later (inet_or_null differs)."""
    major = 16 if server_version_num >= 160000 else 14
    return (FROZEN / version / f"install-{major}.sql").read_text(encoding="utf-8")


def set_up(dsn: str) -> None:
    """The application's tables, attached, written to, with policies."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for step in (APP_TABLES, ATTACH, WRITES, POLICIES):
            conn.execute(step)


@pytest.fixture
def installed_0_1_0(db: str, pg: Server) -> str:
    """A database where auditsql 0.1.0 is installed and in use."""
    with psycopg.connect(db) as conn:
        conn.execute(frozen_script("0.1.0", pg.version_num).encode())
    set_up(db)
    return db


@pytest.fixture
def fresh(pg: Server) -> Iterator[str]:
    """Another database, where this version is installed and set up the
    same way."""
    name = unique_name("auditsql_t")
    pg.admin().execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
        sql.Identifier(name)))
    dsn = pg.dsn(name)
    try:
        with psycopg.connect(dsn) as conn:
            install(conn, Settings())
        set_up(dsn)
        yield dsn
    finally:
        pg.admin().execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
