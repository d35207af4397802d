"""The questions the log exists to answer are served by indexes."""

from __future__ import annotations

import json

import psycopg
import pytest

from auditsql.installer import install
from auditsql.render import Settings
from tests.sql.sqltools import Conn, attach, column, run, scalar


@pytest.fixture
def busy_log(su: Conn) -> Conn:
    """Twenty thousand events over two thousand rows and twenty actors."""
    run(su, "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)")
    attach(su, "accounts")
    run(su, "INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 2000) AS g")
    for actor in range(20):
        with su.transaction():
            su.execute("SELECT audit.set_actor(%s, NULL, 'member')", (f"u-{actor}",))
            su.execute("UPDATE accounts SET balance = balance + 1 WHERE id %% 20 = %s", (actor,))
    for _ in range(8):
        run(su, "UPDATE accounts SET balance = balance + 1")
    run(su, "ANALYZE audit.events")
    return su


def plan_nodes(conn: Conn, query: str) -> list[tuple[str, str | None, str | None]]:
    """(node type, index name, relation name) of every node of the plan of *query*."""
    row = conn.execute(f"EXPLAIN (FORMAT JSON) {query}").fetchone()
    assert row is not None
    document = next(iter(row.values()))
    plan = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
    nodes, pending = [], [plan]
    while pending:
        node = pending.pop()
        nodes.append((node["Node Type"], node.get("Index Name"), node.get("Relation Name")))
        pending.extend(node.get("Plans", []))
    return nodes


def uses_index(nodes: list[tuple[str, str | None, str | None]], prefix: str) -> bool:
    """Whether some node scans an index whose name starts with *prefix*."""
    return any(index is not None and index.startswith(prefix) for _, index, _ in nodes)


def assert_indexed(conn: Conn, nodes: list[tuple[str, str | None, str | None]]) -> None:
    """The partition holding the events is read through an index; only empty
    partitions may be scanned whole."""
    assert uses_index(nodes, "events_"), nodes
    for kind, _, relation in nodes:
        if kind == "Seq Scan":
            row = conn.execute(f"SELECT count(*) FROM audit.{relation}").fetchone()
            assert row is not None and next(iter(row.values())) == 0, nodes


def test_history_of_one_entity_uses_the_entity_index(busy_log: Conn) -> None:
    nodes = plan_nodes(busy_log, "SELECT * FROM audit.events WHERE entity_id = '42'"
                                 " AND hashtext(entity_type) = hashtext('public.accounts')"
                                 " AND entity_type = 'public.accounts' ORDER BY id")
    assert_indexed(busy_log, nodes)
    used = [index for _, index, _ in nodes if index]
    assert column(busy_log, "SELECT DISTINCT pg_get_indexdef(c.oid, 0, false) ~ "
                            "'USING btree \\(entity_id, hashtext\\(entity_type\\)\\)$' FROM pg_class AS c"
                            " WHERE c.relname = ANY (%s)", (used,)) == [True]


@pytest.fixture
def shared_ids(su: Conn) -> Conn:
    """Two audited tables with the same ids: row 7 of `busy` has 31 events,
    row 7 of `quiet` one."""
    for table in ("quiet", "busy"):
        run(su, f"CREATE TABLE {table} (id int PRIMARY KEY, n int NOT NULL)")
        attach(su, table)
        run(su, f"INSERT INTO {table} SELECT g, 0 FROM generate_series(1, 300) AS g")
    for _ in range(30):
        run(su, "UPDATE busy SET n = n + 1")
    run(su, "ANALYZE audit.events")
    return su


def nested_plans(conn: Conn, statement: str) -> list[dict[str, object]]:
    """The plan, with actual rows, of every statement *statement* runs,
    functions' statements included (auto_explain, its output sent to the
    client)."""
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
    run(conn, "LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0",
        "SET auto_explain.log_nested_statements = on", "SET auto_explain.log_analyze = on",
        "SET auto_explain.log_format = json", "SET client_min_messages = log")
    try:
        conn.execute(statement).fetchall()
    finally:
        run(conn, "RESET client_min_messages", "RESET auto_explain.log_min_duration")
    plans: list[dict[str, object]] = []
    for notice in notices:
        if "plan:" in notice:
            plans.append(json.loads(notice.split("plan:", 1)[1])["Plan"])
    return plans


def walk(plan: dict[str, object]) -> list[dict[str, object]]:
    nodes, pending = [], [plan]
    while pending:
        node = pending.pop()
        nodes.append(node)
        pending.extend(node.get("Plans", []))  # type: ignore[arg-type]
    return nodes


@pytest.mark.parametrize("call", [
    "SELECT count(*) FROM audit.entity_history('quiet', '7')",
    "SELECT audit.row_at('quiet', '7', now())",
])
def test_reading_one_row_reads_none_of_another_tables_events(
        shared_ids: Conn, call: str) -> None:
    """Integer keys repeat across tables: the entity index holds the type's
    hash beside the id, so that reading row 7 of one table never fetches the
    events of row 7 of the others only to filter them out."""
    probes = [node for plan in nested_plans(shared_ids, call) for node in walk(plan)
              if "entity_id_hashtext" in str(node.get("Index Name", ""))]
    assert probes, "the entity index was not used"
    assert sum(int(n.get("Actual Rows", 0)) * int(n.get("Actual Loops", 1))  # type: ignore[call-overload]
               for n in probes) >= 1
    assert all(not n.get("Rows Removed by Filter") for n in probes), probes


def test_install_replaces_the_indexes_of_earlier_versions(
        su: Conn, installed_db: str) -> None:
    """Builds before 0.1.0 indexed (entity_type, entity_id), and recorded
    0.1.0 as well; 0.1.0's BRIN index had no txid. The upgrade step from
    0.1.0 drops both and install creates the index on the id and the type's
    hash and the BRIN index with txid, partitions included: no btree on
    txid."""
    run(su, "DROP INDEX audit.events_entity_idx, audit.events_brin",
        "CREATE INDEX events_entity_idx ON audit.events (entity_type, entity_id)",
        "CREATE INDEX events_time_id_brin ON audit.events USING brin (occurred_at, id)",
        "INSERT INTO audit.installation (version, settings) SELECT '0.1.0', settings"
        " FROM audit.installation ORDER BY installed_at DESC LIMIT 1")
    with psycopg.connect(installed_db) as conn:
        install(conn, Settings())
    definitions = column(su, "SELECT DISTINCT regexp_replace(pg_get_indexdef(i.indexrelid),"
                             " '^.* USING ', '') FROM pg_inherits AS h"
                             " JOIN pg_index AS i ON i.indrelid IN (h.inhrelid, h.inhparent)"
                             " WHERE h.inhparent = 'audit.events'::regclass ORDER BY 1")
    assert definitions == ["brin (occurred_at, id, txid)",
                           "brin (occurred_at, id, txid) WITH (autosummarize='on')",
                           "btree (actor_id, occurred_at) WHERE (actor_id IS NOT NULL)",
                           "btree (entity_id, hashtext(entity_type))",
                           "btree (previous_entity_id) WHERE (previous_entity_id IS NOT NULL)",
                           "btree (request_id) WHERE (request_id IS NOT NULL)"]


def test_a_long_transactions_events_are_read_through_the_brin_index(
        su: Conn, installed_db: str) -> None:
    """transaction_events reads the BRIN index on (occurred_at, id, txid):
    a transaction that writes, waits while others write more than a block
    range, and writes again has both events found, in order, from the
    ranges' summaries."""
    run(su, "CREATE TABLE ledger (id int PRIMARY KEY, n int NOT NULL)")
    attach(su, "ledger")
    with psycopg.connect(installed_db) as long:
        long.execute("INSERT INTO ledger VALUES (0, 0)")
        row = long.execute("SELECT txid_current()").fetchone()
        assert row is not None
        txid = row[0]
        run(su, "INSERT INTO ledger SELECT g, 0 FROM generate_series(1, 12000) AS g")
        long.execute("UPDATE ledger SET n = 1 WHERE id = 0")
        long.commit()
    # The events span more than one block range of their partition, and
    # every full range is summarized (here, or already by autosummarize).
    assert scalar(su, "SELECT max(pg_relation_size(h.inhrelid))"
                      " > 128 * current_setting('block_size')::bigint FROM pg_inherits AS h"
                      " WHERE h.inhparent = 'audit.events'::regclass")
    run(su, "SELECT brin_summarize_new_values(i.indexrelid)"
            " FROM pg_inherits AS h JOIN pg_index AS i ON i.indrelid = h.inhrelid"
            " JOIN pg_class AS c ON c.oid = i.indexrelid"
            " JOIN pg_am AS a ON a.oid = c.relam AND a.amname = 'brin'"
            " WHERE h.inhparent = 'audit.events'::regclass")
    run(su, "ANALYZE audit.events", "SET enable_seqscan = off")
    nodes = plan_nodes(su, f"SELECT * FROM audit.events WHERE txid = {int(txid)}")
    assert_indexed(su, nodes)
    assert {index for _, index, _ in nodes if index} <= set(column(
        su, "SELECT c.relname FROM pg_class AS c JOIN pg_am AS a ON a.oid = c.relam"
            " WHERE a.amname = 'brin'")), nodes
    found = su.execute("SELECT action, entity_id FROM audit.transaction_events(%s)",
                       (txid,)).fetchall()
    assert [(r["action"], r["entity_id"]) for r in found] == [("created", "0"), ("updated", "0")]


def test_everything_one_actor_did_uses_the_actor_index(busy_log: Conn) -> None:
    nodes = plan_nodes(busy_log, "SELECT * FROM audit.events WHERE actor_id = 'u-7' "
                                 "AND occurred_at >= now() - interval '1 day'")
    assert_indexed(busy_log, nodes)


def test_a_time_range_reads_only_its_partitions(busy_log: Conn) -> None:
    nodes = plan_nodes(busy_log, "SELECT count(*) FROM audit.events "
                                 "WHERE occurred_at >= now() - interval '1 hour'")
    relations = {relation for _, _, relation in nodes if relation}
    month = busy_log.execute("SELECT 'events_' || to_char(now() AT TIME ZONE 'UTC', "
                             "'YYYY_MM')").fetchone()
    assert month is not None
    assert next(iter(month.values())) in relations, nodes
    old = plan_nodes(busy_log, "SELECT count(*) FROM audit.events "
                               "WHERE occurred_at < '2000-01-01'")
    assert {relation for _, _, relation in old if relation} <= {"events_default"}, old


def test_a_new_partition_leaves_its_first_block_range_unsummarized(su: Conn) -> None:
    """A BRIN index built on an empty table summarizes block range 0 at
    once, and every event in its 128 pages would then widen the summary and
    log it. Each partition auditsql makes starts with that range
    unsummarized: brin_summarize_new_values() finds it to summarize, and the
    events it holds are still found by a time range."""
    run(su, "CREATE TABLE notes (id int PRIMARY KEY, body text)")
    attach(su, "notes")
    run(su, "INSERT INTO notes SELECT g, 'n' FROM generate_series(1, 50) AS g")
    brins = su.execute(
        "SELECT i.indexrelid::regclass::text AS index, c.relname AS partition"
        " FROM pg_inherits AS h JOIN pg_class AS c ON c.oid = h.inhrelid"
        " JOIN pg_index AS i ON i.indrelid = h.inhrelid"
        " JOIN pg_class AS ic ON ic.oid = i.indexrelid JOIN pg_am AS a ON a.oid = ic.relam"
        " WHERE h.inhparent = 'audit.events'::regclass AND a.amname = 'brin'"
        " AND c.relname <> 'events_default'").fetchall()
    assert brins, "no monthly partition"
    month = su.execute("SELECT 'events_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM') AS m").fetchone()
    assert month is not None
    current = [b["index"] for b in brins if b["partition"] == month["m"]]
    assert len(current) == 1, brins
    row = su.execute("SELECT count(*) AS n FROM audit.events WHERE occurred_at >= now() - interval '1 hour'"
                     " AND entity_type = 'public.notes' AND action = 'created'").fetchone()
    assert row is not None and row["n"] == 50
    summarized = su.execute("SELECT brin_summarize_new_values(%s::regclass) AS n", current).fetchone()
    assert summarized is not None and summarized["n"] == 1


def test_every_partition_summarizes_its_block_ranges_as_they_fill(su: Conn) -> None:
    """The BRIN index of each partition, those install made, the default
    one and one that maintenance makes later, has autosummarize on: its
    ranges are summarized as the next one starts, not only by VACUUM, so
    that a scan by time or id (sealing's among them) does not read a long
    unsummarized tail whole."""
    run(su, "SELECT audit.create_partition('events_2999_01', '2999-01-01', '2999-02-01')")

    found = [(r["partition"], r["options"]) for r in su.execute(
        "SELECT c.relname AS partition, ic.reloptions AS options"
        " FROM pg_class AS c JOIN pg_index AS i ON i.indrelid = c.oid"
        " JOIN pg_class AS ic ON ic.oid = i.indexrelid JOIN pg_am AS a ON a.oid = ic.relam"
        " WHERE a.amname = 'brin' AND c.relnamespace = 'audit'::regnamespace"
        " AND c.relkind = 'r' ORDER BY 1").fetchall()]
    assert {p for p, _ in found} >= {"events_default", "events_2999_01"}, found
    assert len(found) >= 3, found
    assert all(options == ["autosummarize=on"] for _, options in found), found


@pytest.fixture
def request_log(busy_log: Conn) -> int:
    """busy_log and one more transaction, of request r-7: its txid."""
    with busy_log.transaction():
        busy_log.execute("SELECT audit.set_request(NULL, NULL, 'r-7')")
        busy_log.execute("UPDATE accounts SET balance = 0 WHERE id <= 5")
        txid = int(scalar(busy_log, "SELECT txid_current()"))
    run(busy_log, "ANALYZE audit.events")
    return txid


def assert_read_through(conn: Conn, call: str, parent_index: str, key: str, value: object) -> None:
    """The statements *call* runs look *key* up in the index of
    *parent_index* of each partition holding the events with that *value*,
    and read no partition that holds events whole."""
    expected = set(column(conn, "SELECT c.relname FROM pg_inherits AS h"
                                " JOIN pg_index AS i ON i.indexrelid = h.inhrelid"
                                " JOIN pg_class AS c ON c.oid = i.indexrelid"
                                " WHERE h.inhparent = %s::regclass AND i.indrelid IN"
                                f" (SELECT tableoid FROM audit.events WHERE {key} = %s)",
                          (parent_index, value)))
    assert expected, "no events to read"
    nodes = [node for plan in nested_plans(conn, call) for node in walk(plan)]
    assert expected <= {node.get("Index Name") for node in nodes
                        if f"({key} =" in str(node.get("Index Cond"))}, nodes
    for node in nodes:
        if node["Node Type"] == "Seq Scan":
            assert scalar(conn, f"SELECT count(*) FROM audit.{node['Relation Name']}") == 0, node


def test_request_events_reads_the_request_index(request_log: int, busy_log: Conn) -> None:
    assert_read_through(busy_log, "SELECT * FROM audit.request_events('r-7')",
                        "audit.events_request_id_idx", "request_id", "r-7")


def test_actor_events_reads_the_actor_index(busy_log: Conn) -> None:
    assert_read_through(busy_log, "SELECT * FROM audit.actor_events('u-7', now() - interval '1 day')",
                        "audit.events_actor_idx", "actor_id", "u-7")


def test_transaction_events_reads_the_brin_index(request_log: int, busy_log: Conn) -> None:
    # A log of 20,000 events is a few hundred pages: a sequential scan costs
    # about what a BRIN bitmap scan does, and which the planner takes turns
    # on statistics, not on the function (the benchmark's log of millions
    # leaves no such choice). Sequential scans off, this asks whether the
    # index can serve the statement: one it cannot serve still reads whole.
    run(busy_log, "SET enable_seqscan = off")
    assert_read_through(busy_log, f"SELECT * FROM audit.transaction_events({request_log})",
                        "audit.events_brin", "txid", request_log)
