"""A gate for race tests on PostgreSQL: hold a lock from a connection of our own, see
the racers queue up behind it in `pg_stat_activity`, then let them all go at once.

A race test that only fires requests "at the same time" may pass just as well when
they happen to run one after another; one that waits until every racer is seen
waiting on the lock has proven that they overlapped.
"""

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg

T = TypeVar("T")

WAITERS = """
SELECT count(*) FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid()
   AND wait_event_type = 'Lock' AND state = 'active'
"""


class Gate:
    def __init__(self, database_url: str) -> None:
        self._loop = asyncio.new_event_loop()
        dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
        self._connection: asyncpg.Connection = self._run(asyncpg.connect(dsn))
        self._holding = False

    def _run(self, step: Any) -> Any:
        return self._loop.run_until_complete(step)

    def hold(self, statement: str, *args: Any) -> None:
        """Begin a transaction and run `statement` in it (say a `SELECT ... FOR UPDATE`)."""
        self._run(self._connection.execute("BEGIN"))
        self._holding = True
        self._run(self._connection.execute(statement, *args))

    def waiters(self) -> int:
        # Inside a transaction the activity view is read once and kept: drop that copy.
        self._run(self._connection.execute("SELECT pg_stat_clear_snapshot()"))
        return int(self._run(self._connection.fetchval(WAITERS)))

    def wait_for(self, count: int, timeout: float = 30) -> None:
        """Return once at least `count` other sessions wait on a lock; fail after `timeout`."""
        deadline = time.monotonic() + timeout
        while (seen := self.waiters()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {seen} of {count} racers were seen waiting")
            time.sleep(0.02)

    def release(self) -> None:
        if self._holding:
            self._holding = False
            self._run(self._connection.execute("ROLLBACK"))

    def commit(self) -> None:
        """Let the waiters go with what the held transaction did made permanent."""
        assert self._holding
        self._holding = False
        self._run(self._connection.execute("COMMIT"))

    def sql(self, statement: str, *args: Any) -> list[Any]:
        """Run a statement outside the held transaction (only while not holding)."""
        assert not self._holding
        return list(self._run(self._connection.fetch(statement, *args)))

    def close(self) -> None:
        self.release()
        self._run(self._connection.close())
        self._loop.close()


@contextmanager
def gate(database_url: str) -> Iterator[Gate]:
    opened = Gate(database_url)
    try:
        yield opened
    finally:
        opened.close()


class SqliteGate:
    """SQLite's one write lock, taken from a connection of our own (BEGIN IMMEDIATE):
    every writer waits in its busy handler until we let go. SQLite cannot show who
    waits, so `race` proves the overlap by time instead (all in flight at the release)."""

    def __init__(self, database_url: str) -> None:
        path = database_url.split(":///", 1)[1]
        self._connection = sqlite3.connect(path, isolation_level=None, timeout=30)

    def hold(self, _statement: str = "", *_args: Any) -> None:
        self._connection.execute("BEGIN IMMEDIATE")

    def wait_for(self, count: int, timeout: float = 30) -> None:
        del count, timeout
        time.sleep(SQLITE_HOLD_SECONDS)

    def release(self) -> None:
        if self._connection.in_transaction:
            self._connection.execute("ROLLBACK")

    def close(self) -> None:
        self.release()
        self._connection.close()


# Long enough for every racer to reach the lock, well inside the pool's 5 s wait.
SQLITE_HOLD_SECONDS = 1.0
# Every write path writes reservations: holding this lock stops each racer at its
# first write of them (or behind a rival's row lock taken just before), where
# pg_stat_activity shows it waiting.
HOLD_WRITES = "LOCK TABLE reservations IN SHARE MODE"


@dataclass(frozen=True)
class Timed(Generic[T]):
    started: float
    ended: float
    value: T


def race(database_url: str, tasks: Sequence[Callable[[], T]]) -> list[T]:
    """Run every task against a held database, release them together, return their
    results (an exception in a task is raised here). Proven to overlap: on PostgreSQL
    all are seen waiting on locks before the release; on both databases every task
    started before the release and ended after it."""
    held: Gate | SqliteGate = (
        Gate(database_url) if database_url.startswith("postgresql") else SqliteGate(database_url)
    )

    def timed(task: Callable[[], T]) -> Timed[T]:
        started = time.monotonic()
        value = task()
        return Timed(started, time.monotonic(), value)

    try:
        held.hold(HOLD_WRITES)
        with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
            futures = [pool.submit(timed, task) for task in tasks]
            held.wait_for(len(tasks))
            released = time.monotonic()
            held.release()
            results = [future.result() for future in futures]
    finally:
        held.close()
    in_flight = sum(1 for result in results if result.started < released < result.ended)
    assert in_flight == len(tasks), f"only {in_flight} of {len(tasks)} overlapped"
    return [result.value for result in results]
