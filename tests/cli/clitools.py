"""Helpers for the end-to-end CLI tests: run the real ``auditsql`` program in a
subprocess or in this process, check its output, and look at the database
with plain SQL. The fixtures of these tests are in ``tests/cli/conftest.py``.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tomllib
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import typer.core
import typer.main
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from typer.testing import CliRunner

# The version, from where it is written (the package reads it from its
# metadata; test_cli_help checks that the two agree).
VERSION = tomllib.loads(
    (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]["version"]
TIMEOUT = 60

# Environment variables that would change what the CLI does behind the
# tests' back: removed from every run unless a test sets them on purpose.
_SCRUBBED_PREFIXES = ("AUDITSQL_", "PG")
_SCRUBBED = {"COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"}


def cli_command() -> list[str]:
    """The installed console script, as a user would run it.

    Falls back to the entry point run by this interpreter (with the program
    name a user would see) when the script is not installed next to it.
    """
    script = Path(sys.executable).with_name("auditsql")
    if script.exists():
        return [str(script)]
    return [
        sys.executable,
        "-c",
        "import sys; sys.argv[0] = 'auditsql'; from auditsql.cli import main; main()",
    ]


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment for the CLI, plus *extra*."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_SCRUBBED_PREFIXES) and k not in _SCRUBBED
    }
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class Result:
    """What one CLI run did."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return (
            f"auditsql {' '.join(self.args)} -> exit {self.code}\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"
        )


# How CLI runs are made. "subprocess" runs the installed console script, as
# a user would; "inprocess" runs the same program in this interpreter (about
# ten times faster, see run_inprocess). Tests about the process
# boundary (exit codes, tracebacks, environment, help) always use a
# subprocess; the others use MODE, which AUDITSQL_CLI_TESTS=subprocess
# switches for a slower, fully end-to-end run.
MODE = os.environ.get("AUDITSQL_CLI_TESTS", "inprocess")
if MODE not in ("inprocess", "subprocess"):
    raise RuntimeError(f"AUDITSQL_CLI_TESTS={MODE!r}: expected inprocess or subprocess")


def run(*args: str, env: dict[str, str] | None = None, subprocess_only: bool = False) -> Result:
    """Run ``auditsql *args`` and capture everything (see MODE)."""
    if subprocess_only or MODE == "subprocess":
        return run_subprocess(*args, env=env)
    return run_inprocess(*args, env=env)


def run_subprocess(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the console script in a child process."""
    proc = subprocess.run(
        [*cli_command(), *args],
        env=cli_env(env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    return Result(tuple(args), proc.returncode, proc.stdout, proc.stderr)


def run_parallel(
    calls: Sequence[Sequence[str]], env: dict[str, str] | None = None
) -> list[Result]:
    """Run several console-script invocations at once (they are independent
    processes, so this only saves wall-clock time)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, len(calls) or 1)) as pool:
        return list(pool.map(lambda args: run_subprocess(*args, env=env), calls))


@functools.cache
def program() -> typer.core.TyperGroup:
    """The command the console script runs: the typer app made into a click
    command, as ``auditsql`` does once per process (here once per session,
    rather than for every run)."""
    from auditsql.cli import app

    command = typer.main.get_command(app)
    assert isinstance(command, typer.core.TyperGroup)
    return command


def run_inprocess(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the program in this process, with the same clean environment, its
    streams captured as typer's CliRunner captures them.

    The exit code is what the process would exit with; an exception escaping
    the program is rendered into stderr as the traceback a user would see,
    so the same assertions catch it.
    """
    wanted = cli_env(env)
    overrides: dict[str, str | None] = {k: None for k in os.environ if k not in wanted}
    overrides.update(wanted)
    runner = CliRunner()
    code, escaped = 0, None
    with runner.isolation(env=overrides) as (stdout, stderr, _):
        try:
            program().main(args=list(args), prog_name="auditsql")
        except SystemExit as exc:
            code = exit_code(exc.code)
        except Exception as exc:  # a real process would print a traceback and exit 1
            code, escaped = 1, exc
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            out, err = (decode(s.getvalue(), runner.charset) for s in (stdout, stderr))
    if escaped is not None:
        err += "Traceback (most recent call last):\n" + "".join(
            traceback.format_exception(escaped))
    return Result(tuple(args), code, out, err)


def exit_code(code: object) -> int:
    """The exit status of ``sys.exit(code)``: 0 for None, 1 for what is no
    number (whose text Python prints)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def decode(data: bytes, charset: str) -> str:
    return data.decode(charset, "replace").replace("\r\n", "\n")


def ok(*args: str, env: dict[str, str] | None = None, subprocess_only: bool = False) -> Result:
    """Run the CLI and require success without a traceback."""
    res = run(*args, env=env, subprocess_only=subprocess_only)
    assert res.code == 0, str(res)
    assert "Traceback" not in res.stderr, str(res)
    return res


def error_line(res: Result, code: int, *needles: str) -> str:
    """Check a failed run: exit *code*, no traceback, and exactly one line on
    stderr, ``error: ...``, containing every needle (case-insensitive).
    Returns that line."""
    assert res.code == code, str(res)
    assert "Traceback" not in res.stderr, str(res)
    lines = res.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr\n{res}"
    assert res.stderr.endswith("\n") and not res.stderr.endswith("\n\n"), repr(res.stderr)
    line = lines[0]
    assert line.startswith("error: "), str(res)
    for needle in needles:
        assert needle.lower() in line.lower(), f"{needle!r} not in {line!r}"
    return line


def usage_error(res: Result, *needles: str) -> None:
    """A usage error reported by typer itself: exit 2, no traceback."""
    assert res.code == 2, str(res)
    assert "Traceback" not in res.stderr, str(res)
    assert res.stdout == "", str(res)
    for needle in needles:
        assert needle in res.stderr, f"{needle!r} not in stderr\n{res}"


# --------------------------------------------------------------------------
# Looking at the database
# --------------------------------------------------------------------------


def query(dsn: str, text: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    """All rows of *text* (autocommit superuser connection)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(text, params)
        return cur.fetchall() if cur.description else []


def scalar(dsn: str, text: str, params: Sequence[Any] | None = None) -> Any:
    """First column of the first row of *text*."""
    rows = query(dsn, text, params)
    assert rows, text
    return rows[0][0]


def execute(dsn: str, text: str) -> None:
    """Run SQL statements (no parameters)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(text)


def triggers(dsn: str, table: str) -> set[str]:
    """Names of the user triggers on *table* (an SQL table name), including
    those cloned from a partitioned parent (internal before PostgreSQL 15)."""
    rows = query(
        dsn,
        "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(%s) "
        "AND (NOT tgisinternal OR tgparentid <> 0)",
        (table,),
    )
    return {r[0] for r in rows}


def tracked(dsn: str, schema: str = "audit") -> set[str]:
    """entity_type (schema-qualified, quoted name) of every table in ``<schema>.tables``."""
    rows = query(
        dsn,
        sql.SQL(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM {}.tables AS t "
            "JOIN pg_class AS c ON c.oid = t.relid JOIN pg_namespace AS n ON n.oid = c.relnamespace"
        ).format(sql.Identifier(schema)).as_string(),
    )
    return {r[0] for r in rows}


def audit_triggers_anywhere(dsn: str) -> list[tuple[str, str]]:
    """(table, trigger) of every auditsql trigger in the database."""
    return query(
        dsn,
        "SELECT tgrelid::regclass::text, tgname FROM pg_trigger "
        "WHERE tgname LIKE 'auditsql\\_capture%' ORDER BY 1, 2",
    )


def role_exists(dsn: str, role: str) -> bool:
    return bool(scalar(dsn, "SELECT count(*) FROM pg_roles WHERE rolname = %s", (role,)))


def schema_exists(dsn: str, schema: str) -> bool:
    return bool(scalar(dsn, "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)))


def dbname(dsn: str) -> str:
    return str(conninfo_to_dict(dsn)["dbname"])


# The triggers `auditsql attach` gives an ordinary table by default (row mode).
CAPTURE_TRIGGERS = {
    "auditsql_capture_row",
    "auditsql_capture_truncate",
}
