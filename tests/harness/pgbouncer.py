"""A throwaway PgBouncer in front of a test server.

Plain Python (no pytest), so that scripts can use it too. Started on a free
loopback port with its own configuration in a temporary directory; as root
it runs as the same unprivileged user as the clusters (PgBouncer refuses
to run as root).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness import pgcluster

PROGRAM_DIRS = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")
SKIP_REASON = ("pgbouncer is not installed (Debian: apt-get install pgbouncer); "
               "the pooler tests need a real one")


def find_pgbouncer() -> Path | None:
    """The pgbouncer program, or None."""
    found = shutil.which("pgbouncer")
    if found:
        return Path(found)
    for directory in PROGRAM_DIRS:
        candidate = Path(directory) / "pgbouncer"
        if candidate.is_file():
            return candidate
    return None


@dataclass
class PgBouncer:
    """A running PgBouncer; ``stop()`` ends it and removes its files."""

    process: subprocess.Popen[bytes]
    workdir: Path
    port: int
    pool_mode: str
    stopped: bool = field(default=False, repr=False)

    def dsn_params(self) -> dict[str, object]:
        """Connection parameters (host, port) of the pooler."""
        return {"host": pgcluster.TCP_HOST, "port": self.port}

    def log(self) -> str:
        """What PgBouncer wrote so far."""
        path = self.workdir / "pgbouncer.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop PgBouncer (idempotent)."""
        if self.stopped:
            return
        self.stopped = True
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_pgbouncer(server_host: str, server_port: int, server_user: str, *,
                    pool_mode: str, pool_size: int, max_client_conn: int = 200,
                    program: Path | None = None) -> PgBouncer:
    """Start PgBouncer in *pool_mode* (``transaction`` or ``session``) with at
    most *pool_size* server connections per database, logging in to the
    server as *server_user* whatever user the client names."""
    program = program or find_pgbouncer()
    if program is None:
        raise RuntimeError(SKIP_REASON)
    run_as = pgcluster.service_identity()
    workdir = Path(tempfile.mkdtemp(prefix="auditsql-pgbouncer-"))
    workdir.chmod(0o777)
    port = pgcluster.free_port()
    config = workdir / "pgbouncer.ini"
    config.write_text("\n".join([
        "[databases]",
        f"* = host={server_host} port={server_port} user={server_user}",
        "[pgbouncer]",
        f"listen_addr = {pgcluster.TCP_HOST}",
        f"listen_port = {port}",
        f"unix_socket_dir = {workdir}",
        # The server trusts the tests; the pooler only relays them.
        "auth_type = any",
        f"pool_mode = {pool_mode}",
        f"default_pool_size = {pool_size}",
        "min_pool_size = 0",
        "reserve_pool_size = 0",
        f"max_client_conn = {max_client_conn}",
        f"max_db_connections = {pool_size}",
        f"logfile = {workdir / 'pgbouncer.log'}",
        "server_reset_query = DISCARD ALL",
        "ignore_startup_parameters = extra_float_digits,options",
        "",
    ]), encoding="utf-8")
    config.chmod(0o644)
    process = subprocess.Popen(
        [str(program), str(config)], cwd=workdir,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        user=run_as.uid, group=run_as.gid,
        extra_groups=None if run_as.uid is None else [],
    )
    bouncer = PgBouncer(process, workdir, port, pool_mode)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode(errors="replace") if process.stderr else ""
            log = bouncer.log()
            bouncer.stop()
            raise RuntimeError(f"pgbouncer exited: {error.strip()} {log.strip()}")
        try:
            with socket.create_connection((pgcluster.TCP_HOST, port), timeout=0.2):
                return bouncer
        except OSError:
            time.sleep(0.05)
    bouncer.stop()
    raise RuntimeError(f"pgbouncer did not listen on port {port} within 10 s")
