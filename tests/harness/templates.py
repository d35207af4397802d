"""Databases with auditsql installed, without running the install script
for each test.

auditsql is installed once per server and per recipe (install settings,
then optional SQL) into a template database; each test gets a copy of it
(CREATE DATABASE ... TEMPLATE, file by file on PostgreSQL 15+). A copy is
what the install would have made in a new database, because everything
install makes lives in the database:

* its schemas, tables, functions, views, grants, default privileges and
  the fingerprints in their comments are catalog rows of that database;
* so are the event triggers and the guard schema of their function;
* object ownership and grants point at roles, which belong to the cluster
  and so are the same roles in every copy.

What a copy does not share with a fresh install: ``installation.installed_at``
is the time the template was made (minutes before the test at most; a new
template is made when the UTC month changes, so that the partitions install
creates are the current ones). Install writes no event.

Roles: an install records in ``installation.settings -> 'created_roles'`` the
roles it created. The template is installed on a server where the recipe's
roles exist already (made, if missing, by an install into a scratch
database), so that every copy records what an install records when
auditsql's roles exist: that it created none. Before, this held for every
test but the first to install in a session.

Nothing connects to a template after it is made (ALLOW_CONNECTIONS false),
both because a copy cannot be made while a session is connected to it, and
so that nothing changes it. Templates are dropped when the session ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from auditsql import installer
from auditsql.render import Settings
from tests.harness.databases import (
    create_database,
    drop_database,
    scratch_database,
    unique_name,
)
from tests.harness.server import Server

TEMPLATE_PREFIX = "auditsql_tpl"


@dataclass(frozen=True)
class Recipe:
    """What an installed database holds: auditsql installed by the
    superuser with ``settings``, then the SQL ``then`` (if any) run by the
    superuser in autocommit mode."""

    settings: Settings = field(default_factory=Settings)
    then: str = ""


DEFAULT = Recipe()


def roles_of(settings: Settings) -> list[str]:
    """The roles an install with *settings* uses (and creates when missing)."""
    return [settings.owner, settings.reader, settings.writer, settings.operator, settings.admin]


class Templates:
    """The installed templates of one server, made when first asked for."""

    def __init__(self, pg: Server) -> None:
        self.pg = pg
        self._made: dict[tuple[Recipe, str], str] = {}

    def template(self, recipe: Recipe = DEFAULT) -> str:
        """Name of the template database for *recipe*, made if needed."""
        key = (recipe, time.strftime("%Y-%m", time.gmtime()))
        name = self._made.get(key)
        if name is None:
            name = self._make(recipe)
            self._made[key] = name
        return name

    @contextmanager
    def installed_database(self, recipe: Recipe = DEFAULT) -> Iterator[str]:
        """Superuser DSN of a new copy of *recipe*'s template, dropped after."""
        with scratch_database(self.pg, template=self.template(recipe)) as dsn:
            yield dsn

    def drop(self) -> None:
        """Drop every template made."""
        while self._made:
            _, name = self._made.popitem()
            drop_database(self.pg.admin(), name, self.pg.version_num)

    def _make(self, recipe: Recipe) -> str:
        self._ensure_roles(recipe.settings)
        admin = self.pg.admin()
        name = unique_name(TEMPLATE_PREFIX)
        create_database(admin, name, self.pg.version_num)
        try:
            with psycopg.connect(self.pg.dsn(name), autocommit=True) as conn:
                installer.install(conn, recipe.settings)
                if recipe.then:
                    conn.execute(recipe.then)
            admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false")
                          .format(sql.Identifier(name)))
        except BaseException:
            drop_database(admin, name, self.pg.version_num)
            raise
        return name

    def _ensure_roles(self, settings: Settings) -> None:
        """Create the roles an install with *settings* uses, as install
        creates them, unless they all exist."""
        row = self.pg.admin().execute(
            "SELECT count(*) FROM unnest(%s::text[]) AS r(name)"
            " WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r.name)",
            (roles_of(settings),),
        ).fetchone()
        if row is not None and row[0] == 0:
            return
        with scratch_database(self.pg, prefix=TEMPLATE_PREFIX) as dsn:
            with psycopg.connect(dsn, autocommit=True) as conn:
                installer.install(conn, settings)
