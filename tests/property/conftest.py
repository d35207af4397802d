"""Fixtures for the property tests."""

from __future__ import annotations

import psycopg
import pytest

from auditsql import installer
from tests.property.oracle import AUDIT, REPLAY_SQL


@pytest.fixture
def audited_db(db: str) -> str:
    """DSN of a fresh database with auditsql and the replay helpers installed."""
    with psycopg.connect(db, autocommit=True) as conn:
        installer.install(conn, AUDIT)
        conn.execute(REPLAY_SQL)
    return db
