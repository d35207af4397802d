"""Fixtures for the property tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.templates import Recipe, Templates
from tests.property.oracle import AUDIT, REPLAY_SQL


@pytest.fixture
def audited_db(templates: Templates) -> Iterator[str]:
    """DSN of a new database with auditsql and the replay helpers installed
    (a copy of a template database, see tests/harness/templates.py)."""
    with templates.installed_database(Recipe(AUDIT, then=REPLAY_SQL)) as dsn:
        yield dsn
