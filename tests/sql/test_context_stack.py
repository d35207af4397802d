"""Nested context: set_context, push_context and pop_context, savepoints, and
the Python helpers inside a transaction that is already open."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

import auditsql
from tests.harness.roles import MakeRole
from tests.harness.server import Server
from tests.sql.sqltools import (
    Conn,
    attach,
    connect,
    dbname,
    events,
    expect_error,
    run,
    scalar,
)

from .test_hijack import (
    SEARCH_PATHS,
    plant_look_alikes,
    plant_temp_look_alikes,
    raising_function,
)

FIELDS = ("actor_id", "actor_email", "actor_role", "ip_address_raw", "user_agent", "request_id")
Context = tuple[str | None, ...]
NONE: Context = (None,) * 6


def ctx(actor: str) -> Context:
    """A whole context for actor *actor*: each field names it."""
    return (actor, f"{actor}@example.com", f"role-{actor}", f"ip-{actor}", f"ua-{actor}",
            f"req-{actor}")


def context_of(event: dict[str, Any]) -> Context:
    """An event's context, in set_context's order (ip_address as given)."""
    return tuple(event[f] for f in FIELDS)


@pytest.fixture
def notes(su: Conn) -> str:
    """An attached table ``notes``, writable by anyone."""
    run(su, "CREATE TABLE notes (id serial PRIMARY KEY, label text)",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO PUBLIC",
        "GRANT USAGE ON SEQUENCE notes_id_seq TO PUBLIC")
    attach(su, "notes")
    return "public.notes"


def write(conn: psycopg.Connection[Any], label: str) -> None:
    conn.execute("INSERT INTO notes (label) VALUES (%s)", (label,))


def recorded(su: Conn, notes: str) -> list[tuple[str, Context]]:
    """(label, context) of each row written, in order."""
    return [(e["after"]["label"], context_of(e)) for e in events(su, notes)]


def push(conn: psycopg.Connection[Any], context: Context) -> None:
    conn.execute("SELECT audit.push_context(%s, %s, %s, %s, %s, %s)", context)


# -- SQL ---------------------------------------------------------------------------


def test_set_context_sets_the_whole_context_in_one_call(su: Conn, notes: str) -> None:
    with su.transaction():
        su.execute("SELECT audit.set_context(%s, %s, %s, %s, %s, %s)", ctx("a"))
        write(su, "a")
        su.execute("SELECT audit.set_context('b')")
        write(su, "b only")
        su.execute("SELECT audit.set_context(request_id => 'r-9')")
        write(su, "request only")
        su.execute("SELECT audit.set_context()")
        write(su, "none")
    write(su, "after")
    assert recorded(su, notes) == [
        ("a", ctx("a")), ("b only", ("b",) + (None,) * 5),
        ("request only", (None,) * 5 + ("r-9",)), ("none", NONE), ("after", NONE)]


def test_pop_restores_the_pushed_over_context_at_three_levels(su: Conn, notes: str) -> None:
    with su.transaction():
        su.execute("SELECT audit.set_context(%s, %s, %s, %s, %s, %s)", ctx("a"))
        write(su, "a1")
        push(su, ctx("b"))
        write(su, "b1")
        push(su, ctx("c"))
        write(su, "c1")
        su.execute("SELECT audit.pop_context()")
        write(su, "b2")
        su.execute("SELECT audit.pop_context()")
        write(su, "a2")
    assert recorded(su, notes) == [("a1", ctx("a")), ("b1", ctx("b")), ("c1", ctx("c")),
                                   ("b2", ctx("b")), ("a2", ctx("a"))]


def test_push_saves_the_context_however_it_was_set(su: Conn, notes: str) -> None:
    """set_actor, set_request and set_config directly: pop brings back what
    was in force, and what a pushed block changes goes with it."""
    with su.transaction():
        su.execute("SELECT audit.set_actor('a', 'a@example.com')")
        su.execute("SELECT set_config('auditsql.user_agent', 'ua-direct', true)")
        push(su, ctx("b"))
        su.execute("SELECT audit.set_request('198.51.100.1')")
        su.execute("SELECT set_config('auditsql.actor_role', 'changed', true)")
        write(su, "inner")
        su.execute("SELECT audit.pop_context()")
        write(su, "outer")
    # A setting changed with set_config after the last helper call is not
    # seen: capture reads auditsql.context, which the helper stored before
    # it (docs/sql.md#context). Not the role inside; not the user agent
    # outside, before the push or after the pop.
    assert recorded(su, notes) == [
        ("inner", ("b", "b@example.com", "role-b", None, None, None)),
        ("outer", ("a", "a@example.com", None, None, None, None))]
    [inner, _] = events(su, notes)
    assert str(inner["ip_address"]) == "198.51.100.1"
    with su.transaction():
        su.execute("SELECT audit.set_actor('a', 'a@example.com')")
        su.execute("SELECT set_config('auditsql.user_agent', 'ua-direct', true)")
        su.execute("SELECT audit.set_actor('a', 'a@example.com')")  # a helper: now it counts
        push(su, ctx("b"))
        su.execute("SELECT audit.pop_context()")
        write(su, "later")
    assert recorded(su, notes)[-1] == ("later", ("a", "a@example.com", None, None, "ua-direct", None))


def test_a_pushed_block_leaves_a_stored_context_as_it_was(su: Conn, notes: str) -> None:
    """What capture reads before the push, it reads after the pop: a context
    set by hand in auditsql.context (read as it is, uncut), or the six
    settings where nothing is stored."""
    long = "h" * 2000
    with su.transaction():
        su.execute("SELECT set_config('auditsql.actor_id', 'raw', true)")
        su.execute("SELECT set_config('auditsql.context', ROW(%s, 'h@example.com', NULL, NULL, NULL,"
                   " NULL, 'req-h', NULL)::audit.context::text, true)", (long,))
        write(su, "before")
        push(su, ctx("b"))
        su.execute("SELECT audit.pop_context()")
        write(su, "after")
    hand = (long, "h@example.com", None, None, None, "req-h")
    assert recorded(su, notes) == [("before", hand), ("after", hand)]
    with su.transaction():
        su.execute("SELECT set_config('auditsql.actor_id', 'raw', true)")
        push(su, ctx("b"))
        su.execute("SELECT audit.pop_context()")
        su.execute("SELECT set_config('auditsql.actor_email', 'raw@example.com', true)")
        write(su, "settings")
    assert recorded(su, notes)[-1] == ("settings", ("raw", "raw@example.com", None, None, None, None))


def test_push_with_nothing_in_force_pops_back_to_nothing(su: Conn, notes: str) -> None:
    with su.transaction():
        push(su, ctx("a"))
        write(su, "a")
        su.execute("SELECT audit.pop_context()")
        write(su, "none")
    assert recorded(su, notes) == [("a", ctx("a")), ("none", NONE)]


def test_the_stack_is_a_json_array_in_a_setting_the_last_saved_first(su: Conn) -> None:
    keys = ("actor_id", "actor_email", "actor_role", "ip_address", "user_agent", "request_id")
    with su.transaction():
        su.execute("SELECT audit.set_context(%s, %s, %s, %s, %s, %s)", ctx("a"))
        push(su, ctx("b"))
        push(su, ctx("c"))
        stack = scalar(su, "SELECT current_setting('auditsql.context_stack')::jsonb")
    assert [tuple(saved[k] for k in keys) for saved in stack] == [ctx("b"), ctx("a")]


def test_push_with_nulls_clears_the_whole_context_inside_the_block(su: Conn, notes: str) -> None:
    outer = ("a", "a@example.com", "role-a", "203.0.113.1", "ua-a", "req-a")
    with su.transaction():
        su.execute("SELECT audit.set_context(%s, %s, %s, %s, %s, %s)", outer)
        su.execute("SELECT audit.push_context(NULL, NULL, NULL, NULL, NULL, NULL)")
        write(su, "inside")
        su.execute("SELECT audit.pop_context()")
        write(su, "after")
    inside, after = events(su, notes)
    assert context_of(inside) == NONE and inside["ip_address"] is None
    assert context_of(after) == outer[:3] + (None,) + outer[4:]  # a valid address: raw NULL
    assert str(after["ip_address"]) == outer[3]


def test_pop_without_push_is_refused_in_a_sentence(su: Conn, notes: str) -> None:
    error = expect_error(su, "SELECT audit.pop_context()", sqlstate="55000")
    assert str(error).startswith("auditsql: pop_context has no saved context to restore:")
    with su.transaction():
        su.execute("SELECT audit.set_context(%s, %s, %s, %s, %s, %s)", ctx("a"))
        push(su, ctx("b"))
        su.execute("SELECT audit.pop_context()")
        expect_error_in_savepoint(su, "SELECT audit.pop_context()")
        write(su, "a")
    assert recorded(su, notes) == [("a", ctx("a"))]


def test_the_stack_ends_with_the_transaction(su: Conn, notes: str) -> None:
    with su.transaction():
        push(su, ctx("a"))
        push(su, ctx("b"))
    assert scalar(su, "SELECT coalesce(current_setting('auditsql.context_stack', true), '')") == ""
    expect_error(su, "SELECT audit.pop_context()", sqlstate="55000")
    write(su, "next")
    assert recorded(su, notes) == [("next", NONE)]


def test_rollback_to_savepoint_reverts_push_and_context_together(su: Conn, notes: str) -> None:
    with su.transaction():
        su.execute("SELECT audit.set_context(%s, %s, %s, %s, %s, %s)", ctx("a"))
        push(su, ctx("b"))
        su.execute("SAVEPOINT inner_block")
        push(su, ctx("c"))
        write(su, "c, rolled back")
        su.execute("ROLLBACK TO SAVEPOINT inner_block")
        write(su, "b")
        su.execute("SELECT audit.pop_context()")  # pops b's push, not c's
        write(su, "a")
        expect_error_in_savepoint(su, "SELECT audit.pop_context()")
    assert recorded(su, notes) == [("b", ctx("b")), ("a", ctx("a"))]


def expect_error_in_savepoint(conn: Conn, statement: str) -> None:
    """*statement* fails with 55000; the transaction goes on."""
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState), conn.transaction():
        conn.execute(statement)


def test_any_role_may_push_and_pop(pg: Server, installed_db: str, su: Conn,
                                   make_role: MakeRole, notes: str) -> None:
    nobody = make_role()
    with connect(pg.dsn(dbname(installed_db), user=nobody)) as conn, conn.transaction():
        conn.execute("SELECT audit.set_context(%s, %s, %s, %s, %s, %s)", ctx("a"))
        push(conn, ctx("b"))
        write(conn, "b")
        conn.execute("SELECT audit.pop_context()")
        write(conn, "a")
    assert recorded(su, notes) == [("b", ctx("b")), ("a", ctx("a"))]


# What the context functions call that test_hijack's look-alikes leave out.
CONTEXT_LOOK_ALIKES = (
    ("length", "text", "integer"),
    ("left", "text, integer", "text"),
    ("convert_from", "bytea, name", "text"),
    ("decode", "text, text", "bytea"),
    ("getdatabaseencoding", "", "name"),
    ("jsonb_build_object", "VARIADIC text[]", "jsonb"),
    ("jsonb_build_array", "VARIADIC jsonb[]", "jsonb"),
)
CONTEXT_LOOK_ALIKE_OPERATORS = (
    ("<=", "integer", "integer", "boolean"),
    ("->", "jsonb", "integer", "jsonb"),
    ("-", "jsonb", "integer", "jsonb"),
)


@pytest.mark.parametrize("search_path", SEARCH_PATHS)
def test_the_context_functions_ignore_look_alikes(su: Conn, app_conn: Conn, notes: str,
                                                  search_path: str) -> None:
    """Look-alikes of what they call, ahead of pg_catalog in the caller's
    search path, never run: the functions pin theirs."""
    app_conn.execute("CREATE SCHEMA evil")
    plant_look_alikes(app_conn, "evil")
    plant_temp_look_alikes(app_conn)
    for name, args, returns in CONTEXT_LOOK_ALIKES:
        app_conn.execute(raising_function("evil", name, args, returns))
    for number, (symbol, left, right, returns) in enumerate(CONTEXT_LOOK_ALIKE_OPERATORS):
        app_conn.execute(raising_function("evil", f"ctx_op_{number}", f"{left}, {right}", returns))
        app_conn.execute(f"CREATE OPERATOR evil.{symbol} (leftarg = {left}, rightarg = {right},"
                         f" function = evil.ctx_op_{number})")
    app_conn.execute(f"SET search_path = {search_path}")
    long = "é" * 1100
    with app_conn.transaction():
        app_conn.execute("SELECT audit.set_context(%s, %s, %s, %s, %s, %s)", ctx("a"))
        push(app_conn, ctx(long))
        app_conn.execute("SELECT audit.set_actor(%s)", (long,))
        app_conn.execute("SELECT audit.set_request(%s)", (long,))
        app_conn.execute("SELECT audit.pop_context()")
        app_conn.execute("INSERT INTO public.notes (label) VALUES ('a')")
    app_conn.execute("RESET search_path")
    assert recorded(su, notes) == [("a", ctx("a"))]


# -- the stack against a model ---------------------------------------------------------


@dataclass
class Model:
    """What the six settings, the context the helpers stored in
    auditsql.context (None until one runs) and the stack should be;
    savepoints keep copies."""

    context: Context = NONE
    kept: Context | None = None
    stack: list[tuple[Context, Context | None]] = field(default_factory=list)
    savepoints: list[tuple[Context, Context | None, list[tuple[Context, Context | None]]]] = field(
        default_factory=list)

    def keep(self) -> None:
        """A helper ran: it stores the settings as they are, cut."""
        self.kept = tuple(stored(v) for v in self.context)

    def recorded(self) -> Context:
        """What an event records: the stored context, else the settings."""
        return self.kept if self.kept is not None else tuple(stored(v) for v in self.context)


ACTORS = st.sampled_from(["a", "b", "c", "é" * 1030])
OPERATIONS = st.lists(st.one_of(
    st.tuples(st.just("push"), ACTORS),
    st.tuples(st.just("pop"), st.none()),
    st.tuples(st.just("set_context"), ACTORS),
    st.tuples(st.just("set_actor"), ACTORS),
    st.tuples(st.just("set_config"), ACTORS),
    st.tuples(st.just("savepoint"), st.none()),
    st.tuples(st.just("rollback_to"), st.none()),
    st.tuples(st.just("release"), st.none()),
), max_size=25)


def stored(value: str | None) -> str | None:
    """A value as set_context stores it."""
    return value if value is None or len(value) <= 1024 else value[:1023] + "…"


def step(conn: Conn, model: Model, operation: str, actor: str | None) -> None:
    """Run *operation* on the server and on the model (invalid ones are skipped)."""
    if operation == "push":
        push(conn, ctx(str(actor)))
        model.stack.append((model.context, model.kept))
        model.context = tuple(stored(v) for v in ctx(str(actor)))
        model.keep()
    elif operation == "pop" and model.stack:
        conn.execute("SELECT audit.pop_context()")
        model.context, model.kept = model.stack.pop()
    elif operation == "set_context":
        conn.execute("SELECT audit.set_context(%s)", (actor,))
        model.context = (stored(actor),) + (None,) * 5
        model.keep()
    elif operation == "set_actor":
        conn.execute("SELECT audit.set_actor(%s, 'x@example.com')", (actor,))
        model.context = (stored(actor), "x@example.com", None) + model.context[3:]
        model.keep()
    elif operation == "set_config":
        conn.execute("SELECT set_config('auditsql.request_id', %s, true)", (actor,))
        model.context = model.context[:5] + (actor,)
    elif operation == "savepoint":
        conn.execute(f"SAVEPOINT s{len(model.savepoints)}")
        model.savepoints.append((model.context, model.kept, list(model.stack)))
    elif operation == "rollback_to" and model.savepoints:
        conn.execute(f"ROLLBACK TO SAVEPOINT s{len(model.savepoints) - 1}")
        model.context, model.kept, stack = model.savepoints[-1]
        model.stack = list(stack)
    elif operation == "release" and model.savepoints:
        conn.execute(f"RELEASE SAVEPOINT s{len(model.savepoints) - 1}")
        model.savepoints.pop()


@settings(max_examples=40, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(operations=OPERATIONS)
def test_the_stack_follows_savepoints(su: Conn, notes: str,
                                      operations: list[tuple[str, str | None]]) -> None:
    """Any mix of pushes, pops, the other setters and savepoints: after each
    step a write records the model's context: the one the last helper
    stored, else the settings (a value set with set_config is cut when it
    is recorded); a set_config after a helper counts from the next one."""
    model = Model()
    with su.transaction(force_rollback=True):
        for number, (operation, actor) in enumerate(operations):
            step(su, model, operation, actor)
            write(su, str(number))
            event = su.execute("SELECT * FROM audit.events WHERE entity_type = %s"
                               " ORDER BY id DESC LIMIT 1", (notes,)).fetchone()
            assert context_of(event) == model.recorded(), (
                number, operation, actor)
        while model.stack:
            step(su, model, "pop", None)
        write(su, "end")
        event = su.execute("SELECT * FROM audit.events WHERE entity_type = %s"
                           " ORDER BY id DESC LIMIT 1", (notes,)).fetchone()
        assert context_of(event) == model.recorded()
        expect_error_in_savepoint(su, "SELECT audit.pop_context()")


# -- Python ------------------------------------------------------------------------------


@dataclass
class Counting:
    """Statements the helpers send, counted by a cursor class."""

    statements: list[str] = field(default_factory=list)


def counting_cursor(counter: Counting) -> type[psycopg.Cursor[Any]]:
    class CountingCursor(psycopg.Cursor[Any]):
        def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:
            text = query.as_string(self) if isinstance(query, sql.Composable) else str(query)
            counter.statements.append(text)
            return super().execute(query, params, **kw)
    return CountingCursor


@pytest.fixture
def app_connection(installed_db: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection as an application holds one: not in autocommit, so
    its first statement opens a transaction (Django's ATOMIC_REQUESTS)."""
    with psycopg.connect(installed_db) as conn:
        yield conn


def kwargs(actor: str) -> dict[str, str]:
    """audit_context's arguments for ``ctx(actor)``."""
    return dict(zip(("actor_id", "email", "role", "ip_address", "user_agent", "request_id"),
                    ctx(actor), strict=True))


def test_nested_audit_context_restores_the_outer_one_at_three_levels(
        app_connection: psycopg.Connection[Any], su: Conn, notes: str) -> None:
    """Writes at every level, before and after each inner block, and an inner
    block that raises: its writes and its context roll back, the outer
    context stays."""
    conn = app_connection
    write(conn, "open")  # the transaction is open before any context
    with auditsql.audit_context(conn, **kwargs("a")):
        write(conn, "a before")
        with auditsql.audit_context(conn, **kwargs("b")):
            write(conn, "b before")
            with auditsql.audit_context(conn, **kwargs("c")):
                write(conn, "c")
            write(conn, "b between")
            with pytest.raises(RuntimeError), auditsql.audit_context(conn, **kwargs("x")):
                write(conn, "x, rolled back")
                raise RuntimeError("boom")
            write(conn, "b after")
        write(conn, "a after")
        with pytest.raises(RuntimeError), auditsql.audit_context(conn, **kwargs("y")):
            with auditsql.audit_context(conn, **kwargs("z")):
                write(conn, "z, rolled back with y")
            write(conn, "y, rolled back")
            raise RuntimeError("boom")
        write(conn, "a last")
    write(conn, "close")
    conn.commit()
    assert recorded(su, notes) == [
        ("open", NONE), ("a before", ctx("a")), ("b before", ctx("b")), ("c", ctx("c")),
        ("b between", ctx("b")), ("b after", ctx("b")), ("a after", ctx("a")),
        ("a last", ctx("a")), ("close", NONE)]


def test_audit_context_in_its_own_transaction_nests_too(installed_db: str, su: Conn,
                                                        notes: str) -> None:
    with psycopg.connect(installed_db, autocommit=True) as conn:
        with auditsql.audit_context(conn, **kwargs("a")):
            write(conn, "a before")
            with auditsql.audit_context(conn, **kwargs("b")):
                write(conn, "b")
            write(conn, "a after")
        write(conn, "after")
    assert recorded(su, notes) == [("a before", ctx("a")), ("b", ctx("b")),
                                   ("a after", ctx("a")), ("after", NONE)]


def test_one_statement_per_context_change(installed_db: str, su: Conn, notes: str) -> None:
    counter = Counting()
    with psycopg.connect(installed_db, autocommit=True,
                         cursor_factory=counting_cursor(counter)) as conn:
        with auditsql.audit_context(conn, **kwargs("a")):
            with auditsql.audit_context(conn, **kwargs("b")):
                pass
    assert [s.split("(")[0] for s in counter.statements] == [
        'SELECT "audit"."set_context"', 'SELECT "audit"."push_context"',
        'SELECT "audit"."pop_context"']
    assert all("::text" in s for s in counter.statements[:2])


def test_log_event_context_ends_with_the_call(app_connection: psycopg.Connection[Any],
                                              su: Conn, notes: str) -> None:
    """An actor or request given to log_event inside an open transaction
    names that event only; a part not given is the transaction's."""
    conn = app_connection
    with auditsql.audit_context(conn, **kwargs("b")):
        auditsql.log_event(conn, "login", actor_id="a", email="a@example.com")
        auditsql.log_event(conn, "logout", request_id=7)
        auditsql.log_event(conn, "session_revoked")
        write(conn, "b")
    conn.commit()
    logged = {e["action"]: context_of(e)
              for e in events(su, None, actions=["login", "logout", "session_revoked"])}
    assert logged == {
        "login": ("a", "a@example.com", None) + ctx("b")[3:],
        "logout": ctx("b")[:3] + (None, None, "7"),
        "session_revoked": ctx("b"),
    }
    assert recorded(su, notes) == [("b", ctx("b"))]


def test_python_helpers_on_a_cursor(installed_db: str, su: Conn, notes: str) -> None:
    """set_context, push_context and pop_context for code that manages its
    own transactions; ids of any scalar type."""
    with psycopg.connect(installed_db) as conn, conn.cursor() as cur:
        auditsql.set_context(cur, actor_id=42, email="a@example.com", request_id=7)
        write(conn, "42")
        auditsql.push_context(cur, actor_id=Decimal("9.50"), role="service")
        write(conn, "9.50")
        auditsql.pop_context(cur)
        write(conn, "42 again")
        conn.commit()
    assert recorded(su, notes) == [
        ("42", ("42", "a@example.com", None, None, None, "7")),
        ("9.50", ("9.50", None, "service", None, None, None)),
        ("42 again", ("42", "a@example.com", None, None, None, "7"))]
