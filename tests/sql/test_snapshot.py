"""Snapshots (docs/reading.md#baseline): every row of an audited table
recorded once, in batches that lock only their own rows, while writers go
on; a snapshot never stands in for a write that came after it."""

from __future__ import annotations

import random
import threading
import time

import pytest

from tests.sql.sqltools import Conn, attach, churn_accounts, connect, expect_error, run, scalar


def state(conn: Conn, table: str) -> dict[str, object]:
    return {r["k"]: r["row"] for r in conn.execute(
        f"SELECT t.id::text AS k, to_jsonb(t) AS row FROM {table} AS t")}


def table_at_now(conn: Conn, table: str) -> dict[str, object]:
    return {r["entity_id"]: r["row"] for r in conn.execute(
        "SELECT entity_id, row FROM audit.table_at(%s::regclass, clock_timestamp())", (table,))}


@pytest.fixture
def accounts(su: Conn) -> Conn:
    run(su, "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL, note text)",
        "INSERT INTO accounts SELECT g, 0, 'n' || g FROM generate_series(1, 3000) AS g")
    attach(su, "accounts")
    return su


def test_every_row_once_while_writers_write(accounts: Conn, installed_db: str) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            with connect(installed_db) as conn:
                while not stop.is_set():
                    churn_accounts(conn, rng, "1, 'new'")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.2)
        accounts.execute("CALL audit.snapshot('accounts', 97)")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not errors
    assert table_at_now(accounts, "accounts") == state(accounts, "accounts")
    # Rows no writer touched have exactly one event: their snapshot.
    untouched = scalar(accounts, """
        SELECT count(*) FROM accounts AS a
        WHERE (SELECT count(*) FROM audit.events AS e
               WHERE e.entity_type = 'public.accounts' AND e.entity_id = a.id::text) = 1
          AND NOT EXISTS (SELECT FROM audit.events AS e WHERE e.entity_type = 'public.accounts'
                          AND e.entity_id = a.id::text AND e.action <> 'snapshot')""")
    never_written = scalar(accounts, """
        SELECT count(*) FROM accounts AS a
        WHERE NOT EXISTS (SELECT FROM audit.events AS e WHERE e.entity_type = 'public.accounts'
                          AND (e.entity_id = a.id::text OR e.previous_entity_id = a.id::text)
                          AND e.action <> 'snapshot')""")
    assert untouched == never_written > 0


def test_a_write_in_flight_is_waited_for(accounts: Conn, installed_db: str) -> None:
    """A row an uncommitted transaction changed is recorded as that
    transaction leaves it, after its event: read without a lock, the old
    row would be recorded with a later event id than the write's."""
    with connect(installed_db, autocommit=False) as writer:
        writer.execute("UPDATE accounts SET balance = 42 WHERE id = 5")
        done: list[object] = []
        snap = threading.Thread(target=lambda: done.append(scalar(
            connect(installed_db), "SELECT recorded FROM audit.snapshot_batch('accounts', NULL, 10)")))
        snap.start()
        deadline = time.monotonic() + 30
        while scalar(accounts, "SELECT count(*) FROM pg_stat_activity"
                     " WHERE wait_event_type = 'Lock' AND query LIKE '%%snapshot_batch%%'") == 0:
            assert time.monotonic() < deadline, "the snapshot did not wait for the writer"
            time.sleep(0.05)
        writer.commit()
        snap.join(timeout=30)
    assert done == [10]
    row = scalar(accounts, "SELECT audit.row_at('accounts', '5', clock_timestamp())")
    assert row == {"id": 5, "balance": 42, "note": "n5"}


def test_a_batch_locks_only_its_rows(accounts: Conn, installed_db: str) -> None:
    with connect(installed_db, autocommit=False) as snap:
        assert scalar(snap, "SELECT next_after FROM audit.snapshot_batch('accounts', NULL, 100)") == {"id": 100}
        run(accounts, "SET lock_timeout = '2s'",
            "UPDATE accounts SET balance = 1 WHERE id = 101")  # past the batch: no wait
        expect_error(accounts, "UPDATE accounts SET balance = 1 WHERE id = 100", sqlstate="55P03")
        snap.commit()


def test_attach_with_a_baseline(su: Conn) -> None:
    run(su, "CREATE TABLE items (id int PRIMARY KEY, name text, secret text, hidden text)",
        "INSERT INTO items SELECT g, 'i' || g, 's', 'h' FROM generate_series(1, 25000) AS g")
    su.execute("SELECT audit.attach('items', p_exclude => '{hidden}', p_redact => '{secret}',"
               " baseline => true)")
    assert scalar(su, "SELECT count(*) FROM audit.events WHERE action = 'snapshot'") == 25000
    assert scalar(su, "SELECT audit.row_at('items', '20001', now())") == {
        "id": 20001, "name": "i20001", "secret": "[redacted]"}
    su.execute("SELECT audit.attach('items')")  # no baseline: nothing more
    assert scalar(su, "SELECT count(*) FROM audit.events WHERE action = 'snapshot'") == 25000


def test_baseline_is_named_as_callers_write_it(su: Conn) -> None:
    """attach('t', baseline => true): the one attach, its last parameter
    baseline; the old name p_baseline is no parameter of it."""
    run(su, "CREATE TABLE named (id int PRIMARY KEY, baseline boolean)",
        "INSERT INTO named VALUES (1, false), (2, true)")
    su.execute("SELECT audit.attach('named', baseline => true)")
    assert scalar(su, "SELECT count(*) FROM audit.events"
                      " WHERE entity_type = 'public.named' AND action = 'snapshot'") == 2
    assert scalar(su, "SELECT array_agg(p.proargnames[pg_catalog.array_length(p.proargnames, 1)])"
                      " FROM pg_proc AS p"
                      " WHERE p.pronamespace = 'audit'::regnamespace AND p.proname = 'attach'") == [
        "baseline"]
    expect_error(su, "SELECT audit.attach('named', p_baseline => true)", sqlstate="42883")


def test_snapshot_refusals(accounts: Conn, app_conn: Conn) -> None:
    run(accounts, "CREATE TABLE plain (id int PRIMARY KEY)")
    expect_error(accounts, "CALL audit.snapshot('plain')", sqlstate="55000",
                 contains="is not audited")
    expect_error(accounts, "SELECT * FROM audit.snapshot_batch('accounts', NULL, 0)",
                 sqlstate="22023", contains="invalid batch size 0")
    expect_error(accounts, "SELECT * FROM audit.snapshot_batch('accounts', '[1]', 10)",
                 sqlstate="22023")
    # Not the operator role, not the owner: no snapshot, no event.
    before = scalar(accounts, "SELECT count(*) FROM audit.events")
    expect_error(app_conn, "SELECT * FROM audit.snapshot_batch('public.accounts', NULL, 10)",
                 sqlstate="42501")
    expect_error(app_conn, "SELECT audit.snapshot_rows('public.accounts', '[{\"id\": 1}]')",
                 sqlstate="42501")
    assert scalar(accounts, "SELECT count(*) FROM audit.events") == before
    # An application may not log a snapshot event of its own.
    expect_error(accounts, "SELECT audit.log_event('snapshot')", sqlstate="42501")
