"""The plan PostgreSQL keeps for a prepared statement, executed and explained.

After five executions of a prepared statement PostgreSQL may keep one generic plan,
made without the parameters' values (`plan_cache_mode`), whose estimates can be far
from any real page or request. Tests hold the service's statements to what must stay
true under such a plan, with the planner's choices narrowed to the worst it may make
(`settings`, e.g. `enable_hashjoin = off`)."""

import json
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from appointments import rawsql
from tests.api import Json


async def driver(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session's own (its transaction included)."""
    raw = (await (await session.connection()).get_raw_connection()).driver_connection
    assert raw is not None
    connection: asyncpg.Connection = raw
    return connection


async def kept_plan(
    session: AsyncSession,
    sql: str,
    values: Mapping[str, object],
    settings: Sequence[str] = (),
) -> Json:
    """EXPLAIN ANALYZE of `sql` (named parameters) under the generic plan, in the
    session's transaction (the caller rolls back a writing statement); the top node."""
    numbered, names = rawsql.positional(sql)
    db = await driver(session)
    kinds = [t.name for t in (await db.prepare(numbered)).get_parameters()]
    for setting in ("plan_cache_mode = force_generic_plan", *settings):
        await db.execute(f"SET LOCAL {setting}")
    await db.execute(f"PREPARE kept ({', '.join(kinds)}) AS {numbered}")
    # EXECUTE takes no parameters: each value as a literal, quoted by PostgreSQL.
    literals = [
        await db.fetchval(f"SELECT quote_nullable(CAST($1 AS {kind})::text)", values[name])
        for kind, name in zip(kinds, names, strict=True)
    ]
    plan = await db.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE kept ({', '.join(literals)})")
    await db.execute("DEALLOCATE kept")
    return _top(plan)


async def explained(session: AsyncSession, sql: str, values: Mapping[str, object]) -> Json:
    """EXPLAIN ANALYZE of `sql` as planned for these values; the top node."""
    numbered, names = rawsql.positional(sql)
    explain = "EXPLAIN (ANALYZE, FORMAT JSON) " + numbered
    db = await driver(session)
    return _top(await db.fetchval(explain, *(values[name] for name in names)))


def _top(plan: Any) -> Json:
    # The service's connections decode JSON themselves; a bare one would not.
    top: Json = (plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]
    return top


def nodes(plan: Json) -> list[Json]:
    """Every node of the plan, the top one first."""
    pending, found = [plan], []
    while pending:
        node = pending.pop()
        found.append(node)
        pending += node.get("Plans", [])
    return found
