"""The CLI refuses an on-change action before it reaches the server by the
same rule as audit.action_category: for any text, one refuses it exactly
when the other does."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditsql import errors
from auditsql.installer import check_action
from auditsql.render import event_actions

NAMED = [*event_actions("data"), *event_actions("system"), *event_actions("auth")]

actions = st.one_of(
    st.sampled_from(NAMED),
    st.from_regex(r"[a-z][a-z0-9_]{0,65}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9_\-. ]{0,66}", fullmatch=True),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
            max_size=70),  # text PostgreSQL can hold
)


def server_refuses(conn: psycopg.Connection, action: str) -> bool:
    try:
        with conn.transaction():
            conn.execute("SELECT audit.action_category(%s)", (action,))
    except (psycopg.errors.InvalidParameterValue, psycopg.errors.InsufficientPrivilege):
        return True
    return False


def client_refuses(action: str) -> bool:
    try:
        check_action(action)
    except errors.InvalidValue:
        return True
    return False


@pytest.mark.parametrize("action", [*NAMED, "", "a" * 63, "a" * 64, "Role", "rôle", "a\n"])
def test_the_rule_on_the_edges(audited_db: str, action: str) -> None:
    with psycopg.connect(audited_db) as conn:
        assert client_refuses(action) == server_refuses(conn, action)


def test_the_rule_on_any_text(audited_db: str) -> None:
    with psycopg.connect(audited_db) as conn:

        @settings(max_examples=300, deadline=None)
        @given(action=actions)
        def agree(action: str) -> None:
            assert client_refuses(action) == server_refuses(conn, action), repr(action)

        agree()
