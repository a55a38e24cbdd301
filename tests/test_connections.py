"""The one pool of a process's PostgreSQL connections (`connections`), behind SQLAlchemy's
sessions and `rawsql.fetch_row` alike, against a real PostgreSQL."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
import sqlalchemy.exc
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import text

from appointments import connections, rawsql
from appointments.auth.tokens import Role
from appointments.clock import FrozenClock
from appointments.connection_pool import ConnectionPool
from appointments.db import create_engine, create_sessionmaker, transaction
from appointments.errors import is_transient_database_error
from appointments.main import create_app
from appointments.observability.metrics import sample_pool
from appointments.settings import Settings
from tests.api import Api, bearer, service_settings
from tests.conftest import START


def dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def connector(url: str, name: str) -> Callable[[], Awaitable[asyncpg.Connection]]:
    async def connect() -> asyncpg.Connection:
        connection: asyncpg.Connection = await asyncpg.connect(
            dsn(url), server_settings={"application_name": name}
        )
        return connection

    return connect


async def backends(url: str, name: str) -> int:
    probe = await asyncpg.connect(dsn(url))
    try:
        count: int = await probe.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", name
        )
        return count
    finally:
        await probe.close()


def test_many_callers_share_a_few_connections(postgresql_url: str) -> None:
    name = f"pool-{uuid.uuid4().hex[:8]}"

    async def scenario() -> tuple[list[int], int, int]:
        pool = ConnectionPool(connector(postgresql_url, name), size=3, timeout=5)

        async def one(i: int) -> int:
            connection = await pool.acquire()
            try:
                value: int = await connection.fetchval("SELECT $1::int FROM pg_sleep(0.01)", i)
                return value
            finally:
                pool.release(connection)

        answers = await asyncio.gather(*(one(i) for i in range(60)))
        opened = await backends(postgresql_url, name)
        held = pool.open_connections
        await pool.close()
        return answers, opened, held

    answers, opened, held = asyncio.run(scenario())
    assert answers == list(range(60))
    assert opened == held == 3


def test_a_caller_waits_for_a_connection_then_gives_up(postgresql_url: str) -> None:
    async def scenario() -> None:
        impatient = ConnectionPool(connector(postgresql_url, "pool-wait"), size=1, timeout=0.2)
        first = await impatient.acquire()
        with pytest.raises(TimeoutError):
            await impatient.acquire()
        impatient.release(first)
        await impatient.close()
        # A waiter is handed the connection given back.
        patient = ConnectionPool(connector(postgresql_url, "pool-wait"), size=1, timeout=30)
        first = await patient.acquire()
        waiting = asyncio.ensure_future(patient.acquire())
        await asyncio.sleep(0.05)
        patient.release(first)
        assert await waiting is first
        patient.release(first)
        await patient.close()

    asyncio.run(scenario())


def test_a_connection_not_reusable_is_closed_and_its_place_freed(postgresql_url: str) -> None:
    async def scenario() -> None:
        pool = ConnectionPool(connector(postgresql_url, "pool-discard"), size=1, timeout=2)
        first = await pool.acquire()
        waiting = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.05)
        pool.release(first, reusable=False)
        second = await waiting  # opened anew in the freed place
        assert second is not first
        assert first.is_closed()
        assert await second.fetchval("SELECT 1") == 1
        pool.release(second)
        assert pool.open_connections == 1
        await pool.close()

    asyncio.run(scenario())


def shared(engine: Any) -> connections.Connections:
    found = connections.of(engine)
    assert found is not None
    return found


def run_with_engine(url: str, body: Callable[[Any], Awaitable[None]]) -> None:
    settings: Settings = service_settings(url).model_copy(update={"db_pool_size": 2})

    async def scenario() -> None:
        engine = create_engine(settings, name="pool-engine")
        try:
            await body(engine)
        finally:
            await connections.close(engine)
            await engine.dispose()

    asyncio.run(scenario())


async def terminate(url: str) -> None:
    killer = await asyncpg.connect(dsn(url))
    await killer.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'pool-engine'"
    )
    await killer.close()


def test_lost_connections_are_replaced(postgresql_url: str) -> None:
    async def body(engine: Any) -> None:
        assert (await rawsql.fetch_row(engine, "SELECT :n::int AS n", {"n": 1}))["n"] == 1
        # Lost while idle: noticed when taken, replaced, the statement runs.
        await terminate(postgresql_url)
        await asyncio.sleep(0.1)
        assert (await rawsql.fetch_row(engine, "SELECT :n::int AS n", {"n": 2}))["n"] == 2
        # Lost under a statement: that one fails as a lost connection (503), the next runs.
        slow = asyncio.ensure_future(rawsql.fetch_row(engine, "SELECT pg_sleep(3)", {}))
        await asyncio.sleep(0.2)
        await terminate(postgresql_url)
        with pytest.raises(connections.ConnectionLost):
            await slow
        assert (await rawsql.fetch_row(engine, "SELECT :n::int AS n", {"n": 3}))["n"] == 3

    run_with_engine(postgresql_url, body)


def test_a_statement_cancelled_midway_does_not_leave_its_connection_in_the_pool(
    postgresql_url: str,
) -> None:
    async def body(engine: Any) -> None:
        slow = asyncio.ensure_future(rawsql.fetch_row(engine, "SELECT pg_sleep(5)", {}))
        await asyncio.sleep(0.2)
        pool = shared(engine).pool
        assert pool.in_use == 1
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        # Closed, not given back: its place is free and nothing idles in the pool.
        assert (pool.open_connections, pool.in_use) == (0, 0)
        # Both places usable again: the cancelled one was closed, not handed on busy.
        rows = await asyncio.gather(
            *(rawsql.fetch_row(engine, "SELECT :n::int AS n", {"n": n}) for n in range(4))
        )
        assert [row["n"] for row in rows] == [0, 1, 2, 3]

    run_with_engine(postgresql_url, body)


def test_a_server_error_keeps_the_connection(postgresql_url: str) -> None:
    async def body(engine: Any) -> None:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await rawsql.fetch_row(engine, "SELECT 1 / :n AS x", {"n": 0})
        pool = shared(engine).pool
        assert pool.open_connections == 1
        assert (await rawsql.fetch_row(engine, "SELECT 1 / :n AS x", {"n": 1}))["x"] == 1
        assert pool.open_connections == 1

    run_with_engine(postgresql_url, body)


def gauge(name: str) -> float:
    value = REGISTRY.get_sample_value(name)
    assert value is not None
    return value


def test_the_pool_metrics_count_statements_on_their_own(postgresql_url: str) -> None:
    async def body(engine: Any) -> None:
        slow = asyncio.ensure_future(rawsql.fetch_row(engine, "SELECT pg_sleep(0.5)", {}))
        await asyncio.sleep(0.2)
        sample_pool(engine)
        in_use = gauge("appointments_db_pool_in_use")
        await slow
        sample_pool(engine)
        assert in_use >= 1
        assert gauge("appointments_db_pool_in_use") == in_use - 1
        assert gauge("appointments_db_pool_size") >= 1

    run_with_engine(postgresql_url, body)


def test_waiting_too_long_for_a_connection_fails_that_statement_only(postgresql_url: str) -> None:
    """TimeoutError is an OSError, yet nothing was lost: no pool-wide reconnect."""
    settings = service_settings(postgresql_url).model_copy(
        update={"db_pool_size": 1, "db_pool_timeout_seconds": 0.2}
    )

    async def scenario() -> None:
        engine = create_engine(settings, name="pool-timeout")
        pool = shared(engine).pool
        try:
            assert (await rawsql.fetch_row(engine, "SELECT 1 AS n", {}))["n"] == 1
            held = await pool.acquire()
            with pytest.raises(TimeoutError):
                await rawsql.fetch_row(engine, "SELECT 1 AS n", {})
            pool.release(held)
            # The same connection serves the next statement: the pool was not expired.
            assert pool.open_connections == 1
            reused = await pool.acquire()
            assert reused is held
            assert not held.is_closed()
            pool.release(reused)
        finally:
            await connections.close(engine)
            await engine.dispose()

    asyncio.run(scenario())


def test_a_statement_past_its_timeout_closes_its_connection_only(postgresql_url: str) -> None:
    settings = service_settings(postgresql_url).model_copy(
        update={"db_pool_size": 2, "db_statement_timeout_seconds": 0.3}
    )

    async def scenario() -> None:
        engine = create_engine(settings, name="pool-statement-timeout")
        pool = shared(engine).pool
        try:
            idle = await pool.acquire()
            busy = await pool.acquire()
            pool.release(busy)
            with pytest.raises(TimeoutError):
                await rawsql.fetch_row(engine, "SELECT pg_sleep(2)", {})
            assert busy.is_closed()
            pool.release(idle)
            assert pool.open_connections == 1
            assert (await pool.acquire()) is idle
            pool.release(idle)
        finally:
            await connections.close(engine)
            await engine.dispose()

    asyncio.run(scenario())


def test_a_statement_refused_for_its_timeout_is_503_not_500() -> None:
    assert is_transient_database_error(asyncpg.QueryCanceledError("statement timeout"))
    assert is_transient_database_error(asyncpg.LockNotAvailableError("lock timeout"))
    assert is_transient_database_error(sqlalchemy.exc.TimeoutError("QueuePool limit reached"))
    assert not is_transient_database_error(asyncpg.DivisionByZeroError("no"))


def test_sessions_and_statements_share_one_pool(postgresql_url: str) -> None:
    """One connection serves a transaction and a statement on its own; while a session
    holds it, a statement waits for it (and gives up after the pool's timeout)."""
    settings = service_settings(postgresql_url).model_copy(
        update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout_seconds": 0.3}
    )
    name = f"shared-{uuid.uuid4().hex[:8]}"

    async def scenario() -> None:
        engine = create_engine(settings, name=name)
        sessionmaker = create_sessionmaker(engine)
        try:
            async with transaction(sessionmaker, writes=True) as session:
                assert (await session.execute(text("SELECT 1"))).scalar() == 1
                with pytest.raises(TimeoutError):
                    await rawsql.fetch_row(engine, "SELECT 2 AS n", {})
            assert (await rawsql.fetch_row(engine, "SELECT 3 AS n", {}))["n"] == 3
            assert await backends(postgresql_url, name) == 1
            assert shared(engine).pool.open_connections == 1
        finally:
            await connections.close(engine)
            await engine.dispose()

    asyncio.run(scenario())


def test_a_connection_lost_under_a_session_replaces_the_statements_ones(
    postgresql_url: str,
) -> None:
    settings = service_settings(postgresql_url).model_copy(update={"db_pool_size": 2})
    name = f"lost-{uuid.uuid4().hex[:8]}"

    async def scenario() -> None:
        engine = create_engine(settings, name=name)
        sessionmaker = create_sessionmaker(engine)
        pool = shared(engine).pool

        async def die_under_a_session() -> None:
            async with transaction(sessionmaker, writes=True) as session:
                pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar()
                killer = await asyncpg.connect(dsn(postgresql_url))
                await killer.execute("SELECT pg_terminate_backend($1)", pid)
                await killer.close()
                await asyncio.sleep(0.1)
                await session.execute(text("SELECT 1"))

        try:
            await asyncio.gather(
                *(rawsql.fetch_row(engine, "SELECT pg_sleep(0.1)", {}) for _ in range(2))
            )
            assert pool.open_connections == 2
            # The session's own backend dies under it; the other connection, idle in
            # the pool, is alive and would serve the next statement if nothing expired it.
            with pytest.raises(sqlalchemy.exc.DBAPIError) as lost:
                await die_under_a_session()
            assert lost.value.connection_invalidated
            assert is_transient_database_error(lost.value)
            # Every connection made before the loss is replaced, the idle one included.
            assert pool.open_connections == 0
            assert (await rawsql.fetch_row(engine, "SELECT 4 AS n", {}))["n"] == 4
            async with transaction(sessionmaker, writes=True) as session:
                assert (await session.execute(text("SELECT 5"))).scalar() == 5
        finally:
            await connections.close(engine)
            await engine.dispose()

    asyncio.run(scenario())


def test_overflow_connections_close_when_given_back(postgresql_url: str) -> None:
    settings = service_settings(postgresql_url).model_copy(
        update={"db_pool_size": 1, "db_max_overflow": 1}
    )

    async def scenario() -> None:
        engine = create_engine(settings, name="pool-overflow")
        pool = shared(engine).pool
        try:
            slow = [rawsql.fetch_row(engine, "SELECT pg_sleep(0.2)", {}) for _ in range(2)]
            both = asyncio.gather(*slow)
            await asyncio.sleep(0.1)
            assert pool.in_use == 2
            await both
            assert (pool.open_connections, pool.in_use) == (1, 0)
        finally:
            await connections.close(engine)
            await engine.dispose()

    asyncio.run(scenario())


def test_a_request_holds_one_connection_at_a_time(postgresql_url: str) -> None:
    """Through FastAPI (fast paths off), with one connection per process: a reserve and
    a confirm written as one statement on their own, and the listings built by
    PostgreSQL, all answer; a session that took its connection before deciding would
    leave the statement waiting for a second one (503 after the pool's timeout)."""
    settings = service_settings(postgresql_url).model_copy(
        update={
            "db_pool_size": 1,
            "db_max_overflow": 0,
            "db_pool_timeout_seconds": 0.5,
            "fast_paths": False,
        }
    )
    app = create_app(settings, FrozenClock(START))
    with TestClient(app, headers=bearer(Role.ADMIN, "test-admin")) as client:
        api = Api(client)
        try:
            provider = api.provider()
            customer = api.customer()
            slot = api.slot(provider["id"], START + timedelta(days=3))
            held = api.reserve(customer["id"], slot["id"])
            assert held.status_code == 201, held.text
            confirmed = api.confirm(customer["id"], held.json()["id"])
            assert confirmed.status_code == 200, confirmed.text
            listing = client.get(f"/providers/{provider['id']}/availability?status=all")
            assert listing.status_code == 200, listing.text
            assert [s["status"] for s in listing.json()["items"]] == ["confirmed"]
            assert shared(app.state.engine).pool.open_connections == 1
        finally:
            api.reset()


def test_connections_run_without_jit(postgresql_url: str) -> None:
    """A statement the planner prices past `jit_above_cost` (a series' start times) is
    not JIT-compiled on every page: the service's connections start with jit off."""
    settings = service_settings(postgresql_url)

    async def scenario() -> None:
        engine = create_engine(settings, name="no-jit")
        sessionmaker = create_sessionmaker(engine)
        try:
            assert (await rawsql.fetch_row(engine, "SHOW jit", {}))["jit"] == "off"
            async with transaction(sessionmaker, writes=False) as session:
                assert (await session.execute(text("SHOW jit"))).scalar() == "off"
        finally:
            await connections.close(engine)
            await engine.dispose()

    asyncio.run(scenario())
