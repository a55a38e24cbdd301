"""Busy time from a provider's other calendar (issue 25).

    python -m bench.busy [--runs 20] [--fillfactor N] [--pages-only]
                          [--open-index] [--requests N --rounds R]

1. The slot listing and start times, first page of 100, for a provider with 20,000
   slots and 1,000 busy intervals over them against one without any: EXPLAIN ANALYZE
   of the service's own statements, median execution time and buffers.
   Each statement planned for its own values (`plan_cache_mode = force_custom_plan`).
2. Reading a 5,000-event feed (4,000 single events and 1,000 weekly series of 10, over
   two years) served over HTTP: wall time and peak Python memory of `busy.service.sync`,
   then the same feed again: what the second read wrote (rows inserted, updated and
   deleted in `busy_intervals` and `slots`, from pg_stat_user_tables).
3. With --requests: what a request costs, the same two providers behind the service
   (4 workers, `bench.cpu.measure`): R rounds of N listing pages and N start-time pages
   of each provider from the same random starting points, the four kinds taking turns
   round by round so that drift falls on both sides alike; CPU per request of the
   service and of PostgreSQL, read from /proc, and the median over the rounds of each
   round's total (service + PostgreSQL) with busy time over the one without.
"""

import argparse
import asyncio
import json
import re
import statistics
import threading
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import httpx

from appointments import rawsql
from appointments.appointment_types import start_times
from appointments.availability import listing
from appointments.availability.schemas import SlotFilter
from appointments.busy import service as busy_service
from appointments.db import create_engine, create_sessionmaker
from appointments.pagination import PageRequest
from appointments.settings import Settings
from bench import paired, seed
from bench.harness import LOGS, admin_token, asyncpg_dsn, postgres, service
from bench.series import _rules
from tests.busy.feeds import big_feed
from tests.postgres_server import PostgresServer

SLOTS = 20_000
INTERVALS = 1_000


async def _explain(db: asyncpg.Connection, sql: str, values: dict[str, Any]) -> tuple[float, int]:
    text, names = rawsql.positional(sql)
    plan = "\n".join(
        row[0]
        for row in await db.fetch("EXPLAIN (ANALYZE, BUFFERS) " + text, *(values[n] for n in names))
    )
    execution = float(re.findall(r"Execution Time: ([\d.]+) ms", plan)[0])
    buffers = int(re.findall(r"Buffers: shared hit=(\d+)", plan)[0])
    return execution, buffers


async def _two_providers(db: asyncpg.Connection) -> tuple[str, str, datetime]:
    """Two providers of SLOTS slots each from the base, the second with INTERVALS busy
    hours spread over its slots' 208 days, one every 5 hours."""
    free, busy = await seed.providers(db, 2, "busy")
    for provider in (free, busy):
        await seed.slots(db, provider, SLOTS)
    base: datetime = await db.fetchval(f"SELECT {seed.BASE}")
    await seed.busy_hours(db, busy, base, INTERVALS)
    await db.execute("VACUUM ANALYZE")
    return free, busy, base


async def pages(
    pg: PostgresServer, runs: int, fillfactor: int | None, open_index: bool = False
) -> dict[str, Any]:
    db = await asyncpg.connect(asyncpg_dsn(pg.url))
    # As the service's own connections plan (connections.py): without random_page_cost
    # = 1.1 the start-time page was sometimes planned as a full scan (573 buffers).
    await db.execute("SET jit = off")
    await db.execute("SET random_page_cost = 1.1")
    if fillfactor is not None:
        await db.execute(f"ALTER TABLE slots SET (fillfactor = {int(fillfactor)})")
    if open_index:
        # Tried for issue 25: the open slots alone in an index, so a page skips busy
        # (and booked) slots without reading them.
        await db.execute(
            "CREATE INDEX ix_slots_open ON slots (provider_id, start_time)"
            " WHERE status IN ('available', 'reserved') AND NOT busy"
        )
    figures: dict[str, Any] = {
        "open_index": open_index,
        "fillfactor": await db.fetchval(
            "SELECT coalesce((SELECT option_value FROM pg_options_to_table(reloptions)"
            " WHERE option_name = 'fillfactor'), '100') FROM pg_class WHERE relname = 'slots'"
        ),
    }
    # Each EXPLAIN planned for its own values: asyncpg prepares the text once, and from
    # the sixth run PostgreSQL may switch to a generic plan (seen: the start-time page's
    # generic plan read 544 buffers and took 4-5 ms, with busy time or without).
    await db.execute("SET plan_cache_mode = force_custom_plan")
    free, busy, base = await _two_providers(db)
    busy_slots = await db.fetchval("SELECT count(*) FROM slots WHERE busy")
    now = datetime.now(UTC)
    kind = await seed.appointment_type(db, free, 45, 15)
    rules = _rules(kind)
    figures["busy_slots"] = busy_slots
    for name, provider in (("without", free), ("with_1000_intervals", busy)):
        query = listing.Query(
            status=SlotFilter.AVAILABLE,
            start_from=base,
            start_before=None,
            bookable_after=now,
            now=now,
            request=PageRequest(limit=100, after=None),
        )
        listing_sql, listing_values = listing.statement("postgresql", uuid.UUID(provider), query)
        search = start_times.Search(start_from=base, after=now, zone="UTC")
        starts_sql, starts_values, _ = start_times.compose_text(
            "postgresql", uuid.UUID(provider), rules, search, now, limit=101
        )
        row: dict[str, Any] = {}
        for path, sql, values in (
            ("listing", listing_sql, listing_values),
            ("start_times", starts_sql, starts_values),
        ):
            await _explain(db, sql, values)
            samples = [await _explain(db, sql, values) for _ in range(runs)]
            row[path] = {
                "execution_ms": round(statistics.median(s[0] for s in samples), 3),
                "buffers": samples[-1][1],
            }
        figures[name] = row
        print(f"{name}: {row}", flush=True)
    for path in ("listing", "start_times"):
        ratio = (
            figures["with_1000_intervals"][path]["execution_ms"]
            / figures["without"][path]["execution_ms"]
        )
        figures[f"{path}_ratio"] = round(ratio, 2)
    await db.close()
    return figures


async def requests(pg: PostgresServer, count: int, rounds: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {admin_token()}"}
    db = await asyncpg.connect(asyncpg_dsn(pg.url))
    free, busy, base = await _two_providers(db)
    await db.close()
    figures: dict[str, Any] = {"count": count, "rounds": rounds}
    with service(pg.url, workers=4) as svc:
        paths: dict[str, str] = {}
        async with httpx.AsyncClient(base_url=svc.base, headers=headers) as client:
            for side, provider in (("without", free), ("with", busy)):
                made = await client.post(
                    f"/providers/{provider}/appointment-types",
                    json={
                        "name": "Consultation",
                        "duration_minutes": 45,
                        "buffer_after_minutes": 15,
                    },
                )
                made.raise_for_status()
                kind = made.json()["id"]
                paths[f"listing {side}"] = f"/providers/{provider}/availability?limit=100"
                paths[f"start_times {side}"] = (
                    f"/providers/{provider}/appointment-types/{kind}/availability?limit=100"
                )
        # Starting points over the first 10,000 slots (a page ahead of each stays inside
        # the 20,000), the same ones for both providers in a round.
        rows = await paired.rounds(
            pg, svc, paths, headers, base=base, spread=10_000, count=count, rounds=rounds
        )
    for kind in ("listing", "start_times"):
        figures[kind] = paired.ratio(rows, f"{kind} with", f"{kind} without")
    return figures


async def _writes(db: asyncpg.Connection) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del AS written FROM pg_stat_user_tables"
        " WHERE relname IN ('busy_intervals', 'slots')"
    )
    return {row["relname"]: int(row["written"]) for row in rows}


async def read_feed(pg: PostgresServer) -> dict[str, Any]:
    body = big_feed(datetime.now(UTC) + timedelta(days=1))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = Settings(database_url=pg.url, webhook_allow_private=True)
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    db = await asyncpg.connect(asyncpg_dsn(pg.url))
    (provider,) = await seed.providers(db, 1, "feed")
    await seed.slots(db, provider, 96 * 365)  # a year of slots, day and night
    calendar = uuid.uuid4()
    await db.execute(
        "INSERT INTO calendars (id, provider_id, kind, url, write_bookings, status, busy_count,"
        " sync_due_at, created_at, updated_at) VALUES ($1, $2, 'ics', $3, false, 'pending', 0,"
        " now(), now(), now())",
        calendar,
        uuid.UUID(provider),
        f"http://127.0.0.1:{server.server_address[1]}/feed.ics",
    )
    figures: dict[str, Any] = {"feed_bytes": len(body)}
    # Timed untraced (tracemalloc slows the parsing several times over); the last,
    # traced read of the same feed gives the peak of Python memory a read takes.
    for name in ("first_read", "same_feed_again", "same_feed_traced"):
        await asyncio.sleep(1)  # the statistics collector's next flush
        before = await _writes(db)
        traced = name.endswith("traced")
        if traced:
            tracemalloc.start()
        started = time.perf_counter()
        await busy_service.sync(sessionmaker, settings, calendar, datetime.now(UTC))
        wall = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if traced else 0
        if traced:
            tracemalloc.stop()
        await asyncio.sleep(1)
        after = await _writes(db)
        state = await db.fetchrow(
            "SELECT status, busy_count, last_error FROM calendars WHERE id = $1", calendar
        )
        figures[name] = {
            "wall_ms": round(wall * 1000),
            "peak_python_mib": round(peak / 2**20, 1) if traced else None,
            "rows_written": {table: after[table] - before.get(table, 0) for table in after},
            "status": state["status"],
            "busy_intervals": state["busy_count"],
            "busy_slots": await db.fetchval(
                "SELECT count(*) FROM slots WHERE busy AND provider_id = $1", uuid.UUID(provider)
            ),
        }
        print(f"{name}: {figures[name]}", flush=True)
    await db.close()
    await engine.dispose()
    server.shutdown()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--fillfactor", type=int, help="set on slots before seeding (default: the schema's)"
    )
    parser.add_argument("--pages-only", action="store_true", help="skip the feed read")
    parser.add_argument(
        "--open-index", action="store_true", help="index the open slots alone (an experiment)"
    )
    parser.add_argument(
        "--requests", type=int, help="also measure requests' CPU: this many per round"
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds of --requests")
    args = parser.parse_args()
    with postgres() as pg:
        figures = {"pages": asyncio.run(pages(pg, args.runs, args.fillfactor, args.open_index))}
    if args.requests:
        with postgres() as pg:
            figures["requests"] = asyncio.run(requests(pg, args.requests, args.rounds))
    if not args.pages_only:
        with postgres() as pg:
            figures["feed"] = asyncio.run(read_feed(pg))
    LOGS.mkdir(exist_ok=True)
    (LOGS / "busy.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
