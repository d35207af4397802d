"""Shared fixtures: a PostgreSQL server, fresh databases and throwaway roles.

Server selection for the ``pg`` fixture, first match wins:

1. ``$AUDITSQL_TEST_DSN``: an existing server (its user must be a superuser);
2. local binaries (see ``pgcluster``): ``$AUDITSQL_PG_VERSION`` (a major),
   else ``$AUDITSQL_PG_BIN``, else the highest version found;
3. a ``postgres:16`` container, if testcontainers and Docker are usable;
4. otherwise tests that need a server are skipped.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
import pgcluster  # noqa: E402

ENV_DSN = "AUDITSQL_TEST_DSN"
ENV_VERSION = "AUDITSQL_PG_VERSION"
DOCKER_IMAGE = "postgres:16"
ROLE_PASSWORD = "auditsql-test"
SKIP_REASON = (
    "no PostgreSQL server available: set AUDITSQL_TEST_DSN or AUDITSQL_PG_BIN, "
    "or run `make pg-binaries`"
)


@dataclass
class Server:
    """A PostgreSQL server the tests may use, with superuser access."""

    params: dict[str, Any]
    superuser: str
    version_num: int = 0
    kind: str = "dsn"
    cluster: pgcluster.Cluster | None = field(default=None, repr=False)
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _admin: psycopg.Connection[Any] | None = field(default=None, repr=False)

    def dsn(self, dbname: str = "postgres", user: str | None = None, **kw: Any) -> str:
        """libpq connection string for *dbname* as *user* (default: superuser).

        Other users get ``ROLE_PASSWORD`` in case the server asks for one.
        """
        params = {**self.params, "dbname": dbname, "user": user or self.superuser}
        if params["user"] != self.superuser:
            params["password"] = ROLE_PASSWORD
        params.update(kw)
        return make_conninfo("", **params)

    def connect(self, dbname: str = "postgres", **kw: Any) -> psycopg.Connection[Any]:
        """An autocommit superuser connection to *dbname*."""
        return psycopg.connect(self.dsn(dbname), autocommit=True, **kw)

    def admin(self) -> psycopg.Connection[Any]:
        """A shared autocommit superuser connection to ``postgres`` (reopened if lost)."""
        if self._admin is None or self._admin.closed or self._admin.broken:
            self._admin = self.connect()
        return self._admin

    def close(self) -> None:
        """Release the server (stop the cluster or container, if owned)."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        while self._closers:
            self._closers.pop()()


# --------------------------------------------------------------------------
# Server discovery
# --------------------------------------------------------------------------


def _requested_bindir() -> Path | None:
    """Local bin dir chosen by the environment, or the highest found."""
    version = os.environ.get(ENV_VERSION)
    if version:
        bindir = pgcluster.find_bindirs().get(int(version))
        if bindir is None:
            raise RuntimeError(f"{ENV_VERSION}={version}: no such PostgreSQL found")
        return bindir
    return pgcluster.find_bindir()


def _docker_available() -> bool:
    """True if testcontainers is installed and a Docker engine answers."""
    try:
        import docker
        import testcontainers  # noqa: F401
    except ImportError:
        return False
    try:
        return bool(docker.from_env(timeout=5).ping())
    except Exception:
        return False


def _fetch_version(server: Server) -> Server:
    """Fill in ``server.version_num`` by asking the server."""
    with server.connect(connect_timeout=10) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    server.version_num = int(row[0])
    return server


def _server_from_dsn(dsn: str) -> Server:
    """Wrap an existing server given by *dsn*."""
    params = conninfo_to_dict(dsn)
    params.pop("dbname", None)
    user = str(params.pop("user", "") or os.environ.get("PGUSER") or _os_user())
    return _fetch_version(Server(params, user, kind="dsn"))


def _os_user() -> str:
    """The OS user name (libpq's default database user)."""
    import getpass

    return getpass.getuser()


def _server_from_bindir(bindir: Path) -> Server:
    """Start a throwaway cluster from *bindir*."""
    cluster = pgcluster.start_cluster(bindir)
    params = {"host": str(cluster.sockdir), "port": cluster.port}
    server = Server(params, cluster.superuser, cluster.version_num, "local", cluster)
    server._closers.append(cluster.stop)
    return server


def _server_from_docker() -> Server:
    """Start a PostgreSQL container."""
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:
        from testcontainers.postgres import PostgresContainer

    container = PostgresContainer(
        DOCKER_IMAGE, username="postgres", password="postgres", dbname="postgres",
        driver=None,
    )
    container.start()
    params = {
        "host": container.get_container_host_ip(),
        "port": int(container.get_exposed_port(5432)),
        "password": "postgres",
    }
    server = Server(params, "postgres", kind=f"docker {DOCKER_IMAGE}")
    server._closers.append(container.stop)
    return _fetch_version(server)


def describe_server() -> str:
    """One line saying which server the tests will use (no server started)."""
    dsn = os.environ.get(ENV_DSN)
    if dsn:
        try:
            server = _server_from_dsn(dsn)
        except psycopg.Error as exc:
            return f"postgres: {ENV_DSN} (unreachable: {str(exc).strip()})"
        return f"postgres: {ENV_DSN}, server_version_num {server.version_num}"
    try:
        bindir = _requested_bindir()
    except RuntimeError as exc:
        return f"postgres: {exc}"
    if bindir is not None:
        major = pgcluster.bindir_major(bindir.resolve())
        return f"postgres: {major} (throwaway cluster from {bindir})"
    if _docker_available():
        return f"postgres: docker {DOCKER_IMAGE}"
    return f"postgres: none ({SKIP_REASON})"


def open_server() -> Server | None:
    """Connect to or start the server the tests should use, if any."""
    dsn = os.environ.get(ENV_DSN)
    if dsn:
        return _server_from_dsn(dsn)
    bindir = _requested_bindir()
    if bindir is not None:
        return _server_from_bindir(bindir)
    if _docker_available():
        return _server_from_docker()
    return None


# --------------------------------------------------------------------------
# Hooks and fixtures
# --------------------------------------------------------------------------


def pytest_report_header(config: pytest.Config) -> str:
    """Show which PostgreSQL server the run uses."""
    return describe_server()


def unique_name(prefix: str) -> str:
    """A fresh identifier-safe name (cluster-wide objects must not clash)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


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


def _create_database(conn: psycopg.Connection[Any], name: str, version_num: int) -> None:
    """CREATE DATABASE *name*, empty (from template0)."""
    query = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
    if version_num >= 150000:
        query += sql.SQL(" STRATEGY FILE_COPY")
    conn.execute(query)


def _disconnect_all(conn: psycopg.Connection[Any], dbname: str, timeout: float = 2.0) -> None:
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


def _drop_database(conn: psycopg.Connection[Any], name: str, version_num: int) -> None:
    """DROP DATABASE *name*, disconnecting its sessions first."""
    _disconnect_all(conn, name)
    query = sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name))
    if version_num >= 130000:
        query += sql.SQL(" WITH (FORCE)")
    conn.execute(query)


@pytest.fixture
def db(pg: Server) -> Iterator[str]:
    """DSN (superuser) of a brand-new empty database, dropped afterwards."""
    name = unique_name("auditsql_t")
    _create_database(pg.admin(), name, pg.version_num)
    try:
        yield pg.dsn(name)
    finally:
        try:
            _drop_database(pg.admin(), name, pg.version_num)
        except psycopg.Error as exc:
            warnings.warn(f"could not drop test database {name}: {exc}", stacklevel=1)


def _databases_depending_on(conn: psycopg.Connection[Any], role: str) -> list[str]:
    """Databases holding objects owned by, or privileges granted to, *role*."""
    rows = conn.execute(
        """
        SELECT DISTINCT d.datname
        FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid
        WHERE s.refclassid = 'pg_authid'::regclass
          AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = %s)
          AND d.datallowconn
        """,
        (role,),
    ).fetchall()
    return [r[0] for r in rows]


def drop_role(pg: Server, role: str) -> None:
    """Disconnect, DROP OWNED everywhere it matters, then DROP ROLE; ignore errors."""
    ident = sql.Identifier(role)
    try:
        conn = pg.admin()
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
            (role,),
        )
        for dbname in _databases_depending_on(conn, role):
            with pg.connect(dbname) as other:
                other.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(ident))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))
    except psycopg.Error as exc:
        warnings.warn(f"could not drop test role {role}: {exc}", stacklevel=1)


MakeRole = Callable[..., str]


@pytest.fixture
def make_role(request: pytest.FixtureRequest, pg: Server) -> Iterator[MakeRole]:
    """Factory: ``make_role("CREATEDB", prefix="app") -> name`` of a new LOGIN role.

    Roles get ``ROLE_PASSWORD`` and are dropped (with what they own) at teardown.
    """
    if "db" in request.fixturenames:
        request.getfixturevalue("db")  # drop roles before the test database
    created: list[str] = []

    def make(*attributes: str, prefix: str = "auditsql_r") -> str:
        name = unique_name(prefix)
        options = sql.SQL(" ").join(sql.SQL(a) for a in ("LOGIN", *attributes))
        pg.admin().execute(
            sql.SQL("CREATE ROLE {} WITH {} PASSWORD {}").format(
                sql.Identifier(name), options, sql.Literal(ROLE_PASSWORD)
            )
        )
        created.append(name)
        return name

    yield make
    for name in reversed(created):
        drop_role(pg, name)
