"""A server setting of the test database for every new session, as a server or role
configured by its operator would have it: what the service must not follow."""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg


async def _set(url: str, name: str, value: str | None) -> None:
    connection = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        database = await connection.fetchval("SELECT current_database()")
        if value is None:
            await connection.execute(f'ALTER DATABASE "{database}" RESET {name}')
        else:
            await connection.execute(f"ALTER DATABASE \"{database}\" SET {name} = '{value}'")
    finally:
        await connection.close()


@contextmanager
def database_setting(url: str, name: str, value: str) -> Iterator[None]:
    """The database at `url` with `name` set to `value` for new sessions, reset after."""
    asyncio.run(_set(url, name, value))
    try:
        yield
    finally:
        asyncio.run(_set(url, name, None))
