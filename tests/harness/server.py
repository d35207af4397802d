"""The PostgreSQL server a test session uses, and how it is found.

Selection, first match wins:

1. ``$AUDITSQL_TEST_DSN``: an existing server (its user must be a superuser);
2. local binaries (see ``pgcluster``): ``$AUDITSQL_PG_VERSION`` (a major),
   else ``$AUDITSQL_PG_BIN``, else the highest version found;
3. a ``postgres:16`` container, if testcontainers and Docker are usable;
4. otherwise none: tests that need a server are skipped with ``SKIP_REASON``.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.harness import pgcluster

ENV_DSN = "AUDITSQL_TEST_DSN"
ENV_VERSION = "AUDITSQL_PG_VERSION"
DOCKER_IMAGE = "postgres:16"
# The password of every role the tests create, in case the server asks.
ROLE_PASSWORD = "auditsql-test"
# Settings of the throwaway clusters the tests start, over pgcluster's.
# JIT compiles queries the planner thinks costly, as it thinks of the first
# queries on tables without statistics, which is every table of the new
# database each test gets: a first verify took a second with it, a fifth
# of that without (only Debian's builds have JIT).
CLUSTER_SETTINGS = {"jit": "off"}
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

    def on_close(self, closer: Callable[[], None]) -> None:
        """Call *closer* when the server is released (last registered, first called)."""
        self._closers.append(closer)

    def close(self) -> None:
        """Release the server (stop the cluster or container, if owned)."""
        while self._closers:
            self._closers.pop()()
        if self._admin is not None:
            self._admin.close()
            self._admin = None


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
    user = str(params.pop("user", "") or os.environ.get("PGUSER") or getpass.getuser())
    return _fetch_version(Server(params, user, kind="dsn"))


def _server_from_bindir(bindir: Path) -> Server:
    """Start a throwaway cluster from *bindir*."""
    cluster = pgcluster.start_cluster(bindir, settings=CLUSTER_SETTINGS)
    params = {"host": str(cluster.sockdir), "port": cluster.port}
    server = Server(params, cluster.superuser, cluster.version_num, "local", cluster)
    server.on_close(cluster.stop)
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
    server.on_close(container.stop)
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
