"""auditsql.integrations without a database: the context holder follows
tasks and threads, the trusted proxy header is read from the right, values
are quoted. (tests/integrations/test_imports.py runs the slower checks,
in subprocesses.)"""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from auditsql.integrations.context import (
    UNKNOWN, Applied, AuditContext, begin_sql, bind, client_ip, current, set_context_sql,
    update,
)


def test_values_are_text_and_empty_is_none() -> None:
    assert AuditContext.of(actor_id=7, email="", role=None).values() == (
        "7", None, None, None, None, None)


def test_bind_restores_and_update_lasts_to_the_end_of_the_block() -> None:
    assert current() is None
    with bind(actor_id="a", request_id="r") as outer:
        with bind(actor_id="b") as inner:
            assert inner == outer.with_values(actor_id="b")
            update(role="admin")
            assert current() == inner.with_values(role="admin")
        assert current() == outer
    assert current() is None


def test_each_task_has_its_own_and_children_inherit() -> None:
    seen: dict[str, tuple[str | None, str | None]] = {}

    async def request(name: str) -> None:
        with bind(actor_id=name):
            await asyncio.sleep(0)

            async def child() -> str | None:
                await asyncio.sleep(0)
                context = current()
                return context.actor_id if context else None

            task = asyncio.create_task(child())
            in_thread = await asyncio.to_thread(lambda: current())
            seen[name] = (await task, in_thread.actor_id if in_thread else None)

    async def main() -> None:
        await asyncio.gather(*(request(f"user-{i}") for i in range(20)))

    asyncio.run(main())
    assert seen == {f"user-{i}": (f"user-{i}", f"user-{i}") for i in range(20)}


def test_threads_see_it_through_copy_context_only() -> None:
    results: list[object] = []
    with bind(actor_id="a"):
        copied = contextvars.copy_context()
        plain = threading.Thread(target=lambda: results.append(current()))
        carried = threading.Thread(target=lambda: results.append(copied.run(current)))
        plain.start()
        plain.join()
        carried.start()
        carried.join()
    assert results == [None, AuditContext(actor_id="a")]


@pytest.mark.parametrize(("peer", "forwarded", "proxies", "client"), [
    ("10.0.0.1", None, 1, "10.0.0.1"),
    ("10.0.0.1", "", 1, "10.0.0.1"),
    ("10.0.0.1", "203.0.113.7", 1, "203.0.113.7"),
    # The client may write the header itself: only what the trusted
    # proxies appended, from the right, counts.
    ("10.0.0.1", "1.2.3.4, 203.0.113.7", 1, "203.0.113.7"),
    ("10.0.0.1", "1.2.3.4, 203.0.113.7, 10.0.0.2", 2, "203.0.113.7"),
    ("10.0.0.1", "203.0.113.7", 3, "203.0.113.7"),
    (None, None, 1, None),
])
def test_client_address(peer: str | None, forwarded: str | None, proxies: int,
                        client: str | None) -> None:
    assert client_ip(peer, forwarded, proxies) == client


def test_statements_quote_values_and_the_schema() -> None:
    context = AuditContext.of(actor_id="o'b", user_agent="a\\b")
    assert begin_sql(context, 'my "audit"') == (
        'BEGIN; SELECT "my ""audit"""."set_context"(\'o\'\'b\'::text, NULL::text, NULL::text,'
        " NULL::text,  E'a\\\\b'::text, NULL::text)")
    assert set_context_sql(None).startswith('SELECT "audit"."set_context"(NULL::text')


def test_applied_knows_only_what_it_saw() -> None:
    applied = Applied()
    assert applied.context is UNKNOWN and applied.needs(None)
    applied.context = None
    assert not applied.needs(None) and applied.needs(AuditContext(actor_id="a"))
    applied.forget()
    assert applied.needs(None)


def test_the_asgi_middleware_reads_the_request() -> None:
    from auditsql.integrations.starlette import AuditContextMiddleware

    async def app(scope: object, receive: object, send: object) -> None:
        seen.append(current())

    seen: list[AuditContext | None] = []
    middleware = AuditContextMiddleware(app, trusted_proxy_header="X-Forwarded-For")
    scope = {"type": "http", "client": ("10.0.0.1", 5000),
             "headers": [(b"x-forwarded-for", b"1.2.3.4, 203.0.113.7"),
                         (b"user-agent", b"tests"), (b"x-request-id", b"req-1")]}
    asyncio.run(middleware(scope, None, None))
    # Without the id header, an id is made; without the proxy header, the peer.
    asyncio.run(middleware({"type": "http", "client": ("10.0.0.1", 5000), "headers": []},
                           None, None))
    first, second = seen
    assert first == AuditContext(ip_address="203.0.113.7", user_agent="tests",
                                 request_id="req-1")
    assert second is not None and second.ip_address == "10.0.0.1"
    assert second.request_id is not None and len(second.request_id) == 36
    assert current() is None
