"""Fixtures for the CLI tests: a database shared by a test module, and role
names for install's role options."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.harness.databases import scratch_database, unique_name
from tests.harness.roles import drop_role
from tests.harness.server import Server


@pytest.fixture(scope="module")
def module_db(pg: Server) -> Iterator[str]:
    """Superuser DSN of an empty database shared by one test module."""
    with scratch_database(pg, prefix="auditsql_cli") as dsn:
        yield dsn


@pytest.fixture
def role_names(pg: Server) -> Iterator[Callable[..., str]]:
    """Factory of unique role names for ``--owner-role``/``--reader-role``;
    whatever roles by those names exist at teardown are dropped."""
    names: list[str] = []

    def make(prefix: str = "auditsql_cli", suffix: str = "") -> str:
        name = unique_name(prefix) + suffix
        names.append(name)
        return name

    yield make
    for name in names:
        drop_role(pg, name)
