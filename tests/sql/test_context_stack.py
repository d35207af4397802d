"""Nested context: set_context, push_context and pop_context, and savepoints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from conftest import MakeRole, Server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .sqltools import Conn, attach, connect, dbname, events, expect_error, run, scalar
from .test_hijack import SEARCH_PATHS, plant_look_alikes, plant_temp_look_alikes, raising_function

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
    assert recorded(su, notes) == [
        ("inner", ("b", "b@example.com", "changed", None, None, None)),
        ("outer", ("a", "a@example.com", None, None, "ua-direct", None))]
    [inner, _] = events(su, notes)
    assert str(inner["ip_address"]) == "198.51.100.1"


def test_push_with_nothing_in_force_pops_back_to_nothing(su: Conn, notes: str) -> None:
    with su.transaction():
        push(su, ctx("a"))
        write(su, "a")
        su.execute("SELECT audit.pop_context()")
        write(su, "none")
    assert recorded(su, notes) == [("a", ctx("a")), ("none", NONE)]


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
    """What the context and the stack should be; savepoints keep copies."""

    context: Context = NONE
    stack: list[Context] = field(default_factory=list)
    savepoints: list[tuple[Context, list[Context]]] = field(default_factory=list)


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
        model.stack.append(model.context)
        model.context = tuple(stored(v) for v in ctx(str(actor)))
    elif operation == "pop" and model.stack:
        conn.execute("SELECT audit.pop_context()")
        model.context = model.stack.pop()
    elif operation == "set_context":
        conn.execute("SELECT audit.set_context(%s)", (actor,))
        model.context = (stored(actor),) + (None,) * 5
    elif operation == "set_actor":
        conn.execute("SELECT audit.set_actor(%s, 'x@example.com')", (actor,))
        model.context = (stored(actor), "x@example.com", None) + model.context[3:]
    elif operation == "set_config":
        conn.execute("SELECT set_config('auditsql.request_id', %s, true)", (actor,))
        model.context = model.context[:5] + (actor,)
    elif operation == "savepoint":
        conn.execute(f"SAVEPOINT s{len(model.savepoints)}")
        model.savepoints.append((model.context, list(model.stack)))
    elif operation == "rollback_to" and model.savepoints:
        conn.execute(f"ROLLBACK TO SAVEPOINT s{len(model.savepoints) - 1}")
        model.context, stack = model.savepoints[-1]
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
    step a write records the model's context (a value set with set_config
    is cut when it is recorded)."""
    model = Model()
    with su.transaction(force_rollback=True):
        for number, (operation, actor) in enumerate(operations):
            step(su, model, operation, actor)
            write(su, str(number))
            event = su.execute("SELECT * FROM audit.events WHERE entity_type = %s"
                               " ORDER BY id DESC LIMIT 1", (notes,)).fetchone()
            assert context_of(event) == tuple(stored(v) for v in model.context), (
                number, operation, actor)
        while model.stack:
            step(su, model, "pop", None)
        write(su, "end")
        event = su.execute("SELECT * FROM audit.events WHERE entity_type = %s"
                           " ORDER BY id DESC LIMIT 1", (notes,)).fetchone()
        assert context_of(event) == tuple(stored(v) for v in model.context)
        expect_error_in_savepoint(su, "SELECT audit.pop_context()")
