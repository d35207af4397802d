"""`auditsql export`: JSON lines and CSV streamed with COPY, resumed after
the last id, progress and errors."""

from __future__ import annotations

import csv
import importlib
import io
import json
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from auditsql import Audit, errors, events
from auditsql.cli.output import err
from tests.cli.clitools import error_line, execute, ok, query, run, scalar

# The module (the package exports the command by the same name).
export_cli = importlib.import_module("auditsql.cli.export")
SINCE = ("--since", "2000-01-01", "--tz", "UTC")


@pytest.fixture
def logged(installed_db: str) -> str:
    db = installed_db
    execute(db, "CREATE TABLE t (id int PRIMARY KEY, v text, doc jsonb)")
    ok("attach", "--dsn", db, "t")
    with psycopg.connect(db) as conn:
        conn.execute("SELECT audit.set_context(actor_id => 'a', request_id => 'r',"
                     " ip_address => '10.0.0.1')")
        conn.execute("INSERT INTO t VALUES (1, e'back\\\\slash \"q\" \\x01 tab\\t nl\\n', "
                     "'{\"k\": \"\\\\\\\\\"}'), (2, 'naïve ☃', NULL)")
        conn.execute("UPDATE t SET v = 'x,y' WHERE id = 2")
        conn.execute("DELETE FROM t WHERE id = 1")
    return db


def stored(db: str) -> list[dict[str, object]]:
    """Every event as the events table holds it, in id order, as JSON."""
    return [r[0] for r in query(db, "SELECT to_jsonb(e) FROM audit.events AS e ORDER BY id")]


def test_jsonl_is_the_stored_log(logged: str) -> None:
    res = ok("export", "--dsn", logged, *SINCE)
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert [list(x) for x in lines] == [events.EXPORT_COLUMNS] * len(lines)
    expected = stored(logged)
    assert len(lines) == len(expected)
    for got, want in zip(lines, expected):
        assert got["occurred_at"].endswith("+00:00")
        got = {**got, "occurred_at": None}
        assert got == {**want, "occurred_at": None}  # type: ignore[arg-type]
    assert lines[1]["after"]["v"] == 'back\\slash "q" \x01 tab\t nl\n'
    assert lines[1]["ip_address"] == "10.0.0.1"
    last = lines[-1]["id"]
    assert res.stderr == f"exported {len(lines)} events; last id {last}\n"


def test_csv(logged: str) -> None:
    res = ok("export", "--dsn", logged, *SINCE, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert list(rows[0]) == events.EXPORT_COLUMNS
    assert [int(r["id"]) for r in rows] == [e["id"] for e in stored(logged)]
    created = [r for r in rows if r["action"] == "created"]
    assert json.loads(created[0]["after"])["v"] == 'back\\slash "q" \x01 tab\t nl\n'


def test_times_in_the_zone(logged: str) -> None:
    res = ok("export", "--dsn", logged, "--since", "1h", "--tz", "Asia/Kolkata")
    assert all(json.loads(x)["occurred_at"].endswith("+05:30") for x in res.stdout.splitlines())


def test_since_and_until(logged: str) -> None:
    assert ok("export", "--dsn", logged, "--since", "1h", "--until", "30m").stdout == ""
    assert ok("export", "--dsn", logged, "--since", "2999-01-01").stderr == "exported 0 events\n"


def test_resume_after_the_last_id(logged: str, tmp_path: Path) -> None:
    target = tmp_path / "events.jsonl"
    first = ok("export", "--dsn", logged, *SINCE, "--output", str(target))
    assert first.stdout == ""
    last = int(first.stderr.split()[-1])
    execute(logged, "INSERT INTO t VALUES (3, 'later')")
    again = ok("export", "--dsn", logged, *SINCE, "--output", str(target), "--after-id",
               str(last))
    assert again.stderr.startswith("exported 1 events; last id ")
    assert [json.loads(x)["id"] for x in target.read_text().splitlines()] == [
        e["id"] for e in stored(logged)]
    # CSV: the resumed part comes without a second header.
    target = tmp_path / "events.csv"
    ok("export", "--dsn", logged, *SINCE, "--format", "csv", "--output", str(target),
       "--until", "2999-01-01")
    middle = scalar(logged, "SELECT id FROM audit.events ORDER BY id OFFSET 2 LIMIT 1")
    target.write_text("".join(target.read_text().splitlines(keepends=True)[:4]))
    ok("export", "--dsn", logged, *SINCE, "--format", "csv", "--output", str(target),
       "--after-id", str(middle))
    assert [int(r["id"]) for r in csv.DictReader(target.open())] == [
        e["id"] for e in stored(logged)]


def csv_records(chunk: bytes) -> list[list[str]]:
    """The CSV records one chunk of an export holds."""
    return list(csv.reader(io.StringIO(chunk.decode(), newline="")))


def test_the_library_export_is_one_stored_event_per_chunk_in_id_order(logged: str) -> None:
    """docs/library.md: `export(...)` is "an iterator of bytes: one stored
    event per chunk, in id order, after the header for `csv` (none with
    `after_id`, which continues an export)"; an entity id holding a line
    break leaves its event one chunk of CSV."""
    execute(logged, "SELECT audit.log_event('signed_in', 'session', E'two\\nlines')")
    ids = [e["id"] for e in stored(logged)]
    with Audit(logged) as audit:
        lines = list(audit.export("jsonl"))
        assert [json.loads(c)["id"] for c in lines] == ids
        assert all(c.endswith(b"\n") and c.count(b"\n") == 1 for c in lines)
        header, *rows = audit.export("csv")
        assert csv_records(header) == [events.EXPORT_COLUMNS]
        assert [[int(r[0]) for r in csv_records(c)] for c in rows] == [[i] for i in ids]
        assert any(c.count(b"\n") > 1 for c in rows)
        after = list(audit.export("csv", after_id=ids[1]))
        assert [[int(r[0]) for r in csv_records(c)] for c in after] == [[i] for i in ids[2:]]
        assert [json.loads(c)["id"] for c in audit.export("jsonl", after_id=ids[1])] == ids[2:]


def test_an_interrupted_export_says_where_to_resume(logged: str, capsys) -> None:  # noqa: ANN001
    with psycopg.connect(logged) as conn:
        chunks = list(events.export(conn, "audit", events.Filter(), "jsonl", "UTC"))

    def broken():  # noqa: ANN202
        yield from chunks[:2]
        raise KeyboardInterrupt
    sink = io.BytesIO()
    with pytest.raises(KeyboardInterrupt):
        export_cli._write(broken(), sink, "jsonl", header=False)
    written = [json.loads(x) for x in sink.getvalue().splitlines()]
    assert len(written) == 2
    assert f"interrupted after 2 events; last id {written[-1]['id']}: resume with " \
           f"--after-id {written[-1]['id']}" in capsys.readouterr().err


def test_progress_on_a_terminal(installed_db: str, monkeypatch, capsys) -> None:  # noqa: ANN001
    execute(installed_db, "CREATE TABLE t (id int PRIMARY KEY)")
    ok("attach", "--dsn", installed_db, "t")
    execute(installed_db, "INSERT INTO t SELECT generate_series(1, 2500)")
    monkeypatch.setattr(export_cli, "PROGRESS_EVERY", 0)
    monkeypatch.setattr(err, "_force_terminal", True)
    with psycopg.connect(installed_db) as conn:
        done = export_cli._write(events.export(conn, "audit", events.Filter(), "jsonl", "UTC"),
                                 io.BytesIO(), "jsonl", header=False)
    assert done.events == 2501
    shown = capsys.readouterr().err
    assert "\rexported 1000 events" in shown and "\rexported 2000 events" in shown


def test_no_progress_off_a_terminal(logged: str) -> None:
    assert "\r" not in ok("export", "--dsn", logged, *SINCE).stderr


@pytest.mark.parametrize(("args", "needles"), [
    (("--since", "soon"), ("invalid time 'soon'",)),
    (("--since", "1d", "--format", "xml"), ("unknown export format 'xml'",)),
    (("--since", "1d", "--after-id", "-3"), ("invalid event id -3",)),
    (("--since", "1d", "--tz", "Nowhere/Land"), ("unknown time zone",)),
    (("--since", "1d", "--output", "/nonexistent/dir/x.jsonl"), ("cannot write",)),
])
def test_bad_values(logged: str, args: tuple[str, ...], needles: tuple[str, ...]) -> None:
    error_line(run("export", "--dsn", logged, *args), 2, *needles)


def test_since_is_required(logged: str) -> None:
    res = run("export", "--dsn", logged)
    assert res.code == 2 and "--since" in res.stderr


def test_jsonl_lines_are_exactly_row_to_json(logged: str) -> None:
    # The bytes of each line, not only what they parse to: row_to_json of
    # the stored columns, in the same order and the same zone.
    execute(logged, "SELECT audit.log_event('signed_in', 'session', E'a\\\\b\\n', "
                    "'{\"m\": \"\\u00e9\"}')")
    res = ok("export", "--dsn", logged, *SINCE)
    cols = ", ".join(events.EXPORT_COLUMNS)
    with psycopg.connect(logged) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        want = [r[0] for r in conn.execute(
            f"SELECT row_to_json(e)::text FROM (SELECT {cols} FROM audit.events ORDER BY id) e")]
    assert res.stdout.encode() == "".join(f"{line}\n" for line in want).encode()
    assert {json.loads(line)["category"] for line in want} == {"data", "system", "app"}
    assert '"entity_id":"a\\\\b\\n"' in res.stdout


def copy_messages(rows: list[bytes], *, extension: bytes = b"",
                  split_header: bool = False) -> list[memoryview]:
    """A binary COPY of one text column as the server sends it."""
    header = b"PGCOPY\n\xff\r\n\x00" + bytes(4) + len(extension).to_bytes(4, "big") + extension
    tuples = [b"\x00\x01" + len(r).to_bytes(4, "big") + r for r in rows]
    messages = [header] + tuples if split_header else (
        [header + tuples[0]] + tuples[1:] if tuples else [header])
    messages.append(b"\xff\xff")
    if not rows and not split_header:
        messages = [header + b"\xff\xff"]
    return [memoryview(m) for m in messages]


@pytest.mark.parametrize("split_header", [False, True])
@pytest.mark.parametrize("extension", [b"", b"ext!"])
@pytest.mark.parametrize("rows", [[], [b'{"id":1}\n'], [b'{"id":1}\n', b"", b'{"id":3}\n']])
def test_binary_copy_lines(rows: list[bytes], extension: bytes, split_header: bool) -> None:
    got = events._binary_lines(iter(copy_messages(rows, extension=extension,
                                                  split_header=split_header)))
    assert [bytes(x) for x in got] == rows


def test_binary_copy_without_its_header() -> None:
    with pytest.raises(errors.DatabaseError, match="binary header"):
        list(events._binary_lines(iter([memoryview(b"\x00\x01\x00\x00\x00\x01x")])))


def test_events_come_in_id_order_not_time_order(installed_db: str) -> None:
    # docs/cli.md: "Export events, oldest first (in id order)"; --after-id
    # resumes only if that holds. A statement that began first (its
    # occurred_at earlier) but waited on a lock writes its event after one
    # that began later.
    db = installed_db
    execute(db, "CREATE TABLE t (id int PRIMARY KEY)")
    ok("attach", "--dsn", db, "t")
    with psycopg.connect(db, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(4242)")
        waiter = threading.Thread(target=execute, args=(
            db, "INSERT INTO t SELECT 1 FROM pg_advisory_lock(4242)"))
        waiter.start()
        deadline = time.monotonic() + 30
        while not scalar(db, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory'"
                            " AND datname = current_database()"):
            assert time.monotonic() < deadline, "the insert did not wait for the lock"
            time.sleep(0.02)
        execute(db, "INSERT INTO t VALUES (2)")
        holder.execute("SELECT pg_advisory_unlock(4242)")
        waiter.join(timeout=30)
    assert query(db, "SELECT entity_id FROM audit.events WHERE action = 'created'"
                     " ORDER BY occurred_at") == [("1",), ("2",)]
    for fmt in ("jsonl", "csv"):
        out = ok("export", "--dsn", db, *SINCE, "--format", fmt).stdout
        got = ([json.loads(x) for x in out.splitlines()] if fmt == "jsonl"
               else list(csv.DictReader(io.StringIO(out))))
        assert [int(e["id"]) for e in got] == [e["id"] for e in stored(db)]
        assert [e["entity_id"] for e in got if e["action"] == "created"] == ["2", "1"]


def test_since_includes_its_time_until_excludes_it_both_read_in_tz(logged: str) -> None:
    # docs/cli.md, export: "--since TIME From this time on", "--until TIME
    # Before this time", "--tz ZONE Read and show times in this zone".
    first, at = query(logged, "SELECT id, occurred_at FROM audit.events ORDER BY id LIMIT 1")[0]
    wall = at.astimezone(ZoneInfo("UTC")).replace(tzinfo=None).isoformat()

    def ids(*args: str) -> list[int]:
        out = ok("export", "--dsn", logged, *args).stdout
        return [json.loads(x)["id"] for x in out.splitlines()]
    assert ids("--since", wall, "--tz", "UTC")[0] == first
    assert first not in ids("--since", "2000-01-01", "--until", wall, "--tz", "UTC")
    # The same wall-clock time read in a zone behind UTC is later: the event
    # is before it; read in a zone ahead of UTC it is earlier.
    assert first not in ids("--since", wall, "--tz", "America/New_York")
    assert ids("--since", wall, "--tz", "Asia/Kolkata")[0] == first
    assert first in ids("--since", "2000-01-01", "--until", wall, "--tz", "America/New_York")
