"""Statements sent straight to asyncpg: the hot listings, and the one-statement reserve
and confirm (writes, each its own transaction).

Written with named parameters (`:name`, as SQLAlchemy's `text()` takes them), turned
once per distinct text into asyncpg's positional `$1, $2...`. The statement runs on
a pooled connection outside any transaction: one statement is consistent by itself,
and there is no BEGIN or COMMIT to pay for. asyncpg prepares and caches it.

A statement on its own (`fetch_row`) takes its connection from a statement pool kept
beside the engine's (`use_own_pool`, `statement_pool`), connecting with the arguments
SQLAlchemy would use: checking a connection out of SQLAlchemy's pool through
`engine.connect()` cost more CPU than running the statement (~110 against ~60
microseconds per call, measured on one process).
"""

import re
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from appointments.db import driver_arguments
from appointments.settings import Settings
from appointments.statement_pool import StatementPool

# A name after one colon (a `::` cast, a time like 09:15 or HH24:MI are not parameters).
_NAME = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@lru_cache(maxsize=512)
def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """The text with `$n` placeholders, and the parameter name of each n."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _NAME.sub(number, sql), tuple(names)


# Errors that mean the connection itself is gone (a restarted or failed-over server).
_LOST = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
)


class ConnectionLost(ConnectionError):
    """The statement's connection broke (answered 503, like any database outage)."""


async def _fetch(
    driver: asyncpg.Connection, sql: str, values: Mapping[str, object], pgbouncer: bool
) -> Any:
    text, names = positional(sql)
    arguments = [values[name] for name in names]
    if pgbouncer:
        # Parse and execute must reach the same server connection: in a transaction.
        async with driver.transaction():
            return await driver.fetchrow(text, *arguments)
    return await driver.fetchrow(text, *arguments)


async def fetch_row(engine: AsyncEngine, sql: str, values: Mapping[str, object]) -> Any:
    """The statement's first row (an asyncpg Record), or None; on its own, on the
    engine's statement pool (`use_own_pool`, which the app sets up for its engines)."""
    own = _own.get(engine)
    if own is None:
        raise RuntimeError("this engine has no statement pool: call rawsql.use_own_pool")
    return await own.fetch_row(sql, values)


@dataclass
class _OwnPool:
    """The statement pool beside one engine."""

    pool: StatementPool
    pgbouncer: bool

    async def fetch_row(self, sql: str, values: Mapping[str, object]) -> Any:
        reusable = False
        try:
            driver = await self.pool.acquire()
        except TimeoutError:
            # No connection free in time (TimeoutError is an OSError, but nothing was
            # lost): this request alone answers 503; the pool stays as it is.
            raise
        except _LOST as exc:
            self.pool.expire()
            raise ConnectionLost(f"{type(exc).__name__}: {exc}") from exc
        try:
            row = await _fetch(driver, sql, values, self.pgbouncer)
            reusable = True
            return row
        except TimeoutError:
            # The statement outran `command_timeout`: this connection is closed (its
            # protocol state is unknown), the others are fine; 503 for this request.
            raise
        except _LOST as exc:
            # Connections made before a restart or a failover point at a server that is
            # gone: every one is replaced.
            self.pool.expire()
            raise ConnectionLost(f"{type(exc).__name__}: {exc}") from exc
        except asyncpg.PostgresError:
            reusable = True  # the server refused the statement; the connection is fine
            raise
        finally:
            self.pool.release(driver, reusable=reusable)


_own: "weakref.WeakKeyDictionary[AsyncEngine, _OwnPool]" = weakref.WeakKeyDictionary()


def use_own_pool(engine: AsyncEngine, settings: Settings, name: str) -> None:
    """Send `fetch_row`'s statements for this (PostgreSQL) engine through an asyncpg
    pool of `db_pool_size` connections beside the engine's own (named `name` in
    pg_stat_activity, like the engine's)."""
    if engine.dialect.name != "postgresql":
        return
    _, url_arguments = engine.dialect.create_connect_args(engine.sync_engine.url)
    arguments = {**url_arguments, **driver_arguments(settings, name)}

    async def connect() -> asyncpg.Connection:
        connection: asyncpg.Connection = await asyncpg.connect(**arguments)
        return connection

    _own[engine] = _OwnPool(
        StatementPool(connect, settings.db_pool_size, settings.db_pool_timeout_seconds),
        pgbouncer=settings.db_pgbouncer,
    )


def own_pool_use(engine: AsyncEngine) -> tuple[int, int]:
    """Connections of the engine's statement pool: (in use, open); (0, 0) without one."""
    own = _own.get(engine)
    return (own.pool.in_use, own.pool.open_connections) if own is not None else (0, 0)


async def close_own_pool(engine: AsyncEngine) -> None:
    own = _own.pop(engine, None)
    if own is not None:
        await own.pool.close()


# JSON text made by PostgreSQL with string concatenation: half the cost of
# json_build_object + json_agg (1.8 against 3.5 microseconds per row of five
# fields, measured over 100,000 rows), and a smaller body. Only for values whose
# text needs no JSON escaping: uuids, times, and fixed words.


def utc_text(expression: str) -> str:
    """A timestamptz as pydantic writes it in UTC: 2027-03-04T09:15:00Z."""
    return f"replace(({expression} AT TIME ZONE 'UTC')::text, ' ', 'T') || 'Z'"


def json_object(fields: list[tuple[str, str]]) -> str:
    """A JSON object of string values, from (name, SQL expression) pairs."""
    parts = []
    for i, (name, expression) in enumerate(fields):
        before = "{" if i == 0 else '",'  # close the previous value, then the next name
        parts.append(f'\'{before}"{name}":"\' || {expression}')
    return " || ".join(parts) + " || '\"}'"


def json_array(item: str, order: str) -> str:
    """The JSON array of `item` over the rows aggregated, in `order`; [] for none."""
    return f"coalesce('[' || string_agg({item}, ',' ORDER BY {order}) || ']', '[]')"
