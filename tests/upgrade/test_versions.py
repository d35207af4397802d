"""Which installed versions install and upgrade accept, and what verify says
of a version that is not this package's: compared as versions."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import psycopg
import pytest

from auditsql import __version__, errors, installer
from auditsql.render import Settings, install_sql


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "auditsql", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def rows(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(query).fetchall()


def record_version(dsn: str, version: str) -> None:
    """Pretend the newest installation was of ``version``."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO audit.installation (version, settings)"
                     " SELECT %s, settings FROM audit.installation"
                     " ORDER BY installed_at DESC LIMIT 1", (version,))


@pytest.fixture
def installed(db: str) -> str:
    with psycopg.connect(db) as conn:
        installer.install(conn, Settings())
    return db


STATE = """SELECT (SELECT array_agg(version ORDER BY installed_at) FROM audit.installation),
                  (SELECT count(*) FROM pg_proc WHERE pronamespace = 'audit'::regnamespace),
                  obj_description('audit.events'::regclass, 'pg_class')"""


@pytest.mark.parametrize("command", ["upgrade", "install"])
def test_a_newer_installation_is_refused(installed: str, command: str) -> None:
    record_version(installed, "0.10.0")
    before = rows(installed, STATE)
    res = cli(command, "--dsn", installed)
    assert res.returncode == 1
    assert res.stderr == (
        f"error: auditsql 0.10.0 is installed, which is newer than this package ({__version__});"
        " upgrade the auditsql package to 0.10.0 or later instead\n")
    assert rows(installed, STATE) == before


def test_a_version_no_step_leads_from_is_refused(installed: str) -> None:
    record_version(installed, "0.0.9")
    before = rows(installed, STATE)
    with psycopg.connect(installed) as conn, pytest.raises(
            errors.CannotUpgrade, match=r"^auditsql 0\.0\.9 is installed, and this package"):
        installer.upgrade(conn, "audit")
    assert rows(installed, STATE) == before


def test_the_install_script_itself_refuses_what_it_cannot_upgrade(installed: str) -> None:
    """As printed by install --dry-run and run with psql: nothing changes."""
    record_version(installed, "0.10.0")
    before = rows(installed, STATE)
    with psycopg.connect(installed) as conn:
        script = install_sql(Settings(), conn.info.server_version)
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as caught:
            conn.execute(script.encode())
    assert caught.value.diag.message_primary == (
        f"auditsql: auditsql 0.10.0 is installed in schema audit, and this script "
        f"(auditsql {__version__}) has no upgrade from it")
    assert rows(installed, STATE) == before


@pytest.mark.parametrize(("recorded", "hint"), [
    ("0.2.0rc1", "run `auditsql upgrade`"),
    ("0.1.0", "run `auditsql upgrade`"),
    ("0.10.0", "upgrade the auditsql package to 0.10.0 or later"),
])
def test_verify_compares_versions_as_versions(installed: str, recorded: str, hint: str) -> None:
    record_version(installed, recorded)
    res = cli("verify", "--dsn", installed, "--json")
    assert res.returncode == 1, res.stderr
    [check] = [c for c in json.loads(res.stdout)["checks"] if c["id"] == "install.version"]
    assert (check["status"], check["message"], check["hint"]) == (
        "fail", f"installed version {recorded} differs from this package's {__version__}", hint)
