"""Fixtures for the tests that run the documentation's examples."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs.doctools import Ctx, dbname
from tests.harness.server import Server


@pytest.fixture
def ctx(pg: Server, db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ctx]:
    """A fresh database (as the superuser), and a working directory for the
    files examples write."""
    monkeypatch.chdir(tmp_path)
    context = Ctx(pg, db, tmp_path, dbname(db))
    try:
        yield context
    finally:
        context.close()
