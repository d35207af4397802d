"""`auditsql verify` flags a partition created after attach without its
TRUNCATE capture: until attach runs again, a TRUNCATE of that partition
alone is not recorded (README, "Partitioned tables"), so its missing
TRUNCATE capture fails `triggers.capture` (docs/verify.md), in the report and
in the exit code. With the event triggers the partition gets its trigger as
it is created, and verify passes."""

from __future__ import annotations

from tests.cli.clitools import execute, ok, run, scalar
from tests.cli.test_verify import report

SETUP = """
CREATE SCHEMA app;
CREATE TABLE app.parted (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE app.parted_north PARTITION OF app.parted FOR VALUES IN ('north');
"""
LATE = "CREATE TABLE app.parted_south PARTITION OF app.parted FOR VALUES IN ('south')"
# The same, made where no event trigger follows it (as install's own DDL):
# as on an installation made without a superuser.
QUIET_LATE = f"BEGIN; SET LOCAL auditsql.permit_ddl = on; {LATE}; COMMIT"
PROBLEM = "auditsql_capture_truncate on app.parted_south: missing"


def capture_check(dsn: str, code: int) -> dict:
    """The triggers.capture entry of `auditsql verify --json`, which must
    exit with ``code``."""
    payload = report(dsn, code=code)
    return next(c for c in payload["checks"] if c["id"] == "triggers.capture")


def test_verify_flags_a_partition_created_after_attach(db: str) -> None:
    execute(db, SETUP)
    ok("install", "--dsn", db, "--retention", "saas")
    ok("attach", "--dsn", db, "app.parted")
    assert capture_check(db, 0)["status"] == "pass"

    execute(db, QUIET_LATE)
    check = capture_check(db, 1)
    assert (check["status"], check["details"]) == ("fail", [PROBLEM])
    assert "attach" in check["hint"]
    text = run("verify", "--dsn", db)
    assert text.code == 1, str(text)
    assert any(line.split()[:2] == ["FAIL", "triggers.capture"] and PROBLEM in line
               for line in text.stdout.splitlines()), text.stdout

    # What the check is about: until attach runs again, TRUNCATE of the new
    # partition alone leaves no event.
    execute(db, "INSERT INTO app.parted VALUES (1, 'south'); TRUNCATE app.parted_south")
    assert scalar(db, "SELECT count(*) FROM audit.events WHERE action = 'truncated'") == 0

    ok("attach", "--dsn", db, "app.parted")
    check = capture_check(db, 0)
    assert (check["status"], check["details"]) == ("pass", [])
    execute(db, "INSERT INTO app.parted VALUES (2, 'south'); TRUNCATE app.parted_south")
    assert scalar(db, "SELECT array_agg(entity_id) FROM audit.events"
                      " WHERE action = 'truncated'") == ['[2, "south"]']


def test_with_the_event_triggers_a_new_partition_is_covered_at_once(db: str) -> None:
    execute(db, SETUP)
    ok("install", "--dsn", db, "--retention", "saas")
    ok("attach", "--dsn", db, "app.parted")
    execute(db, LATE)
    assert capture_check(db, 0)["status"] == "pass"
    execute(db, "INSERT INTO app.parted VALUES (1, 'south'); TRUNCATE app.parted_south")
    assert scalar(db, "SELECT array_agg(entity_id) FROM audit.events"
                      " WHERE action = 'truncated'") == ['[1, "south"]']
