"""`auditsql revert`: a row put back, a request and a transaction undone, on
a real database; the tables afterwards as they were, and the revert itself
in the log as the actor's ordinary changes."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import psycopg
import pytest

from auditsql import Audit, errors
from auditsql.revert import Actor
from tests.cli.clitools import error_line, execute, ok, query, run, scalar

# A schema, table and columns named to break hand-built SQL.
SCHEMA = 'we"ird'
TABLE = "Robert'); DROP TABLE x; --\nDROP TABLE y; --"
QUALIFIED = "\"we\"\"ird\".\"Robert'); DROP TABLE x; --\nDROP TABLE y; --\""
HOSTILE = f"""
CREATE SCHEMA "we""ird";
CREATE TABLE {QUALIFIED} (
    "i""d" int PRIMARY KEY,
    "v'al" text,
    "select" numeric(6, 2),
    tags text[],
    doc jsonb,
    at timestamptz,
    n int GENERATED ALWAYS AS ("i""d" * 2) STORED
);
"""
VALUES = [
    "it's \"quoted\" \\ back\\slash; DROP TABLE x; --",
    "$fn$ dollar $$ quoted",
    "naïve ☃ \u00e9",
    None,
]


def rows(dsn: str, table: str = QUALIFIED) -> Counter[str]:
    return Counter(r[0] for r in query(dsn, f"SELECT ROW(t.*)::text FROM {table} AS t"))


def run_as(dsn: str, request: str | None, *statements: str) -> int:
    """Run statements in one transaction under a request id; returns its txid."""
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT audit.set_context(actor_id => 'app', request_id => %s)", (request,))
        for statement in statements:
            conn.execute(statement)
        row = conn.execute("SELECT txid_current()").fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture
def hostile(installed_db: str) -> str:
    db = installed_db
    execute(db, HOSTILE)
    ok("attach", "--dsn", db, QUALIFIED)
    with psycopg.connect(db) as conn:
        for i, value in enumerate(VALUES, start=1):
            conn.execute(f"INSERT INTO {QUALIFIED} VALUES (%s, %s, %s, %s, %s, now())",
                         (i, value, i * 1.25, [value, "x,y}"], psycopg.types.json.Jsonb(
                             {"k": value, "nested": [1, {"a": value}]})))
    return db


def hostile_workload(db: str, request: str) -> int:
    return run_as(
        db, request,
        f"""UPDATE {QUALIFIED} SET "v'al" = 'changed '' again', "select" = 9.99, tags = NULL
            WHERE "i""d" = 1""",
        f"""UPDATE {QUALIFIED} SET "i""d" = 20 WHERE "i""d" = 2""",
        f"""DELETE FROM {QUALIFIED} WHERE "i""d" = 3""",
        f"""INSERT INTO {QUALIFIED} ("i""d", "v'al") VALUES (3, 'a new row 3')""",
        f"""INSERT INTO {QUALIFIED} ("i""d", "v'al", doc) VALUES (5, 'five', '{{"x": "'';"}}')""",
        f"""UPDATE {QUALIFIED} SET doc = doc || '{{"more": "\\\\"}}' WHERE "i""d" = 4""",
    )


def test_revert_a_request_brings_back_the_earlier_state(hostile: str) -> None:
    before = rows(hostile)
    hostile_workload(hostile, "req-1")
    assert rows(hostile) != before
    printed = ok("revert", "--dsn", hostile, "--request-id", "req-1")
    assert printed.stdout.startswith("BEGIN;\n") and printed.stdout.endswith("COMMIT;\n")
    assert rows(hostile) != before  # printing changes nothing
    done = ok("revert", "--dsn", hostile, "--request-id", "req-1", "--apply",
              "--actor", "ops-7", "--actor-email", "ops@example.com", "--actor-role", "support")
    assert rows(hostile) == before
    txid = int(done.stderr.split()[-1])
    assert done.stderr == f"reverted 6 changes in transaction {txid}\n"
    # The revert is in the log: the actor's own ordinary changes, newest undone first.
    assert query(hostile, "SELECT action, entity_id, actor_id, actor_email, actor_role "
                          "FROM audit.events WHERE txid = %s ORDER BY id", (txid,)) == [
        ("updated", "4", "ops-7", "ops@example.com", "support"),
        ("deleted", "5", "ops-7", "ops@example.com", "support"),
        ("deleted", "3", "ops-7", "ops@example.com", "support"),
        ("created", "3", "ops-7", "ops@example.com", "support"),
        ("updated", "2", "ops-7", "ops@example.com", "support"),
        ("updated", "1", "ops-7", "ops@example.com", "support"),
    ]
    assert scalar(hostile, "SELECT previous_entity_id FROM audit.events WHERE txid = %s "
                           "AND entity_id = '2'", (txid,)) == "20"


def test_the_printed_sql_does_the_same(hostile: str) -> None:
    before = rows(hostile)
    txid = hostile_workload(hostile, "req-2")
    script = ok("revert", "--dsn", hostile, "--txid", str(txid), "--actor", "ops").stdout
    assert "SELECT \"audit\".set_context(actor_id => 'ops'," in script
    execute(hostile, script)
    assert rows(hostile) == before
    assert scalar(hostile, "SELECT count(*) FROM audit.events WHERE actor_id = 'ops'") == 6


def test_revert_a_transaction_then_replay_rebuilds_the_table(hostile: str) -> None:
    from tests.property.oracle import REPLAY_SQL
    before = rows(hostile)
    txid = hostile_workload(hostile, "req-3")
    run_as(hostile, "other", f"""INSERT INTO {QUALIFIED} ("i""d") VALUES (99)""")
    ok("revert", "--dsn", hostile, "--txid", str(txid), "--apply", "--actor", "ops")
    assert rows(hostile) == before + Counter(
        r[0] for r in query(hostile, f"""SELECT ROW(t.*)::text FROM {QUALIFIED} AS t
                                          WHERE "i""d" = 99"""))
    # Replaying the whole log, the revert included, rebuilds the table as it is.
    execute(hostile, REPLAY_SQL)
    execute(hostile, f"CREATE TABLE replay.shadow (LIKE {QUALIFIED} INCLUDING GENERATED)")
    entity_type = scalar(hostile, "SELECT format('%%I.%%I', %s::text, %s::text)",
                         (SCHEMA, TABLE))
    execute(hostile, f"SELECT replay.apply('{entity_type.replace(chr(39), chr(39) * 2)}', "
                     "'replay.shadow', 0)")
    assert rows(hostile, "replay.shadow") == rows(hostile)


def test_revert_a_row_to_a_time(hostile: str) -> None:
    def row(key: int) -> list[tuple[str]]:
        return query(hostile, f"""SELECT ROW(t.*)::text FROM {QUALIFIED} AS t
                                   WHERE "i""d" = %s""", (key,))
    run_as(hostile, "a", f"""UPDATE {QUALIFIED} SET "v'al" = 'first' WHERE "i""d" = 1""")
    at = scalar(hostile, "SELECT clock_timestamp()")
    then = row(1)
    run_as(hostile, "b", f"""UPDATE {QUALIFIED} SET "v'al" = 'second' WHERE "i""d" = 1""")
    run_as(hostile, "c", f"""UPDATE {QUALIFIED} SET "i""d" = 10 WHERE "i""d" = 1""")
    run_as(hostile, "d", f"""DELETE FROM {QUALIFIED} WHERE "i""d" = 10""",
           f"""INSERT INTO {QUALIFIED} ("i""d", "v'al") VALUES (10, 'another')""")
    run_as(hostile, "e", f"""UPDATE {QUALIFIED} SET "select" = 1 WHERE "i""d" = 2""")
    expected = rows(hostile) - Counter(r[0] for r in row(10)) + Counter(r[0] for r in then)
    ok("revert", "--dsn", hostile, QUALIFIED, "10", "--to", at.isoformat(), "--apply",
       "--actor", "ops")
    assert row(1) == then and row(10) == []
    # Only that row: the later change of another row stays.
    assert rows(hostile) == expected


def test_a_row_created_after_the_time_is_deleted(hostile: str) -> None:
    at = scalar(hostile, "SELECT clock_timestamp()")
    run_as(hostile, "x", f"""INSERT INTO {QUALIFIED} ("i""d") VALUES (7)""")
    script = ok("revert", "--dsn", hostile, QUALIFIED, "7", "--to", at.isoformat()).stdout
    assert "DELETE FROM" in script and script.count(";\n") == 3
    nothing = ok("revert", "--dsn", hostile, QUALIFIED, "7", "--to", "2999-01-01")
    assert nothing.stdout == "" and nothing.stderr == "nothing to revert\n"


def test_a_conflict_is_refused_unless_forced(hostile: str) -> None:
    run_as(hostile, "r1", f"""UPDATE {QUALIFIED} SET "v'al" = 'by r1' WHERE "i""d" = 1""",
           f"""UPDATE {QUALIFIED} SET "v'al" = 'by r1' WHERE "i""d" = 2""")
    run_as(hostile, "r2", f"""UPDATE {QUALIFIED} SET "select" = 5 WHERE "i""d" = 1""")
    later = scalar(hostile, "SELECT id FROM audit.events WHERE request_id = 'r2'")
    now = rows(hostile)
    for args in ((), ("--apply", "--actor", "ops")):
        res = run("revert", "--dsn", hostile, "--request-id", "r1", *args)
        assert res.code == 1 and res.stdout == "", str(res)
        lines = res.stderr.splitlines()
        assert lines[0].startswith(f"conflict: {' '.join(QUALIFIED.split())} 1: "
                                   f"changed again by event {later} (updated) after event ")
        assert lines[1].startswith("error: ") and "nothing reverted" in lines[1]
        assert len(lines) == 2
        assert rows(hostile) == now
    ok("revert", "--dsn", hostile, "--request-id", "r1", "--apply", "--actor", "ops",
       "--force")
    assert query(hostile, f"""SELECT "i""d", "v'al", "select" FROM {QUALIFIED}
                              WHERE "i""d" IN (1, 2) ORDER BY 1""") == [
        (1, VALUES[0], 5), (2, VALUES[1], 2.5)]


def test_a_row_not_as_the_log_says_is_a_conflict(hostile: str) -> None:
    run_as(hostile, "r1", f"""DELETE FROM {QUALIFIED} WHERE "i""d" = 4""")
    # Put back behind the log's back: re-inserting it would collide.
    execute(hostile, f"""ALTER TABLE {QUALIFIED} DISABLE TRIGGER USER;
                         INSERT INTO {QUALIFIED} ("i""d") VALUES (4);
                         ALTER TABLE {QUALIFIED} ENABLE TRIGGER USER""")
    res = run("revert", "--dsn", hostile, "--request-id", "r1", "--apply", "--actor", "ops")
    error_line(res, 1, "duplicate key")


def test_an_update_finding_no_row_is_a_conflict(installed_db: str) -> None:
    db = installed_db
    execute(db, "CREATE TABLE t (id int PRIMARY KEY, v text)")
    ok("attach", "--dsn", db, "t")
    execute(db, "INSERT INTO t VALUES (1, 'a')")
    run_as(db, "r1", "UPDATE t SET v = 'b' WHERE id = 1")
    execute(db, "ALTER TABLE t DISABLE TRIGGER USER; DELETE FROM t; "
                "ALTER TABLE t ENABLE TRIGGER USER")
    res = run("revert", "--dsn", db, "--request-id", "r1", "--apply", "--actor", "ops")
    assert res.code == 1
    assert res.stderr.splitlines()[0].startswith("conflict: public.t 1: undoing event ")
    assert "found 0 rows where the log says 1" in res.stderr
    forced = ok("revert", "--dsn", db, "--request-id", "r1", "--apply", "--actor", "ops",
                "--force")
    assert forced.stderr.startswith("forced: undoing event ")


@pytest.fixture
def policies(installed_db: str) -> str:
    db = installed_db
    execute(db, "CREATE TABLE users (id int PRIMARY KEY, email text, pw text, seen int)")
    ok("attach", "--dsn", db, "users", "--redact", "pw", "--exclude", "seen")
    execute(db, "INSERT INTO users VALUES (1, 'a@example.com', 'h1', 1)")
    return db


@pytest.mark.parametrize(("statement", "needle"), [
    ("DELETE FROM users", "column pw of public.users is redacted"),
    ("UPDATE users SET pw = 'h2'", "column pw of public.users is redacted"),
])
def test_a_redacted_value_cannot_be_restored(policies: str, statement: str,
                                             needle: str) -> None:
    run_as(policies, "r1", statement)
    now = query(policies, "SELECT * FROM users")
    for args in ((), ("--apply", "--actor", "ops")):
        error_line(run("revert", "--dsn", policies, "--request-id", "r1", *args), 1, needle,
                   "no value to restore")
        assert query(policies, "SELECT * FROM users") == now


def test_an_excluded_column_cannot_be_restored(installed_db: str) -> None:
    execute(installed_db, "CREATE TABLE visits (id int PRIMARY KEY, seen int)")
    ok("attach", "--dsn", installed_db, "visits", "--exclude", "seen")
    execute(installed_db, "INSERT INTO visits VALUES (1, 1)")
    run_as(installed_db, "r1", "DELETE FROM visits")
    error_line(run("revert", "--dsn", installed_db, "--request-id", "r1"), 1,
               "column seen of public.visits is excluded from auditing")


def test_changes_to_other_columns_are_undone(policies: str) -> None:
    run_as(policies, "r1", "UPDATE users SET email = 'b@example.com', seen = 2")
    ok("revert", "--dsn", policies, "--request-id", "r1", "--apply", "--actor", "ops")
    # The excluded column changed unseen by the log, and stays as it is.
    assert query(policies, "SELECT email, pw, seen FROM users") == [("a@example.com", "h1", 2)]


def test_erased_values_cannot_be_restored(policies: str) -> None:
    run_as(policies, "r1", "UPDATE users SET email = 'b@example.com'")
    ok("erase", "--dsn", policies, "public.users", "1", "--column", "email", "--reason", "gdpr")
    error_line(run("revert", "--dsn", policies, "--request-id", "r1"), 1,
               "column email of public.users was erased")


@pytest.mark.parametrize(("args", "needles"), [
    ((), ("name what to revert",)),
    (("t",), ("needs its table, its id and --to",)),
    (("t", "1"), ("needs its table, its id and --to",)),
    (("t", "1", "--to", "soon"), ("invalid time 'soon'",)),
    (("--request-id", "r", "--txid", "5"), ("name what to revert",)),
    (("t", "1", "--to", "1d", "--txid", "5"), ("name what to revert",)),
    (("--txid", "0"), ("invalid transaction id",)),
    (("--request-id", ""), ("invalid request id",)),
    (("--request-id", "r", "--apply"), ("--apply needs --actor",)),
    (("--request-id", "r", "--actor-email", "x@y"), ("go with --actor",)),
    (("--request-id", "r", "--apply", "--actor", ""), ("invalid actor",)),
])
def test_bad_values_are_usage_errors(installed_db: str, args: tuple[str, ...],
                                     needles: tuple[str, ...]) -> None:
    execute(installed_db, "CREATE TABLE t (id int PRIMARY KEY)")
    error_line(run("revert", "--dsn", installed_db, *args), 2, *needles)


def test_unknown_or_unaudited_table(installed_db: str) -> None:
    error_line(run("revert", "--dsn", installed_db, "nosuch", "1", "--to", "1d"), 1,
               "nosuch", "does not exist")
    execute(installed_db, "CREATE TABLE t (id int PRIMARY KEY)")
    ok("attach", "--dsn", installed_db, "t")
    execute(installed_db, "INSERT INTO t VALUES (1)")
    ok("detach", "--dsn", installed_db, "t")
    error_line(run("revert", "--dsn", installed_db, "t", "1", "--to", "1d"), 1,
               "public.t is not audited")


def test_nothing_to_revert(installed_db: str) -> None:
    res = ok("revert", "--dsn", installed_db, "--request-id", "none-such")
    assert res.stdout == "" and res.stderr == "nothing to revert\n"


def test_from_python(hostile: str) -> None:
    before = rows(hostile)
    txid = hostile_workload(hostile, "py")
    with Audit(hostile) as audit:
        plan = audit.revert_sql(request_id="py")
        assert [s.action for s in plan.steps] == ["updated", "created", "created", "deleted",
                                                   "updated", "updated"]
        assert plan.conflicts == [] and plan.script.count("\n-- event ") == 6
        assert rows(hostile) != before
        done = audit.revert(txid=txid, actor=Actor("py-ops"))
        assert done.applied and done.txid is not None
        assert rows(hostile) == before
        with pytest.raises(errors.RevertConflict) as caught:
            audit.revert(txid=txid, actor=Actor("py-ops"))
        assert caught.value.conflicts[0].later_event_id is not None
        with pytest.raises(errors.InvalidValue):
            audit.revert_sql(request_id="x", txid=1)
        found = audit.log(request_id="py", newest_first=False)
        assert [e.action for e in found] == ["updated", "updated", "deleted", "created",
                                             "created", "updated"]
        assert audit.event(found[0].id) == found[0]
        assert found[0].occurred_at <= datetime.now(timezone.utc)


def test_identity_columns_come_back_with_their_values(installed_db: str) -> None:
    db = installed_db
    execute(db, "CREATE TABLE ids (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text)")
    ok("attach", "--dsn", db, "ids")
    execute(db, "INSERT INTO ids (v) VALUES ('a'), ('b')")
    before = rows(db, "ids")
    run_as(db, "r1", "DELETE FROM ids WHERE id = 2")
    script = ok("revert", "--dsn", db, "--request-id", "r1").stdout
    assert "OVERRIDING SYSTEM VALUE" in script
    ok("revert", "--dsn", db, "--request-id", "r1", "--apply", "--actor", "ops")
    assert rows(db, "ids") == before


def test_a_column_dropped_since_cannot_be_set_back(installed_db: str) -> None:
    db = installed_db
    execute(db, "CREATE TABLE t (id int PRIMARY KEY, gone text, kept text)")
    ok("attach", "--dsn", db, "t")
    execute(db, "INSERT INTO t VALUES (1, 'a', 'a')")
    run_as(db, "r1", "UPDATE t SET gone = 'b'")
    execute(db, "ALTER TABLE t DROP COLUMN gone")
    error_line(run("revert", "--dsn", db, "--request-id", "r1"), 1,
               "column gone of public.t, which no longer exists")


def test_a_key_taken_again_is_a_conflict(installed_db: str) -> None:
    db = installed_db
    execute(db, "CREATE TABLE t (id int PRIMARY KEY, v text)")
    ok("attach", "--dsn", db, "t")
    execute(db, "INSERT INTO t VALUES (1, 'a')")
    run_as(db, "r1", "DELETE FROM t")
    run_as(db, "r2", "INSERT INTO t VALUES (1, 'new')")
    res = run("revert", "--dsn", db, "--request-id", "r1")
    assert res.code == 1 and "(created) after event" in res.stderr, str(res)


def test_a_revert_is_itself_reverted_by_its_transaction(hostile: str) -> None:
    hostile_workload(hostile, "req-4")
    after_workload = rows(hostile)
    done = ok("revert", "--dsn", hostile, "--request-id", "req-4", "--apply", "--actor", "ops")
    txid = done.stderr.split()[-1]
    ok("revert", "--dsn", hostile, "--txid", txid, "--apply", "--actor", "ops")
    assert rows(hostile) == after_workload


def test_the_python_example_of_the_docs_runs(installed_db: str, capsys) -> None:  # noqa: ANN001
    from tests.docs.doctools import REPO, blocks
    page = REPO / "docs" / "revert.md"
    [example] = [b.text for b in blocks([page]) if b.lang == "python"]
    execute(installed_db, "CREATE TABLE orders (id int PRIMARY KEY)")
    ok("attach", "--dsn", installed_db, "orders")
    run_as(installed_db, "req-7f3a", "INSERT INTO orders VALUES (1001)")
    exec(compile(example, f"{page}:python", "exec"), {"DSN": installed_db})  # noqa: S102
    assert query(installed_db, "SELECT * FROM orders") == []
    assert query(installed_db, "SELECT actor_id, actor_email FROM audit.events "
                               "WHERE action = 'deleted'") == [("ops-7", "ops@example.com")]
    assert "DELETE FROM" in capsys.readouterr().out


def test_numbers_keep_their_scale(installed_db: str) -> None:
    db = installed_db
    execute(db, "CREATE TABLE m (id int PRIMARY KEY, n numeric, f float8)")
    ok("attach", "--dsn", db, "m")
    execute(db, "INSERT INTO m VALUES (1, 0.00, 0.1), (2, 1.50, 1e300), (3, 12345678901234567890.10, -0.0)")
    before = rows(db, "m")
    run_as(db, "r1", "UPDATE m SET n = NULL, f = NULL WHERE id = 1", "DELETE FROM m WHERE id > 1")
    ok("revert", "--dsn", db, "--request-id", "r1", "--apply", "--actor", "ops")
    assert rows(db, "m") == before


@pytest.fixture
def table_t(installed_db: str) -> str:
    """An audited table t (id, v) holding rows 1, 2 and 3, v = 'a'."""
    execute(installed_db, "CREATE TABLE t (id int PRIMARY KEY, v text)")
    ok("attach", "--dsn", installed_db, "t")
    execute(installed_db, "INSERT INTO t VALUES (1, 'a'), (2, 'a'), (3, 'a')")
    return installed_db


def test_a_truncate_is_undone_by_inserting_the_rows_again(table_t: str) -> None:
    # docs/revert.md: "`deleted`, `truncated` | `INSERT` of the row as it was".
    before = rows(table_t, "t")
    run_as(table_t, "r1", "TRUNCATE t")
    assert scalar(table_t, "SELECT count(*) FROM audit.events WHERE request_id = 'r1'"
                           " AND action = 'truncated'") == 3
    assert ok("revert", "--dsn", table_t, "--request-id", "r1").stdout.count("INSERT INTO") == 3
    done = ok("revert", "--dsn", table_t, "--request-id", "r1", "--apply", "--actor", "ops")
    assert rows(table_t, "t") == before
    assert query(table_t, "SELECT action, entity_id FROM audit.events WHERE txid = %s"
                          " ORDER BY entity_id", (int(done.stderr.split()[-1]),)) == [
        ("created", "1"), ("created", "2"), ("created", "3")]


def test_rows_deleted_or_rekeyed_since_are_conflicts(table_t: str) -> None:
    # docs/revert.md: changed again "by an event outside it (updated,
    # deleted, its key changed, ...)": each listed, then one error line.
    run_as(table_t, "r1", "UPDATE t SET v = 'b' WHERE id IN (1, 2)")
    undone = dict(query(table_t, "SELECT entity_id, id FROM audit.events"
                                 " WHERE request_id = 'r1'"))
    run_as(table_t, "r2", "DELETE FROM t WHERE id = 1")
    run_as(table_t, "r3", "UPDATE t SET id = 20 WHERE id = 2")
    deleted, rekeyed = (scalar(table_t, "SELECT id FROM audit.events WHERE request_id = %s",
                               (r,)) for r in ("r2", "r3"))
    now = rows(table_t, "t")
    for args in ((), ("--apply", "--actor", "ops")):
        res = run("revert", "--dsn", table_t, "--request-id", "r1", *args)
        assert res.code == 1 and res.stdout == "", str(res)
        *conflicts, last = res.stderr.splitlines()
        assert conflicts == [
            f"conflict: public.t 1: changed again by event {deleted} (deleted)"
            f" after event {undone['1']}",
            f"conflict: public.t 2: changed again by event {rekeyed} (updated)"
            f" after event {undone['2']}"], str(res)
        assert last.startswith("error: ") and "nothing reverted" in last
        assert rows(table_t, "t") == now


def test_a_conflict_met_while_applying_rolls_back_the_whole_revert(table_t: str) -> None:
    # docs/revert.md: "the whole revert is rolled back"; "Nothing is changed
    # when anything fails". Undone newest first, row 2's update is set back
    # before the statement for row 1 finds no row.
    run_as(table_t, "r1", "UPDATE t SET v = 'b' WHERE id = 1", "UPDATE t SET v = 'b' WHERE id = 2")
    execute(table_t, "ALTER TABLE t DISABLE TRIGGER USER; DELETE FROM t WHERE id = 1; "
                     "ALTER TABLE t ENABLE TRIGGER USER")
    now, logged = rows(table_t, "t"), scalar(table_t, "SELECT count(*) FROM audit.events")
    res = run("revert", "--dsn", table_t, "--request-id", "r1", "--apply", "--actor", "ops")
    assert res.code == 1 and res.stdout == "", str(res)
    conflict, last = res.stderr.splitlines()
    assert conflict.startswith("conflict: public.t 1: undoing event ")
    assert conflict.endswith("(updated) found 0 rows where the log says 1")
    assert last.startswith("error: ")
    assert rows(table_t, "t") == now
    assert scalar(table_t, "SELECT count(*) FROM audit.events") == logged


def test_the_printed_script_starts_with_the_actor_and_names_each_event(table_t: str) -> None:
    # docs/revert.md: "Each statement is preceded by a comment naming the
    # event it undoes. With `--actor`, the script starts by naming that actor
    # with `audit.set_context`." and "Events are undone newest first".
    run_as(table_t, "r1", "UPDATE t SET v = 'b' WHERE id = 1", "DELETE FROM t WHERE id = 2",
           "INSERT INTO t VALUES (4, 'd')")
    undone = query(table_t, "SELECT id, action, entity_id FROM audit.events"
                            " WHERE request_id = 'r1' ORDER BY id DESC")
    lines = ok("revert", "--dsn", table_t, "--request-id", "r1", "--actor", "ops").stdout \
        .splitlines()
    assert lines[0] == "BEGIN;" and lines[-1] == "COMMIT;"
    assert lines[1].startswith("SELECT \"audit\".set_context(actor_id => 'ops',")
    statement = {"updated": "UPDATE ", "deleted": "INSERT INTO ", "created": "DELETE FROM "}
    assert [(c, s.split('"public"')[0]) for c, s in zip(lines[2:-1:2], lines[3:-1:2])] == [
        (f"-- event {i}: {action} public.t {key}", statement[action])
        for i, action, key in undone]


def test_a_forced_insert_colliding_with_a_row_fails_the_whole_revert(table_t: str) -> None:
    # docs/revert.md: with `--force`, "an insert colliding with a row now
    # holding the key fails the whole revert with the database's error
    # (exit 1)"; "Nothing is changed when anything fails". Undone newest
    # first, row 1's update is set back before the insert of row 2 collides.
    run_as(table_t, "r1", "DELETE FROM t WHERE id = 2", "UPDATE t SET v = 'b' WHERE id = 1")
    run_as(table_t, "r2", "INSERT INTO t VALUES (2, 'new')")
    now, logged = rows(table_t, "t"), scalar(table_t, "SELECT count(*) FROM audit.events")
    res = run("revert", "--dsn", table_t, "--request-id", "r1", "--apply", "--actor", "ops",
              "--force")
    assert res.code == 1 and res.stdout == "", str(res)
    assert res.stderr.splitlines()[-1].startswith("error: ") and "duplicate key" in res.stderr
    assert rows(table_t, "t") == now
    assert scalar(table_t, "SELECT count(*) FROM audit.events") == logged
