"""A gate for race tests on PostgreSQL: hold a lock from a connection of our own, see
the racers queue up behind it in `pg_stat_activity`, then let them all go at once.

A race test that only fires requests "at the same time" may pass just as well when
they happen to run one after another; one that waits until every racer is seen
waiting on the lock has proven that they overlapped.
"""

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg

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
