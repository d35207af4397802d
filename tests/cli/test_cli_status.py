"""`auditsql status` end to end, on one database installed for the module."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.cli.clitools import (
    CAPTURE_TRIGGERS,
    VERSION,
    error_line,
    execute,
    ok,
    run,
    scalar,
)

LONG = "t" * 63

SETUP = f"""
CREATE TABLE orders (id int PRIMARY KEY);
CREATE TABLE "Mixed Case" (id int PRIMARY KEY);
CREATE TABLE nopk (a int NOT NULL, b int NOT NULL, UNIQUE (a, b));
CREATE TABLE parted (id int PRIMARY KEY) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100);
CREATE TABLE {LONG} (id int PRIMARY KEY);
"""


@pytest.fixture(scope="module")
def dsn(module_db: str) -> str:
    execute(module_db, SETUP)
    ok("install", "--dsn", module_db)
    return module_db


@pytest.fixture
def attached(dsn: str) -> Iterator[str]:
    """orders, "Mixed Case", nopk (a, b; statement capture) and parted
    attached; detached after."""
    ok("attach", "--dsn", dsn, "orders", '"Mixed Case"', "parted")
    ok("attach", "--dsn", dsn, "nopk", "--id-columns", "a,b", "--capture", "statement")
    yield dsn
    execute(dsn, "SELECT audit.detach(relid::regclass) FROM audit.tables")


def status_json(dsn: str, *extra: str) -> dict:
    res = ok("status", "--dsn", dsn, "--json", *extra)
    assert res.stderr == ""
    return json.loads(res.stdout)


def objects_summary(text: str) -> str:
    """The `objects: ...` line of status's text output."""
    return next(line for line in text.splitlines() if line.startswith("objects: "))


def by_name(payload: dict) -> dict[str, dict]:
    return {t["entity_type"]: t for t in payload["tables"]}


def test_status_without_tables(dsn: str) -> None:
    res = ok("status", "--dsn", dsn)
    assert f"auditsql {VERSION}" in res.stdout
    assert "audit" in res.stdout
    assert "attach" in res.stdout  # says what to do next
    payload = status_json(dsn)
    assert payload == {"schema": "audit", "version": VERSION, "retention": None, "tables": []}


def test_status_shows_version_and_tables(attached: str) -> None:
    res = ok("status", "--dsn", attached)
    assert f"auditsql {VERSION}" in res.stdout
    for name in ("public.orders", "public.nopk", "public.parted", "Mixed"):
        assert name in res.stdout
    assert "explicit" in res.stdout and "primary key" in res.stdout
    assert "disabled" not in res.stdout and "missing" not in res.stdout


def test_status_json(attached: str) -> None:
    payload = status_json(attached)
    assert payload["schema"] == "audit"
    assert payload["version"] == VERSION
    tables = by_name(payload)
    assert set(tables) == {"public.orders", 'public."Mixed Case"', "public.nopk", "public.parted"}
    for table in tables.values():
        assert {"entity_type", "id_columns", "triggers", "healthy"} <= set(table)
        assert table["healthy"] is True
        assert all(t["state"] == "always" for t in table["triggers"])
    assert tables["public.orders"]["id_columns"] == ["id"]
    assert tables["public.nopk"]["id_columns"] == ["a", "b"]
    assert {t["name"] for t in tables["public.orders"]["triggers"]} == CAPTURE_TRIGGERS
    assert tables["public.orders"]["capture"] == "row"
    assert tables["public.nopk"]["capture"] == "statement"
    assert {t["name"] for t in tables["public.nopk"]["triggers"]} == {
        "auditsql_capture_insert", "auditsql_capture_update", "auditsql_capture_delete",
        "auditsql_capture_truncate"}
    parted = {(t["table"], t["name"]) for t in tables["public.parted"]["triggers"]}
    assert parted == {
        ("public.parted", "auditsql_capture_row"),
        ("public.parted", "auditsql_capture_truncate"),
        ("public.parted_1", "auditsql_capture_truncate"),
    }


def test_missing_parent_truncate_trigger_is_not_healthy(attached: str) -> None:
    execute(attached, "DROP TRIGGER auditsql_capture_truncate ON parted")
    parted = by_name(status_json(attached))["public.parted"]
    assert parted["healthy"] is False
    states = {(t["table"], t["name"]): t["state"] for t in parted["triggers"]}
    assert states[("public.parted", "auditsql_capture_truncate")] == "missing"
    execute(attached, "SELECT audit.attach('parted')")


def test_disabled_trigger_is_not_healthy(attached: str) -> None:
    execute(attached, "ALTER TABLE orders DISABLE TRIGGER auditsql_capture_row")
    tables = by_name(status_json(attached))
    orders = tables["public.orders"]
    assert orders["healthy"] is False
    states = {t["name"]: t["state"] for t in orders["triggers"]}
    assert states["auditsql_capture_row"] == "disabled"
    assert tables["public.nopk"]["healthy"] is True

    res = ok("status", "--dsn", attached)
    assert "disabled" in res.stdout
    row = next(line for line in res.stdout.splitlines() if "public.orders" in line)
    assert " ok " not in row


def test_dropped_and_replica_triggers_are_not_healthy(attached: str) -> None:
    execute(attached, "DROP TRIGGER auditsql_capture_row ON orders;"
                      "ALTER TABLE nopk ENABLE REPLICA TRIGGER auditsql_capture_delete")
    tables = by_name(status_json(attached))
    orders = {t["name"]: t["state"] for t in tables["public.orders"]["triggers"]}
    assert orders["auditsql_capture_row"] == "missing"
    assert tables["public.orders"]["healthy"] is False
    nopk = {t["name"]: t["state"] for t in tables["public.nopk"]["triggers"]}
    assert nopk["auditsql_capture_delete"] == "replica"
    assert tables["public.nopk"]["healthy"] is False
    res = ok("status", "--dsn", attached)
    assert "missing" in res.stdout and "replica" in res.stdout


def test_status_not_installed(dsn: str) -> None:
    res = run("status", "--dsn", dsn, "--schema", "elsewhere", subprocess_only=True)
    error_line(res, 1, "not installed", "elsewhere", "auditsql install")
    assert res.stdout == ""
    res = run("status", "--dsn", dsn, "--schema", "elsewhere", "--json")
    error_line(res, 1, "not installed")
    assert res.stdout == ""


def test_status_real_process(attached: str) -> None:
    """The console script itself, text and JSON."""
    res = ok("status", "--dsn", attached, subprocess_only=True)
    assert "public.orders" in res.stdout
    json_res = ok("status", "--dsn", attached, "--json", subprocess_only=True)
    assert len(json.loads(json_res.stdout)["tables"]) == 4


def test_status_text_shows_long_names_in_full(dsn: str) -> None:
    ok("attach", "--dsn", dsn, LONG)
    try:
        execute(dsn, f"ALTER TABLE {LONG} DISABLE TRIGGER auditsql_capture_row")
        res = ok("status", "--dsn", dsn, subprocess_only=True)
        assert f"public.{LONG}" in res.stdout
        assert "auditsql_capture_row" in res.stdout
    finally:
        execute(dsn, "SELECT audit.detach(relid::regclass) FROM audit.tables")


def test_status_compares_objects_with_their_fingerprints(attached: str) -> None:
    res = ok("status", "--dsn", attached)
    objects_line = objects_summary(res.stdout)
    assert objects_line.endswith(" installed")
    everything = status_json(attached, "--objects")["objects"]
    assert {o["state"] for o in everything} == {"installed"}
    assert {"kind", "identity", "state", "reason"} == set(everything[0])
    identities = {(o["kind"], o["identity"]) for o in everything}
    attach_fn = "audit.attach(regclass,text[],text,text[],text[],jsonb,boolean,boolean,boolean)"
    assert ("function", attach_fn) in identities
    assert ("table", "audit.events") in identities
    assert ("trigger", "auditsql_guard_row on audit.events") in identities
    # Capture triggers belong to the tables' owners, who attach cannot be
    # trusted to stamp them: they are judged per table, against the record
    # attach keeps, not by a fingerprint.
    assert not any(i.startswith("auditsql_capture_") for _, i in identities)
    tables = {t["entity_type"]: t for t in status_json(attached)["tables"]}
    assert {"table": "public.orders", "name": "auditsql_capture_row", "state": "always"} in (
        tables["public.orders"]["triggers"])
    assert tables["public.nopk"]["problems"] == []
    orders = scalar(attached, "SELECT 'orders'::regclass::oid")
    assert ("function", f"audit.capture_{orders}()") in identities  # generated by attach
    assert ("event trigger", "auditsql_ddl_audit") in identities
    listed = ok("status", "--dsn", attached, "--objects").stdout
    assert f"function {attach_fn}\tinstalled" in listed


def test_status_shows_outdated_missing_and_unexpected_objects(attached: str) -> None:
    execute(attached, """
        CREATE OR REPLACE FUNCTION audit.guard() RETURNS trigger LANGUAGE plpgsql
            SET search_path = pg_catalog, pg_temp AS $$ BEGIN RETURN NULL; END $$;
        DROP TRIGGER auditsql_guard_statement ON audit.events_default;
        CREATE TABLE audit.extra (id int);
    """)
    try:
        res = ok("status", "--dsn", attached)
        lines = res.stdout.splitlines()
        assert objects_summary(res.stdout).endswith("1 outdated, 1 missing, 1 unexpected")
        assert "function audit.guard()\toutdated\tchanged since install" in lines
        assert "trigger auditsql_guard_statement on events_default\tmissing\tnot in the database" \
            in lines
        assert "table audit.extra\tunexpected\tnot created by auditsql" in lines
        assert "public.orders" in res.stdout  # the tables follow
        states = {o["identity"]: o["state"] for o in status_json(attached, "--objects")["objects"]}
        assert states["audit.guard()"] == "outdated"
        assert states["audit.extra"] == "unexpected"
        assert "objects" not in status_json(attached)  # only with --objects
    finally:
        execute(attached, "DROP TABLE audit.extra")
        ok("upgrade", "--dsn", attached)
    assert objects_summary(ok("status", "--dsn", attached).stdout).endswith(" installed")
