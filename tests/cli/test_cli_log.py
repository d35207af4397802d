"""`auditsql log`, `show`, `history` and `diff`: filters, formats, times and
errors on a real database."""

from __future__ import annotations

import csv
import io
import json

import psycopg
import pytest

from tests.cli.clitools import error_line, execute, ok, query, run, scalar

UTC = ("--tz", "UTC")


@pytest.fixture
def shop(installed_db: str) -> str:
    """Two audited tables and a few changes by two actors, in two requests."""
    db = installed_db
    execute(db, "CREATE TABLE orders (id int PRIMARY KEY, status text, total numeric);"
                "CREATE TABLE notes (id int PRIMARY KEY, body text)")
    ok("attach", "--dsn", db, "orders", "notes")
    # One statement a call: a multi-statement query gives all its events one time.
    for statements in (
            ["SELECT audit.set_context(actor_id => 'alice', request_id => 'r1')",
             "INSERT INTO orders VALUES (1, 'new', 10), (2, 'new', 20)"],
            ["SELECT audit.set_context(actor_id => 'bob', request_id => 'r2')",
             "UPDATE orders SET status = 'paid' WHERE id = 1",
             "INSERT INTO notes VALUES (1, e'tab\\there\\nline')"],
            ["SELECT audit.set_context(actor_id => 'alice', request_id => 'r3')",
             "UPDATE orders SET id = 3 WHERE id = 2", "DELETE FROM orders WHERE id = 1"]):
        with psycopg.connect(db) as conn:
            for statement in statements:
                conn.execute(statement)
    return db


def ids(res_stdout: str) -> list[int]:
    return [json.loads(line)["id"] for line in res_stdout.splitlines()]


def event_ids(db: str, where: str = "true") -> list[int]:
    """Ids of the events matching ``where``, newest first (attach's own
    events among them)."""
    return [r[0] for r in query(db, f"SELECT id FROM audit.events WHERE {where} "
                                    "ORDER BY id DESC")]


def test_log_lists_newest_first_as_json_lines(shop: str) -> None:
    res = ok("log", "--dsn", shop, "--json", "--table", "orders", *UTC)
    assert ids(res.stdout) == event_ids(shop, "entity_type = 'public.orders'")
    first = json.loads(res.stdout.splitlines()[0])
    assert first["action"] == "deleted" and first["actor_id"] == "alice"
    assert first["before"] == {"id": 1, "status": "paid", "total": 10}
    assert first["occurred_at"].endswith("+00:00")
    assert res.stderr == ""


@pytest.mark.parametrize(("args", "where"), [
    (("--actor", "bob"), "actor_id = 'bob'"),
    (("--action", "updated"), "action = 'updated'"),
    (("--request-id", "r1"), "request_id = 'r1'"),
    (("--table", "public.notes"), "entity_type = 'public.notes'"),
    (("--table", "orders", "--id", "2"), "entity_type = 'public.orders' AND "
                                         "(entity_id = '2' OR previous_entity_id = '2')"),
    (("--table", "orders", "--id", "3"), "entity_type = 'public.orders' AND "
                                         "(entity_id = '3' OR previous_entity_id = '3')"),
    (("--actor", "alice", "--action", "created"), "actor_id = 'alice' AND action = 'created'"),
])
def test_filters(shop: str, args: tuple[str, ...], where: str) -> None:
    res = ok("log", "--dsn", shop, "--json", *args)
    assert ids(res.stdout) == event_ids(shop, where)
    assert ids(res.stdout)


def test_json_lines_are_the_columns_of_history(shop: str) -> None:
    """README: "`--json` prints one JSON object per line (the columns of
    `audit.history`)"."""
    columns = [r[0] for r in query(
        shop, "SELECT attname FROM pg_attribute WHERE attrelid = 'audit.history'::regclass"
              " AND attnum > 0 AND NOT attisdropped ORDER BY attnum")]
    lines = ok("log", "--dsn", shop, "--json").stdout.splitlines()
    assert lines
    assert all(sorted(json.loads(line)) == sorted(columns) for line in lines), columns


def test_until_is_exclusive(shop: str) -> None:
    """README: "`--since` (inclusive) and `--until` (exclusive)": an event at
    the very time --until names is left out."""
    cut = scalar(shop, "SELECT occurred_at FROM audit.events WHERE request_id = 'r3' "
                       "ORDER BY id LIMIT 1")
    earlier = ids(ok("log", "--dsn", shop, "--json", "--until", cut.isoformat()).stdout)
    assert earlier == event_ids(shop, f"occurred_at < '{cut.isoformat()}'")
    assert earlier and not set(earlier) & set(event_ids(shop, "request_id = 'r3'"))


def test_limit_keeps_the_newest(shop: str) -> None:
    res = ok("log", "--dsn", shop, "--json", "--limit", "2")
    assert ids(res.stdout) == [r[0] for r in query(
        shop, "SELECT id FROM audit.events ORDER BY id DESC LIMIT 2")]


def test_times_relative_and_absolute(shop: str) -> None:
    every = ids(ok("log", "--dsn", shop, "--json", "--since", "1h").stdout)
    assert every == [r[0] for r in query(shop, "SELECT id FROM audit.events ORDER BY id DESC")]
    assert ok("log", "--dsn", shop, "--json", "--until", "30m").stdout == ""
    assert ok("log", "--dsn", shop, "--json", "--since", "2999-01-01").stdout == ""
    assert ids(ok("log", "--dsn", shop, "--json", "--since", "2000-01-01T00:00:00+02:00",
                  "--until", "2999-01-01").stdout) == every
    # Moving the cut between two events splits them exactly.
    cut = scalar(shop, "SELECT occurred_at FROM audit.events WHERE request_id = 'r3' "
                       "ORDER BY id LIMIT 1")
    later = ids(ok("log", "--dsn", shop, "--json", "--since", cut.isoformat()).stdout)
    assert later == event_ids(shop, "request_id = 'r3'")
    assert later == event_ids(shop, f"occurred_at >= '{cut.isoformat()}'")


def test_times_shown_in_the_zone_asked_for(shop: str) -> None:
    res = ok("log", "--dsn", shop, "--json", "--limit", "1", "--tz", "Asia/Kolkata")
    assert json.loads(res.stdout)["occurred_at"].endswith("+05:30")
    res = ok("log", "--dsn", shop, "--json", "--limit", "1", env={"TZ": "America/Caracas"})
    assert json.loads(res.stdout)["occurred_at"].endswith("-04:00")
    plain = ok("log", "--dsn", shop, "--limit", "1", "--tz", "Asia/Kolkata")
    assert "+05:30" in plain.stdout


def test_a_date_is_read_in_the_zone(shop: str) -> None:
    # Tomorrow's date in a zone far ahead of UTC still starts in the past there.
    today = scalar(shop, "SELECT (now() AT TIME ZONE 'Pacific/Kiritimati')::date")
    assert ids(ok("log", "--dsn", shop, "--json", "--since", str(today),
                  "--tz", "Pacific/Kiritimati").stdout) == event_ids(
        shop, f"occurred_at >= '{today}'::timestamp AT TIME ZONE 'Pacific/Kiritimati'")
    in_utc = ok("log", "--dsn", shop, "--json", "--until",
                str(scalar(shop, "SELECT (now() AT TIME ZONE 'UTC')::date")), *UTC)
    assert in_utc.stdout == ""


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "America/Caracas"])
def test_a_time_without_offset_is_read_in_the_zone(shop: str, zone: str) -> None:
    """README: times are "read in your zone or `--tz`": a --since naming no
    offset is the time on the clocks of --tz, else of TZ. The first event of
    request r3, as the zone's clocks showed it, splits the log exactly there;
    the same clock time read in UTC is another moment, hours away, and
    splits it elsewhere (no event, or every one)."""
    cut = scalar(shop, f"SELECT to_char(occurred_at AT TIME ZONE '{zone}',"
                       " 'YYYY-MM-DD\"T\"HH24:MI:SS.US') FROM audit.events"
                       " WHERE request_id = 'r3' ORDER BY id LIMIT 1")
    later = event_ids(shop, "request_id = 'r3'")
    assert later and later != event_ids(shop)
    assert ids(ok("log", "--dsn", shop, "--json", "--since", cut, "--tz", zone).stdout) == later
    assert ids(ok("log", "--dsn", shop, "--json", "--since", cut,
                  env={"TZ": zone}).stdout) == later
    assert ids(ok("log", "--dsn", shop, "--json", "--until", cut, "--tz", zone).stdout) == \
        event_ids(shop, "request_id IS DISTINCT FROM 'r3' AND id < %d" % min(later))
    in_utc = ids(ok("log", "--dsn", shop, "--json", "--since", cut, *UTC).stdout)
    assert in_utc == ([] if zone == "Asia/Kolkata" else event_ids(shop)), in_utc


def test_csv(shop: str) -> None:
    res = ok("log", "--dsn", shop, "--csv", "--table", "notes", "--action", "created", *UTC)
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert len(rows) == 1
    assert rows[0]["action"] == "created"
    assert json.loads(rows[0]["after"]) == {"id": 1, "body": "tab\there\nline"}
    assert rows[0]["actor_id"] == "bob" and rows[0]["request_id"] == "r2"


def test_plain_text_off_a_terminal(shop: str) -> None:
    res = ok("log", "--dsn", shop, "--table", "notes", "--action", "created", *UTC)
    header, line = res.stdout.splitlines()
    assert header.split("\t") == ["id", "occurred_at", "action", "entity_type", "entity_id",
                                  "actor_id", "request_id", "changes"]
    assert line.split("\t")[2:7] == ["created", "public.notes", "1", "bob", "r2"]


def test_a_table_on_a_terminal(shop: str) -> None:
    res = ok("log", "--dsn", shop, "--table", "orders", "--action", "updated", *UTC,
             env={"TTY_COMPATIBLE": "1", "COLUMNS": "160"}, subprocess_only=True)
    assert "\t" not in res.stdout
    assert "changes" in res.stdout and "status" in res.stdout and "paid" not in res.stdout


def test_no_events_is_no_error(shop: str) -> None:
    res = ok("log", "--dsn", shop, "--actor", "nobody")
    assert res.stdout == "" and res.stderr == ""
    res = ok("log", "--dsn", shop, "--actor", "nobody", env={"TTY_COMPATIBLE": "1"},
             subprocess_only=True)
    assert res.stdout == "" and res.stderr == "no events match\n"


@pytest.mark.parametrize(("args", "needles"), [
    (("--since", "yesterday"), ("invalid time 'yesterday'", "7d")),
    (("--since", "7x"), ("invalid time",)),
    (("--until", "2026-13-01"), ("invalid time",)),
    (("--since", "1h", "--until", "2h"), ("--since", "before")),
    (("--tz", "Mars/Olympus"), ("unknown time zone",)),
    (("--limit", "0"), ("invalid limit",)),
    (("--json", "--csv"), ("--json", "--csv")),
])
def test_bad_values_are_usage_errors(shop: str, args: tuple[str, ...],
                                     needles: tuple[str, ...]) -> None:
    error_line(run("log", "--dsn", shop, *args), 2, *needles)


def test_unknown_table(shop: str) -> None:
    error_line(run("log", "--dsn", shop, "--table", "nosuch"), 1, "nosuch", "does not exist")
    error_line(run("history", "--dsn", shop, "nosuch", "1"), 1, "does not exist")


def test_a_dropped_tables_events_stay_readable(shop: str) -> None:
    ok("detach", "--dsn", shop, "notes")
    execute(shop, "DROP TABLE notes")
    res = ok("log", "--dsn", shop, "--json", "--table", "notes")
    assert [json.loads(x)["action"] for x in res.stdout.splitlines()] == [
        "detached", "created", "attached"]


def test_show(shop: str) -> None:
    event_id = scalar(shop, "SELECT id FROM audit.events WHERE action = 'updated' "
                            "AND entity_id = '1'")
    res = ok("show", "--dsn", shop, str(event_id), "--json", *UTC)
    found = json.loads(res.stdout)
    assert found["id"] == event_id and found["changed_columns"] == ["status"]
    assert found["before"]["status"] == "new" and found["after"]["status"] == "paid"
    text = ok("show", "--dsn", shop, str(event_id), *UTC).stdout
    assert f"id: {event_id}\n" in text and "actor_id: bob\n" in text
    assert '* status\t"new"\t"paid"\n' in text
    assert '  total\t10\t10\n' in text


@pytest.mark.parametrize("bad", ["abc", "0", "1e3", "1.5", ""])
def test_show_bad_id(shop: str, bad: str) -> None:
    error_line(run("show", "--dsn", shop, bad), 2, "invalid event id")


def test_show_unknown_event(shop: str) -> None:
    error_line(run("show", "--dsn", shop, "999999"), 1, "no event 999999")


def test_history_follows_the_key_change(shop: str) -> None:
    res = ok("history", "--dsn", shop, "orders", "3", "--json", *UTC)
    assert [(e["action"], e["entity_id"]) for e in map(json.loads, res.stdout.splitlines())] \
        == [("created", "2"), ("updated", "3")]


def test_diff_side_by_side(shop: str) -> None:
    res = ok("diff", "--dsn", shop, "orders", "1", *UTC)
    lines = res.stdout.splitlines()
    assert lines[0].startswith("event ") and " created  public.orders 1  by alice" in lines[0]
    assert '* status\t\t"new"' in lines
    assert '* status\t"new"\t"paid"' in lines
    assert not any(x.startswith("  ") for x in lines)
    full = ok("diff", "--dsn", shop, "orders", "1", "--all-columns", *UTC).stdout
    assert "  total\t10\t10" in full.splitlines()
    as_json = [json.loads(x) for x in ok("diff", "--dsn", shop, "orders", "1", "--json").stdout
               .splitlines()]
    assert [e["action"] for e in as_json] == ["created", "updated", "deleted"]
    assert as_json[1]["columns"] == [{"column": "status", "before": "new", "after": "paid",
                                      "changed": True}]


def test_diff_highlights_on_a_terminal(shop: str) -> None:
    res = ok("diff", "--dsn", shop, "orders", "1", *UTC,
             env={"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1", "COLUMNS": "120"},
             subprocess_only=True)
    assert "\x1b[" in res.stdout and "* " not in res.stdout


def test_a_hundred_events_unless_limit(installed_db: str) -> None:
    execute(installed_db, "CREATE TABLE t (id int PRIMARY KEY)")
    ok("attach", "--dsn", installed_db, "t")
    execute(installed_db, "INSERT INTO t SELECT generate_series(1, 120)")
    assert len(ok("log", "--dsn", installed_db, "--json").stdout.splitlines()) == 100
    assert len(ok("log", "--dsn", installed_db, "--json", "--limit", "500")
               .stdout.splitlines()) == 121


def test_the_zone_from_the_environment(shop: str) -> None:
    res = ok("log", "--dsn", shop, "--json", "--limit", "1", env={"AUDITSQL_TZ": "Asia/Tokyo"})
    assert json.loads(res.stdout)["occurred_at"].endswith("+09:00")


@pytest.mark.parametrize("args", [("history", "orders", "abc"), ("diff", "orders", "abc")])
def test_an_id_the_table_cannot_have(shop: str, args: tuple[str, ...]) -> None:
    error_line(run(*args[:1], "--dsn", shop, *args[1:]), 2, "abc")
