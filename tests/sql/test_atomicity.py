"""A change and its events commit or roll back together."""

from __future__ import annotations

import psycopg
import pytest

from tests.sql.sqltools import (
    Conn,
    attach,
    brief,
    count_events,
    events,
    expect_error,
    quiet_ddl,
    run,
    scalar,
)


@pytest.fixture
def items(su: Conn) -> str:
    """An attached table ``items`` holding rows 1 and 2."""
    run(su, "CREATE TABLE items (id int PRIMARY KEY, v text)",
        "INSERT INTO items VALUES (1, 'a'), (2, 'b')")
    attach(su, "items")
    return "public.items"


def test_rolled_back_transaction_leaves_no_event(su: Conn, items: str) -> None:
    with pytest.raises(RuntimeError), su.transaction():
        run(su, "INSERT INTO items VALUES (3, 'c')", "UPDATE items SET v = 'x'",
            "DELETE FROM items WHERE id = 1", "TRUNCATE items")
        raise RuntimeError("roll back")
    assert events(su, items) == []
    assert scalar(su, "SELECT count(*) FROM items") == 2


def test_rolled_back_savepoint_leaves_no_event(su: Conn, items: str) -> None:
    with su.transaction():
        with pytest.raises(RuntimeError), su.transaction():
            su.execute("INSERT INTO items VALUES (3, 'c')")
            raise RuntimeError("roll back to savepoint")
        su.execute("INSERT INTO items VALUES (4, 'd')")
    assert brief(events(su, items)) == [("created", "4")]


@pytest.mark.parametrize("statement", [
    "INSERT INTO items VALUES (3, 'c')",
    "UPDATE items SET v = 'x' WHERE id = 1",
    "DELETE FROM items WHERE id = 1",
    "TRUNCATE items",
])
def test_failed_audit_insert_fails_the_statement(su: Conn, items: str, statement: str) -> None:
    su.execute("ALTER TABLE audit.events ADD CONSTRAINT refuse_rows"
               " CHECK (action NOT IN ('created', 'updated', 'deleted', 'truncated')) NOT VALID")
    before = count_events(su)
    expect_error(su, statement, sqlstate="23514", contains="refuse_rows")
    assert count_events(su) == before
    assert su.execute("SELECT id, v FROM items ORDER BY id").fetchall() == [
        {"id": 1, "v": "a"}, {"id": 2, "v": "b"}]


def test_raising_trigger_on_the_log_fails_the_write(su: Conn, items: str) -> None:
    quiet_ddl(su, """CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql
                     AS $$ BEGIN RAISE EXCEPTION 'audit write refused'; END $$""",
              "CREATE TRIGGER refuse BEFORE INSERT ON audit.events"
              " FOR EACH ROW EXECUTE FUNCTION public.refuse()")
    before = count_events(su)
    with (pytest.raises(psycopg.errors.RaiseException, match="audit write refused"),
          su.transaction()):
        su.execute("INSERT INTO items VALUES (3, 'c')")
    assert count_events(su) == before
    assert scalar(su, "SELECT count(*) FROM items") == 2
