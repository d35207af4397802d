"""Every SQL example of README.md and docs/*.md runs, and returns what the
text around it says.

Each ```sql block is registered in EXAMPLES below under a marker (text that
occurs in that block alone) with its scenario: the setup it needs (tables,
an installation, attached tables, writes made as named actors), who runs
it, the rows its statements return, and the follow-up queries that show a
block which only sets things did what it says. Statements run one by one
(split by sqlparse), on autocommit connections whose values all load as
text, in UTC, so that expected rows read as psql prints them. A block
nobody registered fails ``test_every_sql_block_is_registered`` with its file
and line.

To register a new block, add one entry to EXAMPLES::

    Registered("README.md", "SELECT audit.set_context(", Sql(
        setup=(ORDERS, "auditsql install", "auditsql attach orders"),
        user="app",                                  # who runs the block (default: superuser)
        users={"GRANT": DSN_USER},                   # statements run by someone else
        returns={"FROM audit.events": [("u-42",)]},  # text in a statement -> its rows
        then=[("SELECT ... FROM audit.events", [(...)])],  # follow-up query -> its rows
    )),

``ANY`` matches any value (times, ids).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from unittest.mock import ANY

import psycopg
import pytest
import sqlparse

from tests.docs.doctools import (
    DSN_USER,
    READER,
    Block,
    Ctx,
    Registered,
    Step,
    match,
    written_by,
)

MODULE = "tests/docs/test_docs_sql.py"

Rows = list[tuple[Any, ...]]


@dataclass(frozen=True)
class Sql:
    """The scenario of one block."""

    setup: tuple[Step, ...] = ()
    user: str = DSN_USER
    users: Mapping[str, str] = field(default_factory=dict)
    returns: Mapping[str, Rows] = field(default_factory=dict)
    then: Sequence[tuple[str, Rows]] = ()


def needs_role(name: str) -> Step:
    """Setup step: the login role *name* exists (an example grants to it)."""
    def step(ctx: Ctx) -> None:
        ctx.role(name)
    return step


ORDERS = "CREATE TABLE orders (id bigint PRIMARY KEY, status text NOT NULL DEFAULT 'new')"
EVENTS_RAW = ("CREATE TABLE events_raw (source text NOT NULL, seq bigint NOT NULL, payload jsonb,"
              " UNIQUE (source, seq))")
USERS = ("CREATE TABLE users (id bigint PRIMARY KEY, email text, role text,"
         " password_hash text, updated_at timestamptz)")

ROOT = ("u-1", "root@example.com", "admin")
ADA = ("u-42", "ada@example.com", "admin")
SAM = ("u-9", "sam@example.com", "member")

# User 7's life, as the README's questions ask about it: created, promoted
# by an admin, its email changed by the same admin, its role changed again
# by a member, deleted.
USER_7 = (
    written_by(ROOT, "INSERT INTO users (id, email, role) VALUES (7, 'eve@example.com', 'member')"),
    written_by(ADA, "UPDATE users SET role = 'owner' WHERE id = 7"),
    written_by(ADA, "UPDATE users SET email = 'eve@corp.example' WHERE id = 7"),
    written_by(SAM, "UPDATE users SET role = 'auditor' WHERE id = 7"),
    written_by(ROOT, "SELECT audit.set_request('198.51.100.4', 'curl/8.5', 'req-del')",
               "DELETE FROM users WHERE id = 7"),
)


def user_7(email: str, role: str) -> str:
    """User 7's row as jsonb text (keys in jsonb order)."""
    return (f'{{"id": 7, "role": "{role}", "email": "{email}", "updated_at": null,'
            ' "password_hash": null}')


EXAMPLES: list[Registered[Sql]] = [
    Registered("docs/integrations/typescript.md", "SELECT audit.set_context('u-42'", Sql(
        # The transaction a TypeScript client sends: its write carries the context.
        setup=(ORDERS, "auditsql install", "auditsql attach orders",
               "INSERT INTO orders VALUES (1001, 'new')"),
        then=[(
            "SELECT actor_id, actor_email, actor_role, ip_address, user_agent, request_id,"
            " after ->> 'status' FROM audit.events WHERE action = 'updated'",
            [("u-42", "ada@example.com", "admin", "203.0.113.7", "Mozilla/5.0 ...",
              "req-9f1c", "paid")],
        )],
    )),
    Registered("README.md", "SELECT audit.attach('public.orders');", Sql(
        setup=(ORDERS, EVENTS_RAW, "auditsql install"),
        then=[
            ("SELECT relid::regclass::text, id_columns FROM audit.tables",
             [("events_raw", "{source,seq}")]),
            ("SELECT action, entity_type FROM audit.events"
             " WHERE action IN ('attached', 'detached') ORDER BY id",
             [("attached", "public.orders"), ("attached", "public.events_raw"),
              ("detached", "public.orders")]),
        ],
    )),
    Registered("README.md", "UPDATE orders SET status = 'refunded' WHERE id = 1001;", Sql(
        setup=(ORDERS, "auditsql install", "auditsql attach orders",
               "INSERT INTO orders VALUES (1001, 'paid')"),
        then=[(
            "SELECT actor_id, actor_email, actor_role, admin, ip_address, user_agent,"
            " request_id, before, after ->> 'status' FROM audit.events WHERE action = 'updated'",
            [("u-42", "ada@example.com", "admin", "t", "203.0.113.7", "Mozilla/5.0 ...",
              "req-9f1c", '{"id": 1001, "status": "paid"}', "refunded")],
        )],
    )),
    Registered("README.md", "SELECT audit.push_context('billing'", Sql(
        # The insert is billing's; the updates on either side are u-42's.
        setup=(ORDERS, "CREATE TABLE invoices (order_id bigint PRIMARY KEY)",
               "INSERT INTO orders VALUES (1001, 'new')", "auditsql install",
               "auditsql attach orders invoices"),
        then=[("SELECT entity_type, action, after ->> 'status', actor_id, actor_role"
               " FROM audit.events WHERE category = 'data' ORDER BY id",
               [("public.orders", "updated", "paid", "u-42", "member"),
                ("public.invoices", "created", None, "billing", "service"),
                ("public.orders", "updated", "invoiced", "u-42", "member")])],
    )),
    Registered("README.md", "SELECT audit.log_event('login'", Sql(
        setup=("auditsql install", needs_role("app")),
        user="app",
        users={"GRANT auditsql_writer TO app": DSN_USER},
        returns={"log_event": [(ANY,)]},
        then=[(
            "SELECT category, action, entity_type, entity_id, actor_id, actor_email, actor_role,"
            " admin, ip_address, user_agent, request_id, after, db_user"
            " FROM audit.events WHERE action = 'login'",
            [("auth", "login", "user", "42", "u-42", "ada@example.com", "member", "f",
              "203.0.113.7", "Mozilla/5.0 ...", "req-9f1c", '{"method": "password"}', "app")],
        )],
    )),
    Registered("README.md", "-- Who modified this record?", Sql(
        setup=(USERS, "auditsql install", "auditsql attach users --on-change role=role_changed",
               *USER_7),
        returns={
            "-- Who modified this record?": [
                (ANY, "u-1", "root@example.com", "admin", "created", None, None,
                 user_7("eve@example.com", "member")),
                (ANY, "u-42", "ada@example.com", "admin", "updated", "{role}",
                 user_7("eve@example.com", "member"), user_7("eve@example.com", "owner")),
                (ANY, "u-42", "ada@example.com", "admin", "updated", "{email}",
                 user_7("eve@example.com", "owner"), user_7("eve@corp.example", "owner")),
                (ANY, "u-9", "sam@example.com", "member", "updated", "{role}",
                 user_7("eve@corp.example", "owner"), user_7("eve@corp.example", "auditor")),
                (ANY, "u-1", "root@example.com", "admin", "deleted", None,
                 user_7("eve@corp.example", "auditor"), None),
            ],
            "-- When was it deleted?": [
                (ANY, "u-1", "root@example.com", "req-del", user_7("eve@corp.example", "auditor")),
            ],
            "-- Which admin changed the user's role?": [
                (ANY, "u-42", "ada@example.com", "member", "owner"),
            ],
            # The on-change policy adds the auth event between the two updates.
            "-- What did actor u-42 do": [
                (ANY, "updated", "public.users", "7"),
                (ANY, "role_changed", "public.users", "7"),
                (ANY, "updated", "public.users", "7"),
            ],
        },
    )),
    Registered("README.md", "WHERE action = 'role_changed' AND admin", Sql(
        setup=(USERS, "auditsql install", "auditsql attach users --on-change role=role_changed",
               *USER_7),
        returns={"role_changed": [(ANY, "u-42", "ada@example.com", "member", "owner")]},
    )),
    Registered("README.md", "-- What did row 7 look like yesterday?", Sql(
        # A row created two days ago, as the log recorded it then.
        setup=(USERS, "auditsql install", "auditsql attach users",
               "INSERT INTO audit.events (category, action, occurred_at, entity_type, entity_id, after)"
               " VALUES ('data', 'created', now() - interval '2 days', 'public.users', '7', '"
               + user_7("eve@example.com", "member") + "')",
               "INSERT INTO users (id, email, role) VALUES (8, 'x@example.com', 'member')"),
        returns={"row_at": [(user_7("eve@example.com", "member"),)]},
    )),
    Registered("docs/reading.md", "-- Every change to user 7's role", Sql(
        setup=(USERS, "auditsql install", "auditsql attach users", *USER_7),
        returns={"FROM audit.changes": [
            ("u-1", "t", "created", None, "member"),
            ("u-42", "t", "updated", "member", "owner"),
            ("u-9", "f", "updated", "owner", "auditor"),
            ("u-1", "t", "deleted", "auditor", None),
        ]},
    )),
    Registered("docs/reading.md", "FROM audit.entity_history('orders', '1002')", Sql(
        setup=(ORDERS, "auditsql install", "auditsql attach orders",
               written_by(ADA, "INSERT INTO orders VALUES (1001, 'new')"),
               written_by(ADA, "UPDATE orders SET id = 1002 WHERE id = 1001")),
        returns={"entity_history": [("created", "1001", None, "u-42"),
                                    ("updated", "1002", "1001", "u-42")]},
    )),
    Registered("docs/reading.md", "AND hashtext(entity_type) = hashtext('public.orders')", Sql(
        setup=(ORDERS, "auditsql install", "auditsql attach orders",
               written_by(ADA, "INSERT INTO orders VALUES (1001, 'new')"),
               written_by(ADA, "UPDATE orders SET id = 1002 WHERE id = 1001")),
        returns={"FROM audit.events": [("updated", "1001", "u-42")]},
    )),
    Registered("docs/reading.md", "SELECT audit.row_at('orders', '1001'", Sql(
        # Order 1001 as the log recorded it a day ago; nothing since.
        setup=(ORDERS, "auditsql install", "auditsql attach orders",
               "INSERT INTO audit.events (category, action, occurred_at, entity_type, entity_id, after)"
               " VALUES ('data', 'created', now() - interval '1 day', 'public.orders', '1001',"
               " '{\"id\": 1001, \"status\": \"shipped\"}')"),
        returns={"row_at": [('{"id": 1001, "status": "shipped"}',)]},
    )),
    Registered("docs/reading.md", "jsonb_populate_record(NULL::orders, t.row)", Sql(
        setup=(ORDERS, "auditsql install", "auditsql attach orders",
               "INSERT INTO orders VALUES (1001, 'shipped')",
               "UPDATE orders SET id = 1002 WHERE id = 1001",
               "INSERT INTO orders VALUES (1003, 'new')"),
        returns={"table_at": [("1002", "shipped"), ("1003", "new")]},
    )),
    Registered("docs/reading.md", "-- Everything request req-del did", Sql(
        setup=(USERS, "auditsql install", "auditsql attach users", *USER_7),
        returns={"request_events": [("deleted", "public.users", "7", "u-1")],
                 "transaction_events": [("deleted", "7")],
                 "actor_events": [("updated", "public.users", "7"),
                                  ("updated", "public.users", "7")]},
    )),
    Registered("docs/reading.md", "baseline => true", Sql(
        setup=(ORDERS, "INSERT INTO orders VALUES (1001, 'paid'), (1002, 'new')",
               "auditsql install"),
        then=[("SELECT action, count(*) FROM audit.events WHERE entity_type = 'public.orders'"
               " AND category = 'data' GROUP BY 1", [("snapshot", "4")]),
              ("SELECT row FROM audit.table_at('orders', now()) WHERE entity_id = '1001'",
               [('{"id": 1001, "status": "paid"}',)])],
    )),
    Registered("docs/retention.md", "SELECT audit.set_retention('medical');", Sql(
        setup=("auditsql install",),
        users={"FROM audit.retention": READER},  # "readable by auditsql_reader"
        returns={"set_retention": [("5 years",)],
                 "FROM audit.retention": [("medical", "5 years")]},
    )),
    Registered("docs/retention.md", "SELECT * FROM audit.apply_retention();", Sql(
        # The month of December 2019 is past a saas policy: 12 events go, the
        # 5 of an order under legal hold stay, in a partition rebuilt for them.
        setup=("auditsql install --retention saas",
               "SELECT audit.ensure_partitions('2019-12-01 00:00+00', 1)",
               "INSERT INTO audit.events (category, action, occurred_at, entity_type, entity_id)"
               " SELECT 'data', 'created', '2019-12-15 12:00+00', 'public.orders',"
               " CASE WHEN g <= 5 THEN '1001' ELSE g::text END FROM generate_series(1, 17) AS g",
               "SELECT audit.place_hold('public.orders', '1001', 'Case 2026-117')"),
        returns={"apply_retention": [("events_2019_12", "2019-12-01 00:00:00+00",
                                      "2020-01-01 00:00:00+00", "12", "5")]},
        then=[("SELECT entity_id, count(*) FROM audit.events_2019_12 GROUP BY 1",
               [("1001", "5")])],
    )),
    Registered("docs/retention.md", "SELECT * FROM audit.retention_preview('2 years'", Sql(
        # Nothing of this month or the last is two years old.
        setup=("auditsql install",),
        returns={"retention_preview": []},
    )),
    Registered("docs/retention.md", "SELECT audit.place_hold('public.orders', '1001'", Sql(
        setup=(ORDERS, "auditsql install", "auditsql attach orders",
               "INSERT INTO orders VALUES (1001, 'paid')"),
        returns={"place_hold": [("t",)],  # "true: placed"
                 "FROM audit.legal_holds": []},  # released
        then=[("SELECT action, entity_id, after ->> 'reason' FROM audit.events"
               " WHERE action LIKE 'legal_hold%' ORDER BY id",
               [("legal_hold_placed", "1001", "Case 2026-117"),
                ("legal_hold_released", "1001", "Case closed")])],
    )),
]


def test_every_sql_block_is_registered() -> None:
    _, problems = match(EXAMPLES, ("sql",), MODULE)
    assert problems == []


def statements(block: Block) -> list[tuple[int, str]]:
    """(line in the file, text) of each statement of the block, comments kept."""
    found: list[tuple[int, str]] = []
    offset = 0
    for text in sqlparse.split(block.text):
        if not sqlparse.format(text, strip_comments=True).strip():
            continue
        offset = block.text.index(text, offset)
        found.append((block.line + 1 + block.text.count("\n", 0, offset), text))
        offset += len(text)
    return found


def keyed(mapping: Mapping[str, Any], text: str) -> list[str]:
    return [key for key in mapping if key in text]


@pytest.mark.parametrize("entry", EXAMPLES, ids=lambda e: e.id)
def test_sql_block_returns_what_the_text_says(entry: Registered[Sql], ctx: Ctx) -> None:
    found, problems = match([entry], ("sql",), MODULE)
    assert entry.id in found, problems
    block = found[entry.id]
    spec = entry.spec
    for step in spec.setup:
        ctx.step(step)
    returned: list[str] = []
    ran_by: list[str] = []
    for line, text in statements(block):
        at = f"{block.path}:{line}"
        users = keyed(spec.users, text)
        user = spec.users[users[0]] if users else spec.user
        try:
            rows = ctx.rows(text, user=user)
        except psycopg.Error as exc:
            pytest.fail(f"{at}: {text!r} failed: {exc}")
        for key in keyed(spec.returns, text):
            assert rows == spec.returns[key], f"{at}: {text!r} returned\n{rows}"
        returned += keyed(spec.returns, text)
        ran_by += users
    missing = (set(spec.returns) - set(returned)) | (set(spec.users) - set(ran_by))
    assert not missing, f"{block.where}: registered for no statement: {sorted(missing)}"
    assert all(returned.count(key) == 1 for key in spec.returns), (
        f"{block.where}: a key of returns= names several statements")
    for query, expected in spec.then:
        assert ctx.rows(query) == expected, f"{block.where}: after the block, {query!r}"
