"""`auditsql attach` and `auditsql detach` end to end.

One database for the module, installed once; after each test every table is
detached again (with SQL) so tests do not see each other's attachments.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli.clitools import (
    CAPTURE_TRIGGERS,
    audit_triggers_anywhere,
    error_line,
    execute,
    ok,
    query,
    run,
    scalar,
    tracked,
    triggers,
    usage_error,
)
from tests.harness.server import Server

SETUP = """
CREATE TABLE orders (id int PRIMARY KEY, note text);
CREATE TABLE items (id int PRIMARY KEY);
CREATE TABLE "Mixed Case" (id int PRIMARY KEY);
CREATE TABLE nopk (a int NOT NULL, b int NOT NULL, c text, UNIQUE (a, b));
CREATE TABLE loose (a int, b int);
CREATE TABLE canary (x int);
INSERT INTO canary VALUES (1);
CREATE VIEW orders_view AS SELECT * FROM orders;
CREATE TABLE parted (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE parted_2024 PARTITION OF parted FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE parted_2025 PARTITION OF parted FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
"""


@pytest.fixture(scope="module")
def dsn(module_db: str) -> str:
    execute(module_db, SETUP)
    ok("install", "--dsn", module_db)
    return module_db


@pytest.fixture(autouse=True)
def _reset(dsn: str) -> Iterator[None]:
    yield
    execute(dsn, "SELECT audit.detach(relid::regclass) FROM audit.tables")
    assert scalar(dsn, "SELECT count(*) FROM canary") == 1, "the canary table was harmed"
    assert audit_triggers_anywhere(dsn) == []


def nothing_attached(dsn: str) -> None:
    assert tracked(dsn) == set()
    assert audit_triggers_anywhere(dsn) == []


@pytest.mark.parametrize(
    ("name", "qualified"),
    [
        ("orders", "public.orders"),
        ("public.orders", "public.orders"),
        ("ORDERS", "public.orders"),  # unquoted names fold to lower case, as in SQL
        ('"Mixed Case"', 'public."Mixed Case"'),
        ('public."Mixed Case"', 'public."Mixed Case"'),
    ],
)
def test_attach_and_detach_by_any_spelling(dsn: str, name: str, qualified: str) -> None:
    res = ok("attach", "--dsn", dsn, name)
    assert qualified in res.stderr
    assert triggers(dsn, qualified) == CAPTURE_TRIGGERS
    assert tracked(dsn) == {qualified}

    again = ok("attach", "--dsn", dsn, name)  # idempotent
    assert qualified in again.stderr
    assert triggers(dsn, qualified) == CAPTURE_TRIGGERS

    res = ok("detach", "--dsn", dsn, name)
    assert qualified in res.stderr
    assert triggers(dsn, qualified) == set()
    assert tracked(dsn) == set()
    ok("detach", "--dsn", dsn, name)  # detaching twice is fine
    assert triggers(dsn, qualified) == set()


def test_attached_table_is_audited(dsn: str) -> None:
    ok("attach", "--dsn", dsn, "orders", subprocess_only=True)
    execute(dsn, "INSERT INTO orders VALUES (41, 'x'); UPDATE orders SET note = 'y' WHERE id = 41;"
                 "DELETE FROM orders WHERE id = 41")
    rows = query(dsn, "SELECT action, entity_id FROM audit.events "
                      "WHERE entity_type = 'public.orders' AND entity_id = '41' ORDER BY id")
    assert rows == [("created", "41"), ("updated", "41"), ("deleted", "41")]


def test_several_tables_in_one_call(dsn: str) -> None:
    res = ok("attach", "--dsn", dsn, "orders", "items", '"Mixed Case"')
    assert tracked(dsn) == {"public.orders", "public.items", 'public."Mixed Case"'}
    for name in ("public.orders", "public.items", 'public."Mixed Case"'):
        assert name in res.stderr
        assert triggers(dsn, name) == CAPTURE_TRIGGERS
    ok("detach", "--dsn", dsn, "orders", "items", subprocess_only=True)
    assert tracked(dsn) == {'public."Mixed Case"'}
    assert triggers(dsn, "orders") == set()


def test_id_columns_for_table_without_primary_key(dsn: str) -> None:
    ok("attach", "--dsn", dsn, "nopk", "--id-columns", "a, b")
    assert triggers(dsn, "nopk") == CAPTURE_TRIGGERS
    assert query(dsn, "SELECT id_columns, id_source FROM audit.tables") == [
        (["a", "b"], "explicit")
    ]
    execute(dsn, "INSERT INTO nopk VALUES (1, 2, 'x')")
    assert scalar(dsn, "SELECT entity_id FROM audit.events WHERE entity_type = 'public.nopk' "
                       "AND action = 'created'") == "[1, 2]"


def test_id_columns_must_identify_rows(dsn: str) -> None:
    """Columns no unique index over NOT NULL columns backs are refused
    (exit 1, nothing attached), unless trusted; verify then warns."""
    line = error_line(run("attach", "--dsn", dsn, "loose", "--id-columns", "a,b"), 1,
                      "not backed by a unique index", "--trust-id-columns")
    assert "public.loose" in line
    nothing_attached(dsn)
    ok("attach", "--dsn", dsn, "loose", "--id-columns", "a,b", "--trust-id-columns")
    assert query(dsn, "SELECT id_columns, id_trusted FROM audit.tables") == [(["a", "b"], True)]


def test_attach_again_keeps_the_id_columns(dsn: str) -> None:
    """Attaching again without --id-columns keeps the table's; --primary-key
    goes back to the primary key."""
    ok("attach", "--dsn", dsn, "orders", "--id-columns", "id,note", "--trust-id-columns")
    ok("attach", "--dsn", dsn, "orders")
    ok("attach", "--dsn", dsn, "orders", "--capture", "statement")
    assert query(dsn, "SELECT id_columns, id_source FROM audit.tables") == [
        (["id", "note"], "explicit")]
    ok("attach", "--dsn", dsn, "orders", "--primary-key")
    assert query(dsn, "SELECT id_columns, id_source FROM audit.tables") == [
        (["id"], "primary key")]
    usage_error(run("attach", "--dsn", dsn, "orders", "--primary-key", "--id-columns", "id"),
                "exclude each other")


def test_no_primary_key_and_no_id_columns(dsn: str) -> None:
    line = error_line(run("attach", "--dsn", dsn, "nopk"), 1, "primary key", "--id-columns")
    assert "public.nopk" in line
    nothing_attached(dsn)


@pytest.mark.parametrize("tables", [["nosuch"], ["orders", "nosuch"], ["nosuch", "orders"]])
def test_unknown_table_attaches_nothing(dsn: str, tables: list[str]) -> None:
    error_line(run("attach", "--dsn", dsn, *tables), 1, "nosuch", "does not exist")
    nothing_attached(dsn)


def test_unknown_table_detaches_nothing(dsn: str) -> None:
    ok("attach", "--dsn", dsn, "orders")
    error_line(run("detach", "--dsn", dsn, "orders", "nosuch"), 1, "nosuch")
    assert tracked(dsn) == {"public.orders"}
    assert triggers(dsn, "orders") == CAPTURE_TRIGGERS


# Not valid table names; PostgreSQL 16+ to_regclass() returns NULL for these
# rather than raising a syntax error.
BAD_SYNTAX = [
    "orders; DROP TABLE canary",
    'orders"; DROP TABLE canary; --',
    "orders'; DROP TABLE canary; --",
    "canary) ; DROP TABLE canary; --",
]
INJECTIONS = [*BAD_SYNTAX, "public.orders.canary.x", " ", ""]


@pytest.mark.parametrize("name", INJECTIONS)
def test_injection_in_table_name_fails_cleanly(dsn: str, name: str) -> None:
    res = run("attach", "--dsn", dsn, "orders", name)
    error_line(res, res.code if res.code in (1, 2) else 2)
    nothing_attached(dsn)  # and _reset checks the canary


@pytest.mark.parametrize("name", INJECTIONS)
def test_malformed_table_name_is_a_usage_error(
    request: pytest.FixtureRequest, pg: Server, dsn: str, name: str
) -> None:
    error_line(run("attach", "--dsn", dsn, name), 2, "invalid table name")


def test_missing_id_column_attaches_nothing(dsn: str) -> None:
    line = error_line(
        run("attach", "--dsn", dsn, "nopk", "--id-columns", "a,zz"), 1, "zz"
    )
    assert "nopk" in line
    nothing_attached(dsn)


def test_id_columns_are_exact_names(dsn: str) -> None:
    """--id-columns takes column names as stored, not SQL identifiers."""
    error_line(run("attach", "--dsn", dsn, "nopk", "--id-columns", "A"), 1, "no column")
    nothing_attached(dsn)


@pytest.mark.parametrize("value", ["", ",", "a,", "a,,b", " , "])
def test_malformed_id_columns_is_a_usage_error(dsn: str, value: str) -> None:
    error_line(run("attach", "--dsn", dsn, "nopk", "--id-columns", value), 2, "--id-columns")
    nothing_attached(dsn)


def test_duplicate_id_column(dsn: str) -> None:
    error_line(run("attach", "--dsn", dsn, "nopk", "--id-columns", "a,a"), 2, "twice")
    nothing_attached(dsn)


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("orders_view", "not a table"),
        ("audit.events", "audit table"),
        ("pg_catalog.pg_class", "system"),
        ("parted_2024", "partition"),
    ],
)
def test_what_cannot_be_attached(dsn: str, name: str, needle: str) -> None:
    error_line(run("attach", "--dsn", dsn, "orders", name), 1, needle)
    nothing_attached(dsn)


def test_partitioned_table(dsn: str) -> None:
    ok("attach", "--dsn", dsn, "parted")
    assert tracked(dsn) == {"public.parted"}
    assert "auditsql_capture_row" in triggers(dsn, "parted")
    for leaf in ("parted_2024", "parted_2025"):
        assert {"auditsql_capture_row", "auditsql_capture_truncate"} <= triggers(dsn, leaf)
    ok("detach", "--dsn", dsn, "parted")
    for table in ("parted", "parted_2024", "parted_2025"):
        assert triggers(dsn, table) == set()


def test_detach_table_never_attached(dsn: str) -> None:
    res = ok("detach", "--dsn", dsn, "items")
    assert "public.items" in res.stderr
    nothing_attached(dsn)


def test_attach_without_tables_is_a_usage_error(dsn: str) -> None:
    res = run("attach", "--dsn", dsn)
    assert res.code == 2 and "Traceback" not in res.stderr
    assert "tables" in res.stderr.lower()


def test_attach_with_other_schema_not_installed(dsn: str) -> None:
    error_line(run("attach", "--dsn", dsn, "--schema", "nope", "orders"), 1,
               "not installed", "auditsql install")
    nothing_attached(dsn)
