"""Every PostgreSQL connection of a process to one database, in one pool, and the one
place that knows what a lost connection and PgBouncer change.

SQLAlchemy's sessions (transactions) and the autocommitted statements (`fetch_row`:
the hot listings, the one-statement reserve and confirm) take their connections from
the same `ConnectionPool`: SQLAlchemy through `SharedPool`, a pool class that hands
it the pool's asyncpg connections (each wrapped once, so SQLAlchemy's per-connection
set-up runs once per connection, not per checkout), the statements straight from
the pool (a list pop: checking out through SQLAlchemy's pool costs ~50 us of CPU
more per statement, measured on one process, as much as the statement itself).

A lost connection, noticed by either, expires every connection made so far (the
server they point at may be gone: a restart, a failover); each is replaced when it
is next taken or given back. Behind PgBouncer (transaction pooling), statements may
not be prepared across transactions: asyncpg caches none, SQLAlchemy names its own
uniquely, and a statement on its own runs inside a transaction (parse and execute
must reach the same server connection).
"""

import uuid
from collections.abc import Callable, Mapping
from typing import Any

import asyncpg
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry, Pool, PoolProxiedConnection
from sqlalchemy.util import await_only

from appointments.connection_pool import ConnectionPool
from appointments.settings import Settings

# Errors that mean the connection itself is gone (a restarted or failed-over server).
LOST = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
)


class ConnectionLost(ConnectionError):
    """The statement's connection broke (answered 503, like any database outage)."""


def driver_arguments(settings: Settings, name: str) -> dict[str, Any]:
    """What asyncpg's connect takes besides the URL's parts."""
    return {
        "timeout": settings.db_connect_timeout_seconds,
        "command_timeout": settings.db_statement_timeout_seconds,
        # Shown in pg_stat_activity: which connections are the service's, and
        # which of them serve reads (on a replica).
        # DateStyle: the JSON PostgreSQL builds (rawsql.utc_text) prints times as
        # `::text` does, which follows it; a server or role set to 'SQL, DMY' would
        # otherwise answer 16/12/2026 09:00:00. PgBouncer keeps it per client too.
        # TimeZone: PostgreSQL adds an interval's days as calendar days of the session's
        # zone (23 or 25 hours across its daylight-saving changes), and asyncpg sends a
        # timedelta's days as days: a series' later weeks shifted by "20 days 23:00"
        # landed an hour off on a server set to Europe/Berlin (tests/test_server_timezone.py).
        # In UTC a day is 24 hours. PgBouncer keeps it per client too.
        # jit: the service's statements are short; a plan priced past
        # `jit_above_cost` (a series' start times: the planner cannot tell how many
        # candidates pass) was JIT-compiled at every page, or, where no JIT provider
        # is installed, spent ~100 ms failing to load one (bench.series: 106 against
        # 3.8 ms a page). PgBouncer refuses startup parameters it does not track, so
        # behind it the role or database should carry `jit = off` (docs/deploy.md).
        # random_page_cost: 1.1, SSD storage (PostgreSQL's 4 is priced for spinning
        # disks). With 4, a provider's start-time page was planned as a bitmap scan of
        # all its slots and a sort as soon as several providers' slots interleave on
        # disk (4 ms and ~550 buffers a page, against 0.1 ms and 4 buffers for the
        # ordered index scan the LIMIT stops early; tests/appointment_types/
        # test_start_time_plan.py).
        "server_settings": {
            "application_name": name,
            "DateStyle": "ISO, YMD",
            "TimeZone": "UTC",
            **({} if settings.db_pgbouncer else {"jit": "off", "random_page_cost": "1.1"}),
        },
        **({"statement_cache_size": 0} if settings.db_pgbouncer else {}),
    }


# Behind PgBouncer in transaction pooling, a prepared statement lives on one server
# connection, which is ours only until the transaction ends: asyncpg must not cache
# statements across transactions (`driver_arguments`), and SQLAlchemy's must have
# names no other client can have prepared on that server connection.
_PGBOUNCER_ADAPTER: dict[str, object] = {
    "prepared_statement_cache_size": 0,
    "prepared_statement_name_func": lambda: f"__asyncpg_{uuid.uuid4().hex}__",
}


class Connections:
    """One database's connections in this process: the pool, SQLAlchemy's wrapping of
    each, and what a lost connection or PgBouncer changes."""

    def __init__(self, settings: Settings, name: str) -> None:
        self.pgbouncer = settings.db_pgbouncer
        self._name = name
        self._settings = settings
        self._arguments: dict[str, Any] = {}
        self.pool = ConnectionPool(
            self._connect,
            settings.db_pool_size + settings.db_max_overflow,
            settings.db_pool_timeout_seconds,
            keep=settings.db_pool_size,
            ping=settings.db_pool_pre_ping,
            on_discard=self._forget,
        )
        # SQLAlchemy's record of each pooled connection, made the first time a session
        # takes it; and the connection of each record (a record forgets it when invalidated).
        self._records: dict[asyncpg.Connection, ConnectionPoolEntry] = {}
        self._drivers: dict[int, asyncpg.Connection] = {}
        self._handing: asyncpg.Connection | None = None
        self._engine: AsyncEngine | None = None

    def bind(self, engine: AsyncEngine) -> None:
        """Connect as the engine would (its URL's host, user, database...)."""
        _, url_arguments = engine.dialect.create_connect_args(engine.sync_engine.url)
        self._arguments = {**url_arguments, **driver_arguments(self._settings, self._name)}
        self._engine = engine

    async def _connect(self) -> asyncpg.Connection:
        connection: asyncpg.Connection = await asyncpg.connect(**self._arguments)
        return connection

    # --- statements on their own --------------------------------------------------

    async def fetch_row(
        self, run: Callable[[asyncpg.Connection], Any], *, in_transaction: bool = False
    ) -> Any:
        """`run(connection)`'s result, on a pooled connection outside any session."""
        reusable = False
        try:
            driver = await self.pool.acquire()
        except TimeoutError:
            # No connection free in time (TimeoutError is an OSError, but nothing was
            # lost): this request alone answers 503; the pool stays as it is.
            raise
        except LOST as exc:
            self.pool.expire()
            raise ConnectionLost(f"{type(exc).__name__}: {exc}") from exc
        try:
            if self.pgbouncer or in_transaction:
                # Parse and execute must reach the same server connection: in a transaction.
                async with driver.transaction():
                    row = await run(driver)
            else:
                row = await run(driver)
            reusable = True
            return row
        except TimeoutError:
            # The statement outran `command_timeout`: this connection is closed (its
            # protocol state is unknown), the others are fine; 503 for this request.
            raise
        except LOST as exc:
            self.pool.expire()
            raise ConnectionLost(f"{type(exc).__name__}: {exc}") from exc
        except asyncpg.PostgresError:
            reusable = True  # the server refused the statement; the connection is fine
            raise
        finally:
            self.pool.release(driver, reusable=reusable)

    # --- SQLAlchemy's side (called by SharedPool, inside its greenlet) -------------

    def creator(self) -> DBAPIConnection:
        """SQLAlchemy's DBAPI connection around the pooled connection being handed over."""
        assert self._engine is not None
        dbapi = self._engine.sync_engine.dialect.dbapi
        assert dbapi is not None
        adapter = _PGBOUNCER_ADAPTER if self.pgbouncer else {}
        connection: DBAPIConnection = dbapi.connect(async_creator_fn=self._handed, **adapter)
        return connection

    async def _handed(self) -> asyncpg.Connection:
        driver, self._handing = self._handing, None
        if driver is None:
            # A record reconnecting in place; SharedPool never reuses an invalidated one.
            raise RuntimeError("SharedPool hands out pooled connections only")
        return driver

    def take(self, pool: Pool) -> ConnectionPoolEntry:
        driver = await_only(self.pool.acquire())
        record = self._records.get(driver)
        if record is not None:
            return record
        self._handing = driver
        try:
            record = pool._create_connection()
        except BaseException:
            self.pool.release(driver, reusable=False)
            raise
        finally:
            self._handing = None
        self._records[driver] = record
        self._drivers[id(record)] = driver
        return record

    def give_back(self, record: ConnectionPoolEntry) -> None:
        driver = self._drivers.get(id(record))
        if driver is None:
            record.close()
            return
        # A record without a connection was invalidated (lost): its driver is closed.
        self.pool.release(driver, reusable=record.dbapi_connection is not None)

    def _forget(self, driver: asyncpg.Connection) -> None:
        record = self._records.pop(driver, None)
        if record is not None:
            self._drivers.pop(id(record), None)

    async def close(self) -> None:
        await self.pool.close()


class SharedPool(Pool):
    """SQLAlchemy's pool interface over `Connections.pool` (PostgreSQL only)."""

    _is_asyncio = True

    # `connections` is positional so that create_engine hands it over (it passes the
    # pool class only the arguments its __init__ names positionally).
    def __init__(self, creator: Any, connections: Connections | None = None, **kw: Any) -> None:
        super().__init__(creator, **kw)
        assert connections is not None
        self.connections = connections

    def _do_get(self) -> ConnectionPoolEntry:
        return self.connections.take(self)

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        self.connections.give_back(record)

    def _invalidate(
        self,
        connection: PoolProxiedConnection,
        exception: BaseException | None = None,
        _checkin: bool = True,
    ) -> None:
        # A disconnect seen by a session: every connection is replaced, as for a
        # statement on its own (`Connections.fetch_row`).
        self.connections.pool.expire()
        if _checkin and getattr(connection, "is_valid", False):
            connection.invalidate(exception)

    def status(self) -> str:
        pool = self.connections.pool
        return f"SharedPool in use {pool.in_use} of {pool.open_connections} open"

    def dispose(self) -> None:
        self.connections.pool.expire()

    def recreate(self) -> "SharedPool":
        return SharedPool(
            self._creator,
            connections=self.connections,
            recycle=self._recycle,
            echo=self.echo,
            logging_name=self._orig_logging_name,
            reset_on_return=self._reset_on_return,
            _dispatch=self.dispatch,
            dialect=self._dialect,
        )


def of(engine: AsyncEngine) -> Connections | None:
    """The engine's connections (None on SQLite, whose engine keeps its own pool); an
    engine with other execution options (`db._with_options`) shares its pool."""
    pool = engine.sync_engine.pool
    return pool.connections if isinstance(pool, SharedPool) else None


def engine_options(connections: Connections) -> Mapping[str, Any]:
    """What `create_async_engine` takes to draw on `connections`."""
    return {
        "poolclass": SharedPool,
        "connections": connections,
        "creator": connections.creator,
        "execution_options": {"pgbouncer": connections.pgbouncer},
    }


def behind_pgbouncer(engine: AsyncEngine) -> bool:
    return bool(engine.sync_engine.get_execution_options().get("pgbouncer"))


async def close(engine: AsyncEngine) -> None:
    """Close the engine's connections (at shutdown, before `engine.dispose()`)."""
    connections = of(engine)
    if connections is not None:
        await connections.close()
