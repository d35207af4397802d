"""`auditsql retention ...` and `install --retention` end to end, with pg_cron
where the server has it (PostgreSQL 15 here) and without it elsewhere."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from auditsql import Audit, errors
from auditsql.render import guard_schema_name
from tests.cli.clitools import (
    dbname,
    error_line,
    execute,
    ok,
    query,
    run,
    scalar,
    schema_exists,
)
from tests.cli.test_verify import report
from tests.harness import pgcluster
from tests.harness.databases import unique_name
from tests.harness.roles import MakeRole
from tests.harness.server import Server

JOB_COMMAND = 'BEGIN; SELECT "audit".seal(); COMMIT; BEGIN; SELECT "audit".maintain(3); COMMIT; BEGIN; SELECT "audit".apply_retention(); COMMIT;'
CANARY = "CREATE TABLE canary (x int); INSERT INTO canary VALUES (1);"


def policy(dsn: str, schema: str = "audit") -> tuple[str, str] | None:
    rows = query(dsn, sql.SQL("SELECT policy, keep::text FROM {}.retention").format(
        sql.Identifier(schema)).as_string())
    return rows[0] if rows else None


def partitions(dsn: str) -> list[str]:
    return [r[0] for r in query(
        dsn, "SELECT name FROM audit.event_partitions() WHERE NOT is_default")]


def canary_alive(dsn: str) -> bool:
    return bool(scalar(dsn, "SELECT to_regclass('canary') IS NOT NULL"))


@pytest.fixture
def installed(installed_db: str) -> str:
    """A fresh database with auditsql (no policy), a canary table and an
    audited table public.t holding row 1."""
    execute(installed_db, CANARY + "CREATE TABLE t (id int PRIMARY KEY);"
                          " SELECT audit.attach('t'); INSERT INTO t VALUES (1);")
    return installed_db


@pytest.fixture
def old_events(installed: str) -> str:
    """Policy saas; events in 2010 (partitioned) and in 2009 (default partition)."""
    execute(installed, """
        SELECT audit.set_retention('saas');
        SELECT audit.ensure_partitions('2010-01-01', 1);
        INSERT INTO audit.events (category, action, occurred_at, entity_type, entity_id) VALUES
            ('data', 'created', '2010-01-05', 'public.t', '1'),
            ('data', 'created', '2010-01-06', 'public.t', '2'),
            ('data', 'created', '2009-05-05', 'public.t', '3');
    """)
    return installed


# --------------------------------------------------------------------------
# install --retention, retention set, status
# --------------------------------------------------------------------------


def test_install_with_a_policy(db: str) -> None:
    ok("install", "--dsn", db, "--retention", "financial")
    assert policy(db) == ("financial", "7 years")
    res = ok("status", "--dsn", db)
    assert "retention: financial (keep 7 years)" in res.stdout
    payload = json.loads(ok("status", "--dsn", db, "--json").stdout)
    assert payload["retention"] == {"policy": "financial", "keep": "7 years"}
    ok("install", "--dsn", db)  # again, without --retention: the policy stays
    assert policy(db) == ("financial", "7 years")
    ok("install", "--dsn", db, "--retention", "8 years")  # longer: no flag needed
    assert policy(db) == ("custom", "8 years")
    # Shorter than the policy in force: install does not shorten it; the
    # error says how to.
    error_line(run("install", "--dsn", db, "--retention", "medical"), 2,
               "less time than the policy in force", "custom (8 years)",
               "install without --retention", "auditsql retention set medical --shorten")
    assert policy(db) == ("custom", "8 years")
    ok("retention", "set", "medical", "--shorten", "--dsn", db)
    assert policy(db) == ("medical", "5 years")
    recorded = query(db, "SELECT after ->> 'policy' FROM audit.events"
                         " WHERE action = 'retention_policy_set' ORDER BY id")
    assert recorded == [("financial",), ("custom",), ("medical",)]


def test_install_with_a_bad_policy_installs_nothing(db: str) -> None:
    execute(db, CANARY)
    for bad in ("forever", "-7 years", "0", "7 years'; DROP TABLE canary; --"):
        error_line(run("install", "--dsn", db, "--retention", bad), 2, "retention polic")
        assert not schema_exists(db, "audit")
    assert canary_alive(db)


def test_install_dry_run_sets_the_policy_too(pg: Server, db: str) -> None:
    res = ok("install", "--dsn", db, "--dry-run", "--retention", "7 years'; --")
    assert res.stdout.endswith("SELECT \"audit\".set_retention('7 years''; --');\nCOMMIT;\n")
    assert not schema_exists(db, "audit")


def test_set_policies(installed: str) -> None:
    for given, expected in (("saas", ("saas", "3 years")), ("18 months", ("custom", "1 year 6 mons")),
                            ("MEDICAL", ("medical", "5 years"))):
        # 18 months after saas shortens the policy: said so explicitly.
        res = ok("retention", "set", given, "--shorten", "--dsn", installed)
        assert f"keep {expected[1]}" in res.stderr
        assert policy(installed) == expected
    assert "retention: medical (keep 5 years)" in ok("status", "--dsn", installed).stdout


def test_set_refuses_bad_policies(installed: str) -> None:
    ok("retention", "set", "saas", "--dsn", installed)
    for bad in ("forever", "", "-1 year", "0 days", "1 year -2 years", "99999999 years",
                "1 year'); DROP TABLE canary; --"):
        error_line(run("retention", "set", "--dsn", installed, "--", bad), 2, "polic")
        assert policy(installed) == ("saas", "3 years")
    assert canary_alive(installed)


def test_a_number_needs_its_unit(installed: str) -> None:
    ok("retention", "set", "financial", "--dsn", installed)
    for bad in ("7", "84", "1 year 7"):
        res = run("retention", "set", bad, "--under-a-year", "--shorten", "--dsn", installed)
        error_line(res, 2, "a unit is required", "'7 years', not '7'")
        assert res.stdout == ""
        assert policy(installed) == ("financial", "7 years")


def test_too_long_is_not_an_unknown_policy(installed: str) -> None:
    line = error_line(run("retention", "set", "10000 years", "--dsn", installed), 2,
                      "too long", "at most 100 years")
    assert "unknown" not in line
    error_line(run("retention", "set", "forever", "--dsn", installed), 2,
               "unknown retention policy")
    assert policy(installed) is None


def removals(res: Any) -> list[list[str]]:
    return [line.split("\t") for line in res.stdout.splitlines()]


def test_under_a_year_and_shortening_are_refused_showing_what_would_go(old_events: str) -> None:
    execute(old_events, "SELECT audit.place_hold('public.t', '2', 'keep this one')")
    before = (partitions(old_events), scalar(old_events, "SELECT count(*) FROM audit.events"))
    res = run("retention", "set", "6 months", "--dsn", old_events)
    line = error_line(res, 2, "less than a year", "less time than the policy in force, saas",
                      "2 events from 2 partitions (1 kept under legal hold)",
                      "auditsql retention set '6 months' --under-a-year --shorten")
    assert "install" not in line
    # What the flags would lead to, partition by partition: the events
    # waiting in the default partition (2009) included.
    assert removals(res) == [
        ["would remove", "events_2009_05", "2009-05-01..2009-06-01", "1 events"],
        ["would remove", "events_2010_01", "2010-01-01..2010-02-01",
         "1 events, 1 kept under legal hold"]]
    error_line(run("retention", "set", "6 months", "--under-a-year", "--dsn", old_events), 2,
               "--shorten")
    error_line(run("retention", "set", "2 years", "--dsn", old_events), 2,
               "less time than the policy in force", "--shorten")
    assert policy(old_events) == ("saas", "3 years")
    done = ok("retention", "set", "6 months", "--under-a-year", "--shorten", "--dsn", old_events)
    assert removals(done) == removals(res)
    assert "retention policy: custom (keep 6 mons)" in done.stderr
    assert "the next retention run will remove 2 events from 2 partitions" in done.stderr
    # Setting a policy removes nothing by itself.
    assert (partitions(old_events),
            scalar(old_events, "SELECT count(*) FROM audit.events") - 1) == before
    again = ok("retention", "set", "6 months", "--dsn", old_events)  # in force: nothing to allow
    assert again.stdout == "" and "unchanged" in again.stderr


def test_a_longer_policy_needs_no_flag_and_shows_what_goes(old_events: str) -> None:
    res = ok("retention", "set", "financial", "--dsn", old_events)
    assert removals(res) == [["would remove", "events_2009_05", "2009-05-01..2009-06-01",
                              "1 events"], ["would remove", "events_2010_01",
                                            "2010-01-01..2010-02-01", "2 events"]]
    assert policy(old_events) == ("financial", "7 years")


def test_install_with_a_short_or_bare_policy_installs_nothing(db: str) -> None:
    error_line(run("install", "--dsn", db, "--retention", "7"), 2, "a unit is required")
    error_line(run("install", "--dsn", db, "--retention", "6 months"), 2, "less than a year",
               "install without --retention",
               "auditsql retention set '6 months' --under-a-year")
    error_line(run("install", "--dsn", db, "--retention", "10000 years"), 2, "too long")
    assert not schema_exists(db, "audit")


def test_commands_need_an_install(db: str) -> None:
    for args in (("set", "saas"), ("status",), ("run",), ("hold", "public.t", "1", "--reason", "x"),
                 ("release", "public.t", "1")):
        error_line(run("retention", *args, "--dsn", db), 1, "not installed")


# --------------------------------------------------------------------------
# Legal holds
# --------------------------------------------------------------------------


def test_hold_and_release(installed: str) -> None:
    res = ok("retention", "hold", "public.t", "1", "--reason", "case 12", "--dsn", installed)
    assert "legal hold placed on public.t 1" in res.stderr
    again = ok("retention", "hold", "public.t", "1", "--reason", "other", "--dsn", installed)
    assert "already under legal hold" in again.stderr and "case 12" in again.stderr
    status = ok("retention", "status", "--dsn", installed).stdout
    assert "legal holds: 1" in status and "public.t 1" in status and "case 12" in status
    held = json.loads(ok("retention", "status", "--json", "--dsn", installed).stdout)["holds"]
    assert [(h["entity_type"], h["entity_id"], h["reason"]) for h in held] == [
        ("public.t", "1", "case 12")]
    res = ok("retention", "release", "public.t", "1", "--reason", "settled", "--dsn", installed)
    assert "released" in res.stderr
    error_line(run("retention", "release", "public.t", "1", "--dsn", installed), 1,
               "not under legal hold")
    actions = query(installed, "SELECT action, after ->> 'reason' FROM audit.events"
                               " WHERE action LIKE 'legal_hold%' ORDER BY id")
    assert actions == [("legal_hold_placed", "case 12"), ("legal_hold_released", "settled")]


def test_a_composite_key_is_held_however_it_is_typed(installed: str) -> None:
    execute(installed, "CREATE TABLE order_items (order_id int, line int,"
                       " PRIMARY KEY (order_id, line));"
                       " SELECT audit.attach('order_items');"
                       " INSERT INTO order_items VALUES (1001, 1);")
    res = ok("retention", "hold", "public.order_items", "[1001,1]", "--reason", "case 12",
             "--dsn", installed)
    assert res.stderr == ("legal hold placed on public.order_items [1001, 1]"
                          " (given as [1001,1]): 1 events in the log\n")
    assert query(installed, "SELECT entity_id FROM audit.legal_holds") == [("[1001, 1]",)]
    assert query(installed, "SELECT (after ->> 'events')::int FROM audit.events"
                            " WHERE action = 'legal_hold_placed'") == [(1,)]
    again = ok("retention", "hold", "public.order_items", "[1001, 1]", "--reason", "x",
               "--dsn", installed)
    assert "already under legal hold" in again.stderr
    res = ok("retention", "release", "public.order_items", '["1001","1"]', "--dsn", installed)
    assert "legal hold released on public.order_items [1001, 1]" in res.stderr
    assert scalar(installed, "SELECT count(*) FROM audit.legal_holds") == 0


def test_a_hold_matching_nothing_is_refused_unless_for_future_events(installed: str) -> None:
    before = scalar(installed, "SELECT count(*) FROM audit.events")
    res = run("retention", "hold", "public.t", "2", "--reason", "x", "--dsn", installed)
    error_line(res, 1, "no event in the log has entity type public.t and entity id 2",
               "would hold nothing", "--future")
    error_line(run("retention", "hold", "public.t", " 2", "--reason", "x", "--dsn", installed), 1,
               "entity id 2 (given as  2)")
    assert scalar(installed, "SELECT count(*) FROM audit.legal_holds") == 0
    assert scalar(installed, "SELECT count(*) FROM audit.events") == before
    res = ok("retention", "hold", "public.t", "2", "--reason", "x", "--future", "--dsn", installed)
    assert "legal hold placed on public.t 2: no event in the log yet" in res.stderr
    assert query(installed, "SELECT entity_id FROM audit.legal_holds") == [("2",)]


BAD_HOLDS = [
    (("public.nosuch", "1", "--reason", "x"), 1, "no audited table"),
    (("t", "1", "--reason", "x"), 1, "public.orders"),  # the hint shows the expected form
    (("public.t", "1", "--reason", ""), 2, "reason"),
    (("public.t", "1", "--reason", "   "), 2, "reason"),
    (("public.t", "1", "--reason", "x" * 1001), 2, "1000"),
    (("public.t", "", "--reason", "x"), 2, "entity id"),
]


def test_bad_holds_are_refused(installed: str) -> None:
    before = scalar(installed, "SELECT count(*) FROM audit.events")
    for args, code, needle in BAD_HOLDS:
        error_line(run("retention", "hold", *args, "--dsn", installed), code, needle)
    assert scalar(installed, "SELECT count(*) FROM audit.legal_holds") == 0
    assert scalar(installed, "SELECT count(*) FROM audit.events") == before


def test_a_hostile_reason_is_stored_as_given(installed: str) -> None:
    reason = "x'); DROP TABLE canary; -- \"$$\\ ünï 🙂"
    ok("retention", "hold", "public.t", "1", "--reason", reason, "--dsn", installed)
    assert scalar(installed, "SELECT reason FROM audit.legal_holds") == reason
    assert canary_alive(installed)


# --------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------


def test_run_moves_creates_and_removes(old_events: str) -> None:
    execute(old_events, "SELECT audit.place_hold('public.t', '2', 'keep this one')")
    res = ok("retention", "run", "--dsn", old_events)
    lines = [line.split("\t") for line in res.stdout.splitlines()]
    assert ["created", "events_2009_05", "2009-05-01..2009-06-01",
            "1 events moved from the default partition"] in lines
    assert ["removed", "events_2009_05", "2009-05-01..2009-06-01", "1 events"] in lines
    assert ["removed", "events_2010_01", "2010-01-01..2010-02-01",
            "1 events, 1 kept under legal hold"] in lines
    assert sum(1 for line in lines if line[0] == "created" and len(line) == 3) >= 2  # ahead
    assert scalar(old_events, "SELECT count(*) FROM audit.events WHERE occurred_at < '2011-01-01'") == 1
    again = ok("retention", "run", "--dsn", old_events)
    assert again.stdout == "" and "nothing to do" in again.stderr


def test_run_does_not_seal(old_events: str) -> None:
    """docs/integrity.md: `auditsql retention run` does not seal; schedule
    `auditsql seal` beside it."""
    ok("seal", "--dsn", old_events)
    execute(old_events, "SELECT audit.log_event('login', 'user', '1')")
    head = query(old_events, "SELECT * FROM audit.seal_head")
    for output in ([], ["--json"]):
        ok("retention", "run", *output, "--dsn", old_events)
        assert query(old_events, "SELECT * FROM audit.seal_head") == head


def test_run_json(old_events: str) -> None:
    payload = json.loads(ok("retention", "run", "--json", "--dsn", old_events).stdout)
    assert set(payload) == {"maintained", "removed"}
    removed = {r["partition"]: r for r in payload["removed"]}
    assert removed["events_2010_01"] == {
        "partition": "events_2010_01", "range_from": "2010-01-01T00:00:00+00:00",
        "range_to": "2010-02-01T00:00:00+00:00", "rows_removed": 2, "rows_kept": 0}
    assert {m["partition"] for m in payload["maintained"]} >= {"events_2009_05"}


def log_state(dsn: str) -> tuple[Any, ...]:
    return (partitions(dsn), query(dsn, "SELECT * FROM audit.events ORDER BY id"),
            scalar(dsn, "SELECT last_value FROM audit.events_id_seq"),
            query(dsn, "SELECT * FROM audit.legal_holds"))


def test_run_dry_run_shows_the_run_and_changes_nothing(old_events: str) -> None:
    execute(old_events, "SELECT audit.place_hold('public.t', '2', 'keep this one')")
    before = log_state(old_events)
    res = ok("retention", "run", "--dry-run", "--dsn", old_events)
    lines = removals(res)
    assert ["would create", "events_2009_05", "2009-05-01..2009-06-01",
            "1 events to move from the default partition"] in lines
    assert ["would remove", "events_2009_05", "2009-05-01..2009-06-01", "1 events"] in lines
    assert ["would remove", "events_2010_01", "2010-01-01..2010-02-01",
            "1 events, 1 kept under legal hold"] in lines
    assert sum(1 for line in lines if line[0] == "would create" and len(line) == 3) >= 2
    assert "dry run: nothing changed" in res.stderr
    dry = json.loads(ok("retention", "run", "--dry-run", "--json", "--dsn", old_events).stdout)
    assert log_state(old_events) == before  # no partition, event, id or hold changed
    # The run does what the dry run showed.
    assert json.loads(ok("retention", "run", "--json", "--dsn", old_events).stdout) == dry
    again = ok("retention", "run", "--dry-run", "--dsn", old_events)
    assert again.stdout == "" and "nothing to do" in again.stderr


def test_run_dry_run_needs_a_policy(installed: str) -> None:
    error_line(run("retention", "run", "--dry-run", "--dsn", installed), 1, "no retention policy")
    error_line(run("retention", "run", "--dry-run", "--months-ahead", "121", "--dsn", installed),
               2, "months ahead")


def test_run_without_a_policy_changes_nothing(installed: str) -> None:
    execute(installed, "INSERT INTO audit.events (category, action, occurred_at)"
                       " VALUES ('system', 'x', '2001-01-01')")
    before = partitions(installed)
    error_line(run("retention", "run", "--dsn", installed), 1, "no retention policy",
               "retention set")
    assert partitions(installed) == before
    assert scalar(installed, "SELECT count(*) FROM audit.events_default") == 1


def test_run_that_cannot_have_its_lock_exits_1_and_removes_nothing(old_events: str) -> None:
    """docs/retention.md: `auditsql retention run` "exits 1 when no policy is
    set or a lock could not be had"; retention then removes nothing."""
    with psycopg.connect(old_events) as writer:
        writer.execute("INSERT INTO t VALUES (2)")  # a transaction left open on the log
        res = run("retention", "run", "--dsn", old_events)
        writer.rollback()
    assert "events_2010_01" in partitions(old_events)
    assert scalar(old_events, "SELECT count(*) FROM audit.events"
                              " WHERE action = 'retention_applied'") == 0
    error_line(res, 1, "lock")


def test_run_retention_keeps_what_maintenance_did_when_retention_fails(old_events: str) -> None:
    """docs/library.md: "`run_retention` runs maintenance, then retention",
    "each committed as it ends": retention failing on a lock leaves the
    partition maintenance created and the event it moved there."""
    assert "events_2009_05" not in partitions(old_events)
    with psycopg.connect(old_events) as writer, Audit(old_events) as audit:
        writer.execute("INSERT INTO t VALUES (2)")  # a transaction left open on the log
        with pytest.raises(errors.LockUnavailable):
            audit.run_retention()
        writer.rollback()
    assert {"events_2009_05", "events_2010_01"} <= set(partitions(old_events))
    assert scalar(old_events, "SELECT count(*) FROM audit.events_default") == 0
    assert query(old_events, "SELECT entity_id FROM audit.events_2009_05") == [("3",)]
    assert scalar(old_events, "SELECT count(*) FROM audit.events"
                              " WHERE action = 'retention_applied'") == 0


def test_run_refuses_bad_months(old_events: str) -> None:
    before = partitions(old_events)
    for months in ("-1", "121"):
        error_line(run("retention", "run", "--months-ahead", months, "--dsn", old_events), 2,
                   "months ahead")
    assert partitions(old_events) == before


def test_roles_outside_the_owner_role_cannot(pg: Server, old_events: str,
                                             make_role: MakeRole) -> None:
    outsider = make_role()
    reader = make_role()
    execute(old_events, f"GRANT auditsql_reader TO {reader}")
    before = partitions(old_events)
    for role in (outsider, reader):
        dsn = pg.dsn(dbname(old_events), user=role)
        error_line(run("retention", "run", "--dsn", dsn), 1)
        error_line(run("retention", "set", "1 day", "--dsn", dsn), 1)
        error_line(run("retention", "hold", "public.t", "1", "--reason", "x", "--dsn", dsn), 1)
    assert partitions(old_events) == before
    assert policy(old_events) == ("saas", "3 years")
    # The reader may look.
    status = ok("retention", "status", "--dsn", pg.dsn(dbname(old_events), user=reader))
    assert "policy: saas" in status.stdout


# --------------------------------------------------------------------------
# status
# --------------------------------------------------------------------------


def test_status(old_events: str) -> None:
    text = ok("retention", "status", "--dsn", old_events).stdout
    assert "policy: saas (keep 3 years)" in text
    assert "default partition: holds events" in text
    assert "oldest event: 2009-05-05 00:00:00 UTC" in text
    assert "next removal: events_2010_01 on 2013-02-01 00:00:00 UTC" in text
    ok("retention", "run", "--dsn", old_events)
    payload = json.loads(ok("retention", "status", "--json", "--dsn", old_events).stdout)
    assert payload["policy"]["name"] == "saas" and payload["policy"]["keep"] == "3 years"
    parts = payload["partitions"]
    assert parts["current_month_covered"] is True and parts["months_ahead"] == 3
    assert parts["default_partition_empty"] is True
    assert payload["oldest_event"] is not None and payload["oldest_event"] > "2020"
    assert set(payload["cron"]) == {"available", "database", "installed", "job", "runs", "problem"}


# --------------------------------------------------------------------------
# pg_cron
# --------------------------------------------------------------------------


def cron_database(pg: Server) -> str | None:
    row = pg.admin().execute("SELECT current_setting('cron.database_name', true)").fetchone()
    return row[0] if row and row[0] else None


def test_pg_cron_is_used_wherever_it_is_installed(pg: Server) -> None:
    """The pg_cron tests below must not skip on a server that has it."""
    if pg.cluster is not None and pgcluster.has_pg_cron(pg.cluster.bindir):
        assert cron_database(pg) == "postgres"
    elif cron_database(pg) is None:
        pytest.skip("this server has no pg_cron")


@pytest.fixture
def no_cron(pg: Server) -> None:
    if cron_database(pg) is not None:
        pytest.skip("this server has pg_cron")


def test_without_pg_cron_schedule_says_what_to_do(no_cron: None, old_events: str) -> None:
    line = error_line(run("retention", "schedule", "--dsn", old_events), 1,
                      "pg_cron is not available", "auditsql retention run")
    assert "shared_preload_libraries" in line
    error_line(run("retention", "unschedule", "--dsn", old_events), 1, "pg_cron is not available")
    status = ok("retention", "status", "--dsn", old_events).stdout
    assert "pg_cron: not available" in status and "retention run" in status
    payload = json.loads(ok("retention", "status", "--json", "--dsn", old_events).stdout)
    assert payload["cron"]["available"] is False and payload["cron"]["job"] is None


@pytest.fixture
def cron(pg: Server) -> Iterator[str]:
    """pg_cron created in its database; jobs this test made are removed after it."""
    database = cron_database(pg)
    if database is None:
        pytest.skip("this server has no pg_cron")
    with pg.connect(database) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
    try:
        yield database
    finally:
        with pg.connect(database) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
            conn.execute("SELECT cron.unschedule(jobid) FROM cron.job"
                         " WHERE jobname LIKE 'auditsql:%'")


def jobs(pg: Server, database: str) -> list[dict[str, Any]]:
    with pg.connect(database) as conn:
        cur = conn.execute("SELECT jobid, jobname, schedule, command, database, username, active"
                           " FROM cron.job WHERE jobname LIKE 'auditsql:%' ORDER BY jobid")
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row)) for row in cur.fetchall()]


def test_schedule_creates_the_job_in_pg_crons_database(pg: Server, cron: str,
                                                       old_events: str) -> None:
    name = dbname(old_events)
    res = ok("retention", "schedule", "--dsn", old_events)
    assert "scheduled pg_cron job" in res.stderr
    [job] = jobs(pg, cron)
    assert {k: job[k] for k in ("jobname", "schedule", "command", "database", "username",
                                "active")} == {
        "jobname": f"auditsql:{name}:audit", "schedule": "17 3 * * *", "command": JOB_COMMAND,
        "database": name, "username": pg.superuser, "active": True}
    ok("retention", "schedule", "--cron", "5 4 * * 0", "--months-ahead", "6", "--dsn", old_events)
    [again] = jobs(pg, cron)
    assert (again["jobid"], again["schedule"]) == (job["jobid"], "5 4 * * 0")
    assert "maintain(6)" in again["command"]
    status = ok("retention", "status", "--dsn", old_events).stdout
    assert f"job {job['jobid']}" in status and "'5 4 * * 0'" in status and "last runs: none yet" in status
    assert "removed pg_cron job" in ok("retention", "unschedule", "--dsn", old_events).stderr
    assert jobs(pg, cron) == []
    assert "no retention job" in ok("retention", "unschedule", "--dsn", old_events).stderr


def test_schedule_refuses_a_bad_schedule(pg: Server, cron: str, old_events: str) -> None:
    for bad in ("61 * * * *", "bogus", "* * * * *'; DROP TABLE canary; --", "", "* * * *\n*"):
        error_line(run("retention", "schedule", "--cron", bad, "--dsn", old_events), 2,
                   "schedule")
        assert jobs(pg, cron) == [], bad
    assert canary_alive(old_events)


def test_schedule_needs_a_policy_and_a_member_of_the_admin(pg: Server, cron: str, installed: str,
                                                           make_role: MakeRole) -> None:
    error_line(run("retention", "schedule", "--dsn", installed), 1, "no retention policy")
    execute(installed, "SELECT audit.set_retention('saas')")
    reader = make_role()
    execute(installed, f"GRANT auditsql_reader TO {reader}")
    dsn = pg.dsn(dbname(installed), user=reader)
    # cron.database_name is for superusers and pg_read_all_settings only.
    error_line(run("retention", "schedule", "--dsn", dsn), 1, "cron.database_name")
    status = ok("retention", "status", "--dsn", dsn).stdout
    assert "pg_cron: in database None" not in status and "job unknown" in status
    execute(installed, f"GRANT pg_read_all_settings TO {reader}")
    error_line(run("retention", "schedule", "--dsn", dsn), 1, "member of auditsql_admin")
    assert jobs(pg, cron) == []


def test_schedule_when_pg_cron_is_loaded_but_not_created(pg: Server, cron: str,
                                                         old_events: str) -> None:
    with pg.connect(cron) as conn:
        conn.execute("DROP EXTENSION pg_cron")
    error_line(run("retention", "schedule", "--dsn", old_events), 1, "CREATE EXTENSION pg_cron", cron)
    assert "loaded, but not created" in ok("retention", "status", "--dsn", old_events).stdout


def test_schedule_in_pg_crons_own_database(pg: Server, cron: str) -> None:
    """Installed where pg_cron lives: cron.schedule, no schedule_in_database."""
    schema = unique_name("audit_cron")
    dsn = pg.dsn(cron)
    try:
        ok("install", "--dsn", dsn, "--schema", schema, "--retention", "saas")
        ok("retention", "schedule", "--dsn", dsn, "--schema", schema)
        [job] = jobs(pg, cron)
        assert (job["jobname"], job["database"]) == (f"auditsql:{cron}:{schema}", cron)
        assert f'"{schema}".apply_retention()' in job["command"]
        assert f"job {job['jobid']}" in ok("retention", "status", "--dsn", dsn,
                                           "--schema", schema).stdout
        assert job_check(dsn, "--schema", schema)["status"] == "pass"
    finally:
        execute(dsn, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_the_job_runs(pg: Server, cron: str, old_events: str) -> None:
    """Waits for pg_cron's next minute: the one slow test."""
    ok("retention", "schedule", "--cron", "* * * * *", "--dsn", old_events)
    try:
        [job] = jobs(pg, cron)
        deadline = time.monotonic() + 75
        runs: list[tuple[Any, ...]] = []
        with pg.connect(cron) as conn:
            while not runs and time.monotonic() < deadline:
                time.sleep(0.5)
                runs = conn.execute("SELECT status, return_message FROM cron.job_run_details"
                                    " WHERE jobid = %s AND status IN ('succeeded', 'failed')",
                                    (job["jobid"],)).fetchall()
        assert runs, "pg_cron did not run the job within 75 s"
        assert runs[0] == ("succeeded", "COMMIT"), runs
        assert "succeeded  COMMIT" in ok("retention", "status", "--dsn", old_events).stdout
    finally:
        ok("retention", "unschedule", "--dsn", old_events)
    # It maintained (the 2009 event left the default partition), then removed.
    assert scalar(old_events, "SELECT count(*) FROM audit.events_default") == 0
    assert scalar(old_events, "SELECT count(*) FROM audit.events"
                              " WHERE occurred_at < '2011-01-01'") == 0
    [removed] = query(old_events, "SELECT after FROM audit.events WHERE action = 'retention_applied'")
    assert {p["partition"] for p in removed[0]["partitions"]} == {"events_2009_05", "events_2010_01"}
    assert len(partitions(old_events)) >= 4  # the current month and three ahead


def test_a_connection_reaches_pg_cron_in_another_database_only_with_a_dsn(
        pg: Server, cron: str, old_events: str) -> None:
    """docs/library.md: `Audit(connection)` uses the connection as it is;
    "pass `dsn=` as well when pg_cron lives in another database of the
    server, so that the job can be read and scheduled there"."""
    assert dbname(old_events) != cron
    unreachable = f"pg_cron lives in database {cron!r}, and no DSN was given to reach it"
    with psycopg.connect(old_events) as conn:
        alone = Audit(conn)
        with pytest.raises(errors.PgCronUnavailable) as refused:
            alone.schedule()
        assert str(refused.value) == unreachable
        assert jobs(pg, cron) == []
        found = alone.retention_status().cron
        assert (found.available, found.database, found.job, found.problem) == (
            True, cron, None, unreachable)
        reached = Audit(conn, dsn=old_events)
        job = reached.schedule()
        assert [j["jobid"] for j in jobs(pg, cron)] == [job.jobid]
        assert job.database == dbname(old_events)
        found = reached.retention_status().cron
        assert (found.job, found.problem) == (job, None)
        assert reached.unschedule() == job
        assert not conn.closed
    assert jobs(pg, cron) == []


@pytest.mark.parametrize("in_crons_database", [False, True],
                         ids=["another database", "pg_cron's database"])
def test_uninstall_removes_the_job_first_each_committed_as_it_ends(
        pg: Server, cron: str, old_events: str, in_crons_database: bool) -> None:
    """docs/library.md: "`uninstall` removes the pg_cron job before it takes
    auditsql out", each in a transaction "committed as it ends": an
    uninstall failing on a lock has removed the job and left auditsql in;
    one that succeeds returns the job it removed. Wherever pg_cron lives."""
    schema, dsn = "audit", old_events
    if in_crons_database:
        schema, dsn = unique_name("audit_cron"), pg.dsn(cron)
        with Audit(dsn, schema=schema) as audit:
            audit.install(retention="saas")
    installation = sql.SQL("SELECT FROM {}.installation").format(sql.Identifier(schema))
    try:
        with Audit(dsn, schema=schema) as audit:
            audit.schedule()
        impatient = make_conninfo(dsn, options="-c lock_timeout=500")
        with psycopg.connect(dsn) as reader, Audit(impatient, schema=schema) as audit:
            reader.execute(installation)
            with pytest.raises(errors.LockUnavailable):
                audit.uninstall()
            reader.rollback()
        assert jobs(pg, cron) == []
        with Audit(dsn, schema=schema) as audit:
            assert audit.status().schema == schema
            job = audit.schedule()
            done, removed = audit.uninstall()
        assert removed == job and jobs(pg, cron) == []
        assert (done.schema, done.data_dropped) == (schema, False)
        with pytest.raises(psycopg.errors.UndefinedTable):
            execute(dsn, installation.as_string())
    finally:
        if in_crons_database:
            execute(dsn, sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE;"
                                 " DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(schema), sql.Identifier(guard_schema_name(schema))).as_string())


def job_check(dsn: str, *args: str) -> dict[str, Any]:
    """retention.job_scheduled from `auditsql verify --json`."""
    payload = report(dsn, *args)
    return next(c for c in payload["checks"] if c["id"] == "retention.job_scheduled")


def test_verify_reads_the_job_in_pg_crons_database(pg: Server, cron: str,
                                                   old_events: str) -> None:
    """auditsql in a database of its own, pg_cron in another: verify reads
    the job where pg_cron keeps it, and retention status names both."""
    name = dbname(old_events)
    assert name != cron
    check = job_check(old_events)
    assert (check["status"], check["message"]) == ("warn", "pg_cron is available, no job")
    ok("retention", "schedule", "--dsn", old_events)
    [job] = jobs(pg, cron)
    check = job_check(old_events)
    assert (check["status"], check["message"]) == ("pass", "scheduled")
    status = ok("retention", "status", "--dsn", old_events).stdout
    assert (f"pg_cron: in database {cron}; job {job['jobid']} 'auditsql:{name}:audit'"
            f" runs in database {name}, schedule '17 3 * * *', active, as {pg.superuser}"
            in status.splitlines())
    payload = json.loads(ok("retention", "status", "--json", "--dsn", old_events).stdout)
    assert (payload["cron"]["database"], payload["cron"]["job"]["database"]) == (cron, name)
    with pg.connect(cron) as conn:
        conn.execute("SELECT cron.alter_job(%s, active := false)", (job["jobid"],))
    assert job_check(old_events)["status"] == "warn"
    ok("retention", "unschedule", "--dsn", old_events)
    check = job_check(old_events)
    assert (check["status"], check["message"]) == ("warn", "pg_cron is available, no job")


def test_verify_as_a_role_pg_cron_hides_the_job_from(pg: Server, cron: str, old_events: str,
                                                     make_role: MakeRole) -> None:
    """pg_cron shows a role only its own jobs: one scheduled by another role
    is unknown to it, not missing."""
    ok("retention", "schedule", "--dsn", old_events)
    reader = make_role()
    execute(old_events, f"GRANT auditsql_reader, pg_read_all_settings TO {reader}")
    dsn = pg.dsn(dbname(old_events), user=reader)
    check = job_check(dsn)
    assert (check["status"], check["message"]) == (
        "warn", "pg_cron is available but its job could not be read: "
                "permission denied for schema cron")
    with pg.connect(cron) as conn:
        conn.execute(f"GRANT USAGE ON SCHEMA cron TO {reader}")
    try:
        check = job_check(dsn)
        assert check["status"] == "warn"
        assert check["message"].startswith(
            f"pg_cron is available but its job could not be read: pg_cron shows role {reader}"
            " only the jobs it scheduled itself")
        assert "job unknown" in ok("retention", "status", "--dsn", dsn).stdout
    finally:
        with pg.connect(cron) as conn:
            conn.execute(f"REVOKE USAGE ON SCHEMA cron FROM {reader}")


def test_holding_again_says_since_when_and_why(installed: str) -> None:
    """docs/retention.md: holding an entity already held changes nothing and
    says since when and why it is held (exit 0)."""
    ok("retention", "hold", "public.t", "1", "--reason", "case 12", "--dsn", installed)
    since = scalar(installed, "SELECT to_char(placed_at AT TIME ZONE 'UTC',"
                              " 'YYYY-MM-DD HH24:MI:SS') FROM audit.legal_holds")
    holds = query(installed, "SELECT * FROM audit.legal_holds")
    again = ok("retention", "hold", "public.t", "1", "--reason", "other", "--dsn", installed)
    assert again.stderr == (
        f"public.t 1 is already under legal hold since {since} UTC: case 12\n")
    assert query(installed, "SELECT * FROM audit.legal_holds") == holds
