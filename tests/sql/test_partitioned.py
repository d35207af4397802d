"""Capture on partitioned tables, attached at the parent."""

from __future__ import annotations

import pytest

from tests.sql.sqltools import (
    Conn,
    attach,
    brief,
    detach,
    events,
    run,
    scalar,
    triggers,
)

PARENT = "public.measures"


@pytest.fixture
def measures(su: Conn) -> str:
    """Attached partitioned table ``measures`` with partitions for 'a' and 'b'."""
    run(
        su,
        "CREATE TABLE measures (id int, k text, v int, PRIMARY KEY (id, k)) PARTITION BY LIST (k)",
        "CREATE TABLE measures_a PARTITION OF measures FOR VALUES IN ('a')",
        "CREATE TABLE measures_b PARTITION OF measures FOR VALUES IN ('b')",
    )
    attach(su, "measures")
    return PARENT


def test_writes_through_parent_and_partition_name_the_parent(su: Conn, measures: str) -> None:
    run(su, "INSERT INTO measures VALUES (1, 'a', 10)",
        "INSERT INTO measures_b VALUES (2, 'b', 20)",
        "UPDATE measures SET v = v + 1 WHERE id = 1", "UPDATE measures_b SET v = 0",
        "DELETE FROM measures_a", "DELETE FROM measures WHERE k = 'b'")
    recorded = events(su, measures)
    assert brief(recorded) == [
        ("created", '[1, "a"]'), ("created", '[2, "b"]'),
        ("updated", '[1, "a"]'), ("updated", '[2, "b"]'),
        ("deleted", '[1, "a"]'), ("deleted", '[2, "b"]'),
    ]
    assert {e["entity_type"] for e in recorded} == {PARENT}
    assert recorded[2]["before"] == {"id": 1, "k": "a", "v": 10}
    assert recorded[2]["after"] == {"id": 1, "k": "a", "v": 11}
    assert recorded[2]["changed_columns"] == ["v"]


def test_noop_update_on_partition_records_nothing(su: Conn, measures: str) -> None:
    su.execute("INSERT INTO measures VALUES (1, 'a', 10), (2, 'b', 20)")
    su.execute("UPDATE measures SET v = v")
    assert [a for a, _ in brief(events(su, measures))] == ["created", "created"]


def test_key_change_within_partition_sets_previous_entity_id(su: Conn, measures: str) -> None:
    su.execute("INSERT INTO measures VALUES (1, 'a', 10)")
    su.execute("UPDATE measures SET id = 5 WHERE id = 1")
    [updated] = events(su, measures, actions=["updated"])
    assert (updated["previous_entity_id"], updated["entity_id"]) == ('[1, "a"]', '[5, "a"]')


def test_row_moving_between_partitions_is_deleted_then_created(su: Conn, measures: str) -> None:
    su.execute("INSERT INTO measures VALUES (1, 'a', 10)")
    su.execute("UPDATE measures SET k = 'b' WHERE id = 1")
    assert brief(events(su, measures))[1:] == [("deleted", '[1, "a"]'), ("created", '[1, "b"]')]


def test_partition_created_after_attach_is_covered(su: Conn, measures: str) -> None:
    su.execute("CREATE TABLE measures_c PARTITION OF measures FOR VALUES IN ('c')")
    run(su, "INSERT INTO measures VALUES (1, 'c', 1)", "INSERT INTO measures_c VALUES (2, 'c', 2)",
        "UPDATE measures_c SET v = 9 WHERE id = 1", "DELETE FROM measures WHERE id = 2")
    recorded = events(su, measures)
    assert brief(recorded) == [("created", '[1, "c"]'), ("created", '[2, "c"]'),
                               ("updated", '[1, "c"]'), ("deleted", '[2, "c"]')]
    assert {e["entity_type"] for e in recorded} == {PARENT}


def test_partition_attached_after_attach_is_covered(su: Conn, measures: str) -> None:
    run(su, "CREATE TABLE measures_d (LIKE measures INCLUDING ALL)",
        "ALTER TABLE measures ATTACH PARTITION measures_d FOR VALUES IN ('d')")
    run(su, "INSERT INTO measures_d VALUES (1, 'd', 1)", "UPDATE measures SET v = 2 WHERE k = 'd'")
    assert brief(events(su, measures)) == [("created", '[1, "d"]'), ("updated", '[1, "d"]')]


def test_replica_mode_does_not_silence_capture_on_new_partition(su: Conn, measures: str) -> None:
    su.execute("CREATE TABLE measures_c PARTITION OF measures FOR VALUES IN ('c')")
    su.execute("SET session_replication_role = replica")
    run(su, "INSERT INTO measures VALUES (1, 'a', 1), (2, 'c', 2)", "DELETE FROM measures")
    assert sorted(brief(events(su, measures))) == [
        ("created", '[1, "a"]'), ("created", '[2, "c"]'),
        ("deleted", '[1, "a"]'), ("deleted", '[2, "c"]')]


def test_truncate_parent_records_rows_of_every_partition(su: Conn, measures: str) -> None:
    su.execute("INSERT INTO measures VALUES (1, 'a', 1), (2, 'b', 2), (3, 'b', 3)")
    su.execute("TRUNCATE measures")
    truncated = events(su, measures, actions=["truncated"])
    assert sorted(e["entity_id"] for e in truncated) == ['[1, "a"]', '[2, "b"]', '[3, "b"]']
    assert {e["entity_type"] for e in truncated} == {PARENT}
    assert {e["entity_id"]: e["before"]["v"] for e in truncated} == {
        '[1, "a"]': 1, '[2, "b"]': 2, '[3, "b"]': 3}


def test_truncate_one_partition_records_its_rows_only(su: Conn, measures: str) -> None:
    su.execute("INSERT INTO measures VALUES (1, 'a', 1), (2, 'b', 2)")
    su.execute("TRUNCATE measures_b")
    assert brief(events(su, measures, actions=["truncated"])) == [("truncated", '[2, "b"]')]
    assert scalar(su, "SELECT count(*) FROM measures") == 1


def test_truncate_parent_records_rows_of_partition_created_after_attach(
        su: Conn, measures: str) -> None:
    """Every row a TRUNCATE removes is recorded, also from partitions added later."""
    run(su, "CREATE TABLE measures_c PARTITION OF measures FOR VALUES IN ('c')",
        "INSERT INTO measures VALUES (1, 'a', 1), (2, 'c', 2)")
    su.execute("TRUNCATE measures")
    assert sorted(brief(events(su, measures, actions=["truncated"]))) == [
        ("truncated", '[1, "a"]'), ("truncated", '[2, "c"]')]


def test_attach_again_covers_truncate_of_new_partition(su: Conn, measures: str) -> None:
    su.execute("CREATE TABLE measures_c PARTITION OF measures FOR VALUES IN ('c')")
    attach(su, "measures")
    su.execute("INSERT INTO measures VALUES (1, 'c', 1)")
    su.execute("TRUNCATE measures_c")
    assert brief(events(su, measures)) == [("created", '[1, "c"]'), ("truncated", '[1, "c"]')]
    assert len(events(su, measures, actions=["attached"])) == 1


def test_attach_twice_and_detach(su: Conn, measures: str) -> None:
    attach(su, "measures")
    assert triggers(su, "measures") == [
        ("auditsql_capture_row", "A"), ("auditsql_capture_truncate", "A")]
    assert triggers(su, "measures_a") == [
        ("auditsql_capture_row", "A"), ("auditsql_capture_truncate", "A")]
    detach(su, "measures")
    detach(su, "measures")
    for table in ("measures", "measures_a", "measures_b"):
        assert triggers(su, table) == []
    run(su, "INSERT INTO measures VALUES (1, 'a', 1)", "TRUNCATE measures")
    assert events(su, measures) == []
    assert [e["action"] for e in events(su, measures, actions=["attached", "detached"])] == [
        "attached", "detached"]


def test_multi_level_partitions_name_the_root(su: Conn) -> None:
    run(su, "CREATE TABLE ml (id int, k text, r int, PRIMARY KEY (id, k, r)) PARTITION BY LIST (k)",
        "CREATE TABLE ml_a PARTITION OF ml FOR VALUES IN ('a') PARTITION BY RANGE (r)",
        "CREATE TABLE ml_a1 PARTITION OF ml_a FOR VALUES FROM (0) TO (10)",
        "CREATE TABLE ml_b PARTITION OF ml FOR VALUES IN ('b')")
    attach(su, "ml")
    run(su, "INSERT INTO ml_a1 VALUES (1, 'a', 1)", "INSERT INTO ml VALUES (2, 'b', 1)",
        "TRUNCATE ml_a", "TRUNCATE ml")
    recorded = events(su, "public.ml")
    assert brief(recorded) == [("created", '[1, "a", 1]'), ("created", '[2, "b", 1]'),
                               ("truncated", '[1, "a", 1]'), ("truncated", '[2, "b", 1]')]


def test_owner_adds_partitions_but_cannot_borrow_the_capture_function(
        su: Conn, app_conn: Conn) -> None:
    """The table's owner, an application role, may add partitions after
    attach (cloning the trigger needs EXECUTE on its function), and the
    function refuses to record rows of a table outside the tree."""
    run(app_conn, "CREATE TABLE public.logbook (id int PRIMARY KEY) PARTITION BY RANGE (id)",
        "CREATE TABLE public.logbook_1 PARTITION OF public.logbook FOR VALUES FROM (0) TO (10)",
        "CREATE TABLE public.other (id int PRIMARY KEY)")
    attach(su, "public.logbook")
    run(app_conn, "CREATE TABLE public.logbook_2 PARTITION OF public.logbook"
                  " FOR VALUES FROM (10) TO (20)",
        "INSERT INTO public.logbook VALUES (1), (15)")
    assert brief(events(su, "public.logbook")) == [("created", "1"), ("created", "15")]
    function = scalar(su, "SELECT 'audit.capture_' || 'public.logbook'::regclass::oid")
    borrow = (f"CREATE TRIGGER borrowed AFTER INSERT ON public.other"
              f" FOR EACH ROW EXECUTE FUNCTION {function}()")
    # A superuser's install: the event trigger refuses to create it at all.
    with pytest.raises(Exception, match="would stop or weaken auditing"):
        app_conn.execute(borrow)
    # Without the event trigger (an install by a role that is no superuser),
    # the function itself refuses to run on a table outside the tree.
    su.execute("ALTER EVENT TRIGGER auditsql_ddl_audit DISABLE")
    try:
        app_conn.execute(borrow)
    finally:
        su.execute("ALTER EVENT TRIGGER auditsql_ddl_audit ENABLE ALWAYS")
    with pytest.raises(Exception, match="records public.logbook, not other") as failure:
        app_conn.execute("INSERT INTO public.other VALUES (1)")
    assert getattr(failure.value, "sqlstate", None) == "42501"
    assert scalar(su, "SELECT count(*) FROM public.other") == 0
    assert brief(events(su, "public.logbook")) == [("created", "1"), ("created", "15")]
