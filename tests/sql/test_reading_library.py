"""auditsql.Audit's reading methods: plain data back, typed errors."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, timedelta, timezone

import pytest

from auditsql import Audit, errors
from auditsql.reading import Change, Event

from tests.sql.sqltools import Conn, attach, column, run, scalar


@pytest.fixture
def users(su: Conn) -> Conn:
    run(su, "CREATE TABLE users (id int PRIMARY KEY, email text, role text)",
        "INSERT INTO users VALUES (1, 'old@x', 'member')")
    attach(su, "users")
    with su.transaction():
        su.execute("SELECT audit.set_context('u-42', 'ada@x', 'admin', NULL, NULL, 'req-1')")
        su.execute("INSERT INTO users VALUES (7, 'e@x', 'member')")
        su.execute("UPDATE users SET role = 'owner' WHERE id = 7")
    run(su, "UPDATE users SET id = 8 WHERE id = 7")
    return su


def test_reading_methods_return_plain_data(users: Conn, installed_db: str) -> None:
    now = datetime.now(timezone.utc)
    with Audit(installed_db) as audit:
        history = audit.history("users", "8")
        assert [(e.action, e.entity_id) for e in history] == [
            ("created", "7"), ("updated", "7"), ("updated", "8")]
        assert isinstance(history[0], Event) and history[0].after == {
            "id": 7, "email": "e@x", "role": "member"}
        assert audit.row_at("users", "8", now + timedelta(seconds=5)) == {
            "id": 8, "email": "e@x", "role": "owner"}
        assert audit.row_at("users", "7", now + timedelta(seconds=5)) is None
        assert audit.table_at("public.users", now + timedelta(seconds=5)) == {
            "8": {"id": 8, "email": "e@x", "role": "owner"}}
        created, change = audit.changes("users", "7", column="role")
        assert (created.action, created.old_value, created.new_value) == ("created", None, "member")
        assert isinstance(change, Change) and change.action == "updated"
        assert (change.old_value, change.new_value, change.is_admin, change.actor_id) == (
            "member", "owner", True, "u-42")
        by_request = audit.events(request_id="req-1")
        assert [e.action for e in by_request] == ["created", "updated"]
        assert [e.id for e in audit.events(txid=by_request[0].txid)] == [e.id for e in by_request]
        assert [e.id for e in audit.events(actor_id="u-42", since=now - timedelta(hours=1))] == [
            e.id for e in by_request]
        seen: list[int] = []
        assert audit.snapshot("users", batch_size=1, progress=seen.append) == 2
        assert seen == [1, 2, 2]
        assert audit.row_at("users", "1", datetime.now(timezone.utc) + timedelta(seconds=5)) == {
            "id": 1, "email": "old@x", "role": "member"}


def test_reading_errors_are_typed(users: Conn, installed_db: str) -> None:
    run(users, "CREATE TABLE plain (id int PRIMARY KEY)")
    now = datetime.now(timezone.utc)
    with Audit(installed_db) as audit:
        with pytest.raises(errors.NoSuchTable):
            audit.row_at("missing", "1", now)
        with pytest.raises(errors.NotAudited, match="table public.plain is not audited"):
            audit.history("plain", "1")
        with pytest.raises(errors.NotAudited):
            audit.snapshot("plain")
        with pytest.raises(errors.InvalidEntityId, match="'abc' is not an id of public.users"):
            audit.row_at("users", "abc", now)
        with pytest.raises(errors.InvalidEntityId):
            audit.history("users", "")
        with pytest.raises(errors.InvalidValue):
            audit.events(request_id="r", txid=1)
        with pytest.raises(errors.InvalidValue):
            audit.events(actor_id="u-42")
        with pytest.raises(errors.InvalidValue):
            audit.snapshot("users", batch_size=0)
        with pytest.raises(errors.InvalidValue, match="^invalid batch size 2147483648: "):
            audit.snapshot("users", batch_size=2**31)
        assert audit.require_audited("users", "public.users") == ["public.users"] * 2
        with pytest.raises(errors.NotAudited, match="^table public.plain is not audited"):
            audit.require_audited("users", "plain")
        with pytest.raises(errors.NoSuchTable, match="^table missing does not exist$"):
            audit.require_audited("users", "missing")
    assert scalar(users, "SELECT count(*) FROM audit.events WHERE action = 'snapshot'") == 0


def test_a_snapshot_that_fails_keeps_the_batches_committed_before(users: Conn,
                                                                  installed_db: str) -> None:
    """docs/library.md: "`snapshot` commits a batch at a time, so a failure
    keeps the batches before it": progress failing after the first batch
    raises, and that batch's snapshot event is in the log for every
    session."""
    class Stop(Exception):
        pass

    def stop(rows: int) -> None:
        raise Stop(rows)

    with Audit(installed_db) as audit, pytest.raises(Stop) as stopped:
        audit.snapshot("users", batch_size=1, progress=stop)
    assert stopped.value.args == (1,)
    assert column(users, "SELECT entity_id FROM audit.events WHERE action = 'snapshot'") == ["1"]


def view_columns(conn: Conn, view: str) -> list[str]:
    """The columns of ``view``, in their order."""
    return column(conn, "SELECT attname::text FROM pg_attribute WHERE attrelid = %s::regclass"
                        " AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (view,))


def test_change_and_event_are_the_columns_of_their_views(su: Conn) -> None:
    """docs/library.md: `Change` is the columns of `audit.changes` and
    `Event` those of `audit.history`, in the views' order."""
    assert [f.name for f in fields(Change)] == view_columns(su, "audit.changes")
    assert [f.name for f in fields(Event)] == view_columns(su, "audit.history")
