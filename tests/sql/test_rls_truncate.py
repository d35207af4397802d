"""README, "No user code with audit rights": TRUNCATE capture reads rows with
row_security off, as the owner role. Installed by a role that is no
superuser, the owner role has no BYPASSRLS, so a TRUNCATE of an audited
table under row-level security fails, and loses nothing, rather than run a
policy as the owner or remove rows it could not record."""

from __future__ import annotations

from tests.sql.sqltools import attach, brief, connect, events, expect_error, run, scalar

from .test_bypass import plain_install  # noqa: F401  (the fixture)

ROWS = [("created", "1"), ("created", "2"), ("created", "3")]


def test_truncate_under_row_level_security_fails_and_loses_nothing(
        plain_install: tuple[str, str]) -> None:  # noqa: F811
    su_dsn, installer_dsn = plain_install
    with connect(su_dsn) as su, connect(installer_dsn) as owner:
        owner_role = scalar(su, "SELECT nspowner::regrole::text FROM pg_namespace"
                                " WHERE nspname = 'audit'")
        assert scalar(su, "SELECT rolbypassrls FROM pg_roles WHERE oid = %s::regrole",
                      (owner_role,)) is False
        run(owner,
            "CREATE SCHEMA app",
            "CREATE TABLE app.docs (id int PRIMARY KEY, tenant text NOT NULL)",
            "ALTER TABLE app.docs ENABLE ROW LEVEL SECURITY",
            "CREATE POLICY own ON app.docs USING (tenant = current_user)")
        attach(owner, "app.docs")
        run(owner, "INSERT INTO app.docs VALUES (1, 'a'), (2, 'b'), (3, current_user)")

        error = expect_error(owner, "TRUNCATE app.docs", sqlstate="42501",
                             contains="row-level security")
        assert "capture_truncate" in (error.diag.context or "")
        assert scalar(su, "SELECT count(*) FROM app.docs") == 3, "TRUNCATE removed rows"
        assert brief(events(su, "app.docs")) == ROWS, "the failed TRUNCATE left events"

        # Without row-level security the same TRUNCATE records every row.
        run(owner, "ALTER TABLE app.docs DISABLE ROW LEVEL SECURITY", "TRUNCATE app.docs")
        recorded = brief(events(su, "app.docs"))
        assert recorded[:3] == ROWS
        assert sorted(recorded[3:]) == [("truncated", "1"), ("truncated", "2"), ("truncated", "3")]
