"""The pool of a process's asyncpg connections to one database: SQLAlchemy's sessions
and the autocommitted statements (`rawsql.fetch_row`) both take theirs from it
(`connections`, which also decides what a lost connection means).

Why not asyncpg's own pool (or SQLAlchemy's, which costs as much again): its acquire
and release cost 40-60 microseconds of CPU per statement (timers re-armed, a reset
step, a timeout context), as much as running the statement itself (measured on one
process: a `SELECT 1` took 53-67 us bare, 93-130 us through asyncpg's pool, 54-64 us
through a plain list). Here, taking an idle connection is a list pop and giving it
back an append; a timeout is set up only when the caller actually has to wait.

A connection comes back to the pool only after a statement that ended normally or
with an error from the server; after anything else (a lost connection, a
cancellation mid-statement) it is closed, since its protocol state is unknown.
"""

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

import asyncpg

# A connection idle this long is replaced rather than reused: firewalls and poolers
# drop quiet connections, and a dead one would cost a request its answer.
IDLE_SECONDS = 300.0


class ConnectionPool:
    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        size: int,
        timeout: float,
        *,
        keep: int | None = None,
        ping: bool = False,
        on_discard: Callable[[asyncpg.Connection], None] | None = None,
    ) -> None:
        self._connect = connect
        self._size = size
        self._timeout = timeout
        self._idle: list[tuple[asyncpg.Connection, float]] = []
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._open = 0  # connections open or being opened
        self._generation = 0
        self._born: dict[asyncpg.Connection, int] = {}
        self._closed = False
        # Connections past `keep` (the overflow) are closed when given back unwanted.
        self._keep = size if keep is None else keep
        # Ask an idle connection `SELECT 1` before handing it out (`db_pool_pre_ping`).
        self._ping = ping
        self._on_discard = on_discard

    @property
    def open_connections(self) -> int:
        return self._open

    @property
    def in_use(self) -> int:
        return self._open - len(self._idle)

    async def acquire(self) -> asyncpg.Connection:
        deadline: float | None = None
        while True:
            while self._idle:
                connection, since = self._idle.pop()
                if time.monotonic() - since < IDLE_SECONDS and not connection.is_closed():
                    if not self._ping or await self._answers(connection):
                        return connection
                self._discard(connection)
            if self._open < self._size:
                return await self._new()
            loop = asyncio.get_running_loop()
            deadline = deadline or loop.time() + self._timeout
            handed = await self._wait(loop, deadline)
            if handed is not None:
                return handed
            # A connection was closed, which freed a place: look again.

    @staticmethod
    async def _answers(connection: asyncpg.Connection) -> bool:
        try:
            await connection.execute("SELECT 1")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        return True

    async def _wait(
        self, loop: asyncio.AbstractEventLoop, deadline: float
    ) -> asyncpg.Connection | None:
        waiter: asyncio.Future[asyncpg.Connection | None] = loop.create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                self.release(waiter.result())  # handed over just as we gave up
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    async def _new(self) -> asyncpg.Connection:
        self._open += 1
        try:
            connection = await self._connect()
        except BaseException:
            self._open -= 1
            self._wake(None)
            raise
        self._born[connection] = self._generation
        return connection

    def release(self, connection: asyncpg.Connection, *, reusable: bool = True) -> None:
        """Give a connection back; `reusable=False` closes it."""
        if (
            not reusable
            or self._closed
            or connection.is_closed()
            or self._born.get(connection) != self._generation
        ):
            self._discard(connection)
            return
        if self._wake(connection):
            return
        if self._open > self._keep:
            self._discard(connection)
            return
        self._idle.append((connection, time.monotonic()))

    def expire(self) -> None:
        """After a lost connection: every connection made so far is replaced (idle ones
        now, those in use when given back), as they may all point at a server that is
        gone (a restart, a failover)."""
        self._generation += 1
        while self._idle:
            self._discard(self._idle.pop()[0])

    async def close(self) -> None:
        self._closed = True
        idle = [connection for connection, _ in self._idle]
        self._idle.clear()
        for connection in idle:
            self._open -= 1
            self._born.pop(connection, None)
            if self._on_discard is not None:
                self._on_discard(connection)
            try:
                await connection.close(timeout=2)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                connection.terminate()

    def _discard(self, connection: asyncpg.Connection) -> None:
        self._open -= 1
        self._born.pop(connection, None)
        connection.terminate()
        if self._on_discard is not None:
            self._on_discard(connection)
        self._wake(None)

    def _wake(self, connection: asyncpg.Connection | None) -> bool:
        """Hand `connection` (or, with None, the right to open one) to the first
        caller still waiting; False when none is."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return True
        return False
