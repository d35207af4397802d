"""`auditsql snapshot` and `auditsql attach --baseline`: every row of a
table recorded once as a `snapshot` event, in committed batches, while
writers go on; the rows recorded per table on stdout, progress on stderr on
a terminal only, and one-line errors before anything is recorded."""

from __future__ import annotations

import json
import random
import threading
import time

import psycopg
import pytest

from auditsql.cli.output import err
from tests.cli.clitools import (
    error_line, execute, ok, query, run, run_inprocess, scalar, tracked, usage_error)
from tests.sql.sqltools import churn_accounts

TABLES = """
CREATE TABLE orders (id int PRIMARY KEY, status text);
INSERT INTO orders SELECT g, 's' || g FROM generate_series(1, 7) AS g;
CREATE TABLE "Odd [Name]" (id int PRIMARY KEY);
INSERT INTO "Odd [Name]" VALUES (1);
CREATE TABLE plain (id int PRIMARY KEY);
CREATE TABLE empty (id int PRIMARY KEY);
"""


@pytest.fixture
def db(installed_db: str) -> str:
    execute(installed_db, TABLES)
    return installed_db


@pytest.fixture
def attached(db: str) -> str:
    ok("attach", "--dsn", db, "orders", '"Odd [Name]"', "empty")
    return db


def snapshots(dsn: str) -> dict[str, list[str]]:
    """The snapshot events' entity ids, by table, in id order."""
    found: dict[str, list[str]] = {}
    for table, key in query(dsn, "SELECT entity_type, entity_id FROM audit.events"
                                 " WHERE action = 'snapshot' ORDER BY id"):
        found.setdefault(table, []).append(key)
    return found


def table_at_now(dsn: str, table: str) -> dict[str, object]:
    return dict(query(dsn, "SELECT entity_id, row FROM audit.table_at(%s::regclass,"
                           " clock_timestamp())", (table,)))


def state(dsn: str, table: str) -> dict[str, object]:
    return dict(query(dsn, f"SELECT t.id::text, to_jsonb(t) FROM {table} AS t"))


# --------------------------------------------------------------------------
# auditsql snapshot
# --------------------------------------------------------------------------


def test_snapshot_records_each_row_once_and_says_how_many(attached: str) -> None:
    res = ok("snapshot", "--dsn", attached, "orders", '"Odd [Name]"', "empty",
             "--batch-size", "3")
    assert res.stdout == ("recorded 7 rows of public.orders\n"
                          'recorded 1 row of public."Odd [Name]"\n'
                          "recorded 0 rows of public.empty\n")
    assert res.stderr == ""  # no progress off a terminal
    assert snapshots(attached) == {"public.orders": [str(i) for i in range(1, 8)],
                                   'public."Odd [Name]"': ["1"]}
    assert table_at_now(attached, "orders") == state(attached, "orders")


def test_snapshot_json(attached: str) -> None:
    res = ok("snapshot", "--dsn", attached, "orders", "empty", "--json")
    assert json.loads(res.stdout) == {"tables": [{"table": "public.orders", "recorded": 7},
                                                 {"table": "public.empty", "recorded": 0}]}
    assert res.stderr == ""


def test_snapshot_again_records_every_row_again(attached: str) -> None:
    ok("snapshot", "--dsn", attached, "orders")
    assert ok("snapshot", "--dsn", attached, "orders").stdout == (
        "recorded 7 rows of public.orders\n")
    assert len(snapshots(attached)["public.orders"]) == 14


def test_progress_on_a_terminal(attached: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(err, "_force_terminal", True)
    res = run_inprocess("snapshot", "--dsn", attached, "orders", '"Odd [Name]"',
                        "--batch-size", "2")
    assert res.code == 0, str(res)
    assert "snapshot of public.orders" in res.stderr and "7 rows" in res.stderr
    assert 'snapshot of public."Odd [Name]"' in res.stderr and "1 rows" in res.stderr
    # The data stays on stdout, as off a terminal.
    assert res.stdout == ('recorded 7 rows of public.orders\n'
                          'recorded 1 row of public."Odd [Name]"\n')


@pytest.mark.parametrize(("tables", "needles"), [
    (("orders", "missing"), ("table missing does not exist",)),
    (("orders", "plain"), ("table public.plain is not audited", "attach")),
])
def test_every_table_is_checked_before_any_is_read(
        attached: str, tables: tuple[str, ...], needles: tuple[str, ...]) -> None:
    error_line(run("snapshot", "--dsn", attached, *tables), 1, *needles)
    assert snapshots(attached) == {}


@pytest.mark.parametrize("size", ["0", "-5", "2147483648"])
def test_a_bad_batch_size(attached: str, size: str) -> None:
    error_line(run("snapshot", "--dsn", attached, "orders", "--batch-size", size), 2,
               f"invalid batch size {size}")
    assert snapshots(attached) == {}


def test_a_batch_size_that_is_no_number(attached: str) -> None:
    usage_error(run("snapshot", "--dsn", attached, "orders", "--batch-size", "many"),
                "--batch-size")


def test_snapshot_before_install(db: str) -> None:
    execute(db, "DROP SCHEMA audit CASCADE")
    error_line(run("snapshot", "--dsn", db, "orders"), 1, "not installed")


# --------------------------------------------------------------------------
# auditsql attach --baseline
# --------------------------------------------------------------------------


def test_attach_with_a_baseline(db: str) -> None:
    res = ok("attach", "--dsn", db, "orders", '"Odd [Name]"', "--baseline", "--batch-size", "2")
    assert res.stderr == 'attached public.orders\nattached public."Odd [Name]"\n'
    assert res.stdout == ('recorded 7 rows of public.orders\n'
                          'recorded 1 row of public."Odd [Name]"\n')
    assert snapshots(db) == {"public.orders": [str(i) for i in range(1, 8)],
                             'public."Odd [Name]"': ["1"]}
    # Attaching again without it records nothing more.
    assert ok("attach", "--dsn", db, "orders").stdout == ""
    assert len(snapshots(db)["public.orders"]) == 7


def test_attach_without_a_baseline_records_no_row(db: str) -> None:
    res = ok("attach", "--dsn", db, "orders")
    assert res.stdout == "" and snapshots(db) == {}


@pytest.mark.parametrize(("args", "code", "needles"), [
    (("orders", "--baseline", "--batch-size", "0"), 2, ("invalid batch size 0",)),
    (("orders", "--batch-size", "10"), 2, ("--batch-size applies only with --baseline",)),
    (("orders", "missing", "--baseline"), 1, ("table missing does not exist",)),
])
def test_attach_with_a_baseline_refused_attaches_nothing(
        db: str, args: tuple[str, ...], code: int, needles: tuple[str, ...]) -> None:
    error_line(run("attach", "--dsn", db, *args), code, *needles)
    assert tracked(db) == set()
    assert snapshots(db) == {}


def test_attach_with_a_baseline_while_writers_write(db: str) -> None:
    """Attach commits, then the batches run while three writers update,
    delete, insert and re-key rows: the log then knows the whole table as
    it is, and a row no writer touched has its snapshot and nothing else."""
    execute(db, "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);"
                "INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 3000) AS g")
    stop = threading.Event()
    failures: list[BaseException] = []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            with psycopg.connect(db, autocommit=True) as conn:
                while not stop.is_set():
                    try:
                        churn_accounts(conn, rng, "1")
                    except psycopg.errors.LockNotAvailable:
                        pass
                    time.sleep(0.001)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.2)
        res = ok("attach", "--dsn", db, "accounts", "--baseline", "--batch-size", "97")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not failures
    assert res.stdout.startswith("recorded ") and res.stdout.endswith(" rows of public.accounts\n")
    assert table_at_now(db, "accounts") == state(db, "accounts")
    keys = snapshots(db)["public.accounts"]
    assert int(res.stdout.split()[1]) == len(keys)
    untouched = scalar(db, """
        SELECT count(*) FROM accounts AS a
        WHERE (SELECT count(*) FROM audit.events AS e
               WHERE e.entity_type = 'public.accounts' AND e.entity_id = a.id::text) = 1
          AND EXISTS (SELECT FROM audit.events AS e WHERE e.entity_type = 'public.accounts'
                      AND e.entity_id = a.id::text AND e.action = 'snapshot')""")
    never_written = scalar(db, """
        SELECT count(*) FROM accounts AS a
        WHERE NOT EXISTS (SELECT FROM audit.events AS e WHERE e.entity_type = 'public.accounts'
                          AND (e.entity_id = a.id::text OR e.previous_entity_id = a.id::text)
                          AND e.action <> 'snapshot')""")
    assert untouched == never_written > 0


def test_snapshot_commits_one_batch_at_a_time_in_key_order(attached: str) -> None:
    # docs/cli.md: "One committed batch at a time, in key order". The rows
    # are stored out of key order (1 to 3 moved to the end of the heap).
    execute(attached, "UPDATE orders SET status = status || '!' WHERE id <= 3")
    ok("snapshot", "--dsn", attached, "orders", "--batch-size", "3")
    batches = query(attached, "SELECT array_agg(entity_id::int ORDER BY entity_id::int)"
                              " FROM audit.events WHERE action = 'snapshot'"
                              " GROUP BY txid ORDER BY min(id)")
    assert batches == [([1, 2, 3],), ([4, 5, 6],), ([7],)]


def test_snapshot_events_carry_the_context_in_force(attached: str) -> None:
    # docs/sql.md, audit.snapshot_batch: each row "recorded as a `snapshot`
    # event (...; the actor and request context of the transaction)".
    with psycopg.connect(attached) as conn:
        conn.execute("SELECT audit.set_context(actor_id => 'ops-7', email => 'ops@example.com',"
                     " role => 'support', request_id => 'snap-1')")
        assert conn.execute("SELECT recorded FROM audit.snapshot_batch('orders', NULL, 3)"
                            ).fetchone() == (3,)
    assert query(attached, "SELECT DISTINCT actor_id, actor_email, actor_role, request_id"
                           " FROM audit.events WHERE action = 'snapshot'") == [
        ("ops-7", "ops@example.com", "support", "snap-1")]
    assert snapshots(attached) == {"public.orders": ["1", "2", "3"]}
