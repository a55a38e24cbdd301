"""A reserve's hold count reads the same few buffers at any number of live holds.

    python -m bench.holds [--sizes 100,1000,10000,100000]

For each size: a freshly migrated PostgreSQL database (no ANALYZE, as right after
`appointments migrate`) with that many live holds spread over as many clients, then
the two ways a reserve counts one client's live holds, run 8 times each (PL/pgSQL
switches to its cached generic plan after 5): `live_holds()` (the one-statement
reserve) and `booking.repository.count_live_holds`'s query. Prints the shared
buffers each read (EXPLAIN ANALYZE BUFFERS, the function's inner query included),
before and after ANALYZE. Flat from the smallest size to the largest is the goal.
"""

import argparse
import asyncio
import json
from typing import Any

import asyncpg

from bench import seed
from bench.harness import asyncpg_dsn, postgres

COUNT_SQL = (
    "SELECT count(*) FROM reservations WHERE client_id = $1 AND status = 'held' AND expires_at > $2"
)
RUNS = 8


async def _buffers(db: asyncpg.Connection, statement: str, *args: Any) -> int:
    """Shared buffers (hit + read) of the last of RUNS executions."""
    plan: list[dict[str, Any]] = []
    for _ in range(RUNS):
        text = await db.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}", *args)
        plan = json.loads(text)
    top = plan[0]["Plan"]
    return int(top.get("Shared Hit Blocks", 0)) + int(top.get("Shared Read Blocks", 0))


async def _measure(db: asyncpg.Connection, client: str) -> tuple[int, int]:
    now = await db.fetchval("SELECT now()")
    function = await _buffers(db, "SELECT live_holds($1::uuid, $2)", client, now)
    query = await _buffers(db, COUNT_SQL, client, now)
    return function, query


async def one_size(url: str, holds: int, *, without_index: bool) -> dict[str, int]:
    db = await asyncpg.connect(asyncpg_dsn(url))
    try:
        if without_index:
            await db.execute("DROP INDEX ix_reservations_client_id_held_expires_at")
        (provider,) = await seed.providers(db, 1, "Dr ")
        clients = await seed.clients(db, holds, "c")
        await seed.holds(db, provider, clients, holds, expired=False)
        # The client we count for holds one of them, like every other.
        fresh = await _measure(db, clients[0])
        await db.execute("ANALYZE")
        analysed = await _measure(db, clients[0])
    finally:
        await db.close()
    return {
        "holds": holds,
        "function_fresh": fresh[0],
        "query_fresh": fresh[1],
        "function_analysed": analysed[0],
        "query_analysed": analysed[1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000,100000")
    parser.add_argument(
        "--without-index", action="store_true", help="as before migration 0006, to compare"
    )
    arguments = parser.parse_args()
    sizes = [int(size) for size in arguments.sizes.split(",")]
    print("live holds | live_holds() fresh | query fresh | live_holds() analysed | query analysed")
    rows = []
    for size in sizes:
        with postgres() as server:
            row = asyncio.run(one_size(server.url, size, without_index=arguments.without_index))
        rows.append(row)
        print(
            f"{size:>10,} | {row['function_fresh']:>18} | {row['query_fresh']:>11} | "
            f"{row['function_analysed']:>21} | {row['query_analysed']:>14}",
            flush=True,
        )
    largest, smallest = rows[-1], rows[0]
    flat = all(largest[key] <= smallest[key] + 2 for key in largest if key != "holds")
    print(f"buffers flat from {sizes[0]:,} to {sizes[-1]:,} live holds: {flat}")


if __name__ == "__main__":
    main()
