"""Install and upgrade wait for a lock one second at most, then try again;
in the end they give up with a sentence, having changed nothing."""

from __future__ import annotations

import psycopg
import pytest

from auditsql import errors, installer
from auditsql.render import Settings


def test_a_lock_held_throughout_makes_upgrade_give_up(
        db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        installer.install(conn, Settings())
        conn.execute("CREATE TABLE public.t (id int PRIMARY KEY)")
        conn.execute("SELECT audit.attach('public.t')")
        before = conn.execute("SELECT count(*) FROM audit.installation").fetchone()
    monkeypatch.setattr(installer, "LOCK_ATTEMPTS", 2)
    with psycopg.connect(db) as holder, psycopg.connect(db) as conn:
        holder.execute("INSERT INTO public.t VALUES (1)")  # open, holding public.t
        with pytest.raises(errors.DatabaseError) as caught:
            installer.upgrade(conn, "audit")
        holder.commit()
        assert str(caught.value) == (
            "gave up after 2 attempts: each time, another transaction held a lock it needs "
            "(on an audited table or the log) for more than a second; run it again when that "
            "transaction is done (canceling statement due to lock timeout)")
        assert conn.execute("SELECT count(*) FROM audit.installation").fetchone() == before
        # Once the transaction is done, it goes through.
        assert installer.upgrade(conn, "audit").up_to_date
