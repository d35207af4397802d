"""Every PL/pgSQL function of the install, as rendered for this server, passes
plpgsql_check. The extension is installed for PostgreSQL 15 only (.ci/run
installs postgresql-15-plpgsql-check): there its absence fails the test, so
that the check cannot be skipped where it is meant to run."""

from __future__ import annotations

import warnings

import pytest

from auditsql.render import guard_schema_name
from tests.harness.server import Server
from tests.sql.sqltools import Conn, attach, column, run, scalar

CHECKED_MAJOR = 15
GUARD_SCHEMA = guard_schema_name("audit")  # the event trigger function's schema
OLD_TABLE = "auditsql_old"
NEW_TABLE = "auditsql_new"

TriggerTarget = tuple[str, str | None, str | None]

# Trigger function -> (relation to check against, old table, new table).
# The generated capture functions (audit.capture_<oid>) are added per test.
TRIGGER_TARGETS: dict[str, TriggerTarget] = {
    "audit.guard()": ("audit.events", None, None),
    "audit.record_policy()": ("audit.retention", None, None),
    "audit.record_hold()": ("audit.legal_holds", None, None),
}


@pytest.fixture
def checker(pg: Server, su: Conn) -> Conn:
    """The installed database with plpgsql_check and attached sample tables."""
    major = pg.version_num // 10000
    if major != CHECKED_MAJOR:
        pytest.skip(f"plpgsql_check is installed for PostgreSQL {CHECKED_MAJOR} only;"
                    f" this server is {major}")
    if not scalar(su, "SELECT count(*) FROM pg_available_extensions"
                      " WHERE name = 'plpgsql_check'"):
        pytest.fail(f"the plpgsql_check extension is not available on this PostgreSQL"
                    f" {CHECKED_MAJOR} server: install postgresql-{CHECKED_MAJOR}-plpgsql-check")
    run(
        su,
        "CREATE EXTENSION plpgsql_check",
        "CREATE TABLE plain (id int PRIMARY KEY, v text)",
        "CREATE TABLE parted (id int, k text, PRIMARY KEY (id, k)) PARTITION BY LIST (k)",
        "CREATE TABLE parted_a PARTITION OF parted FOR VALUES IN ('a')",
    )
    attach(su, "plain", capture="statement")
    attach(su, "parted")
    return su


def targets(conn: Conn) -> dict[str, TriggerTarget]:
    """TRIGGER_TARGETS and the generated capture functions of the sample
    tables: plain (statement capture, so with its transition tables) and
    parted (row capture)."""
    generated = {
        f"audit.capture_{scalar(conn, 'SELECT %s::regclass::oid', (table,))}()": target
        for table, target in (("public.plain", ("public.plain", OLD_TABLE, NEW_TABLE)),
                              ("public.parted", ("public.parted", None, None)))
    }
    return {**TRIGGER_TARGETS, **generated}


def check(conn: Conn, function: str, target: TriggerTarget | None) -> list[dict[str, object]]:
    """plpgsql_check findings for *function*, all levels, not stopping at the first."""
    relation, old_table, new_table = target or (None, None, None)
    return conn.execute(
        "SELECT level, lineno, message, statement, detail, hint FROM plpgsql_check_function_tb("
        " %(fn)s::regprocedure, coalesce(%(rel)s::regclass, 0::oid::regclass),"
        " fatal_errors => false, other_warnings => true, extra_warnings => true,"
        " security_warnings => true, oldtable => %(old)s, newtable => %(new)s)",
        {"fn": function, "rel": relation, "old": old_table, "new": new_table},
    ).fetchall()


def test_plpgsql_functions_have_no_errors(checker: Conn) -> None:
    functions = column(
        checker,
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang"
        " WHERE p.pronamespace IN ('audit'::regnamespace, %s::regnamespace)"
        " AND l.lanname = 'plpgsql' ORDER BY 1", (GUARD_SCHEMA,))
    triggers = set(column(
        checker,
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang"
        " WHERE p.pronamespace = 'audit'::regnamespace AND l.lanname = 'plpgsql'"
        " AND p.prorettype = 'trigger'::regtype"))
    trigger_targets = targets(checker)
    assert set(trigger_targets) == triggers, "every trigger function needs a relation to check"
    assert "audit.inet_or_null(text)" in functions, "the PostgreSQL 15 render uses PL/pgSQL"
    assert f"{GUARD_SCHEMA}.ddl_guard()" in functions, "the event trigger function is checked too"
    errors = []
    for function in functions:
        for finding in check(checker, function, trigger_targets.get(function)):
            line = f"{function} line {finding['lineno']}: {finding['level']}: {finding['message']}"
            if finding["level"] == "error":
                errors.append(line)
            else:
                warnings.warn(f"plpgsql_check: {line}", stacklevel=1)
    assert errors == []
