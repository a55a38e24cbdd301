"""A provider's .ics feed at 10^5 bookings: time to answer, size, the worker's memory.

    python -m bench.feed [--upcoming 100000] [--past 100000]

A throwaway PostgreSQL; one provider with `--past` bookings in the past 90 days
(cancelled after confirming: only the latest 1,000 go into the feed) and
`--upcoming` confirmed ones ahead (every one goes into the feed). The service runs
with one worker; the feed is fetched five times and the median reported.
"""

import argparse
import asyncio
import statistics
import time

import asyncpg
import httpx

from bench import seed
from bench.harness import admin_token, asyncpg_dsn, postgres, rss_kib, service

SEED = """
WITH new_slots AS (
    INSERT INTO slots (id, provider_id, start_time, end_time, status)
    SELECT gen_random_uuid(), $1::uuid, date_trunc('day', now()) + i * interval '15 minutes',
           date_trunc('day', now()) + (i + 1) * interval '15 minutes',
           CASE WHEN i < 0 THEN 'available' ELSE 'confirmed' END
      FROM generate_series(-$2::int, $3::int - 1) i
    RETURNING id, start_time, end_time
)
INSERT INTO reservations (id, slot_id, provider_id, client_id, status, start_time, end_time,
                          occupied_start, occupied_end, created_at, expires_at, confirmed_at,
                          cancelled_at)
SELECT gen_random_uuid(), s.id, $1::uuid, $4::uuid,
       CASE WHEN s.start_time < now() THEN 'cancelled' ELSE 'confirmed' END,
       s.start_time, s.end_time, s.start_time, s.end_time, now() - interval '100 days',
       now() - interval '100 days', now() - interval '100 days',
       CASE WHEN s.start_time < now() THEN now() - interval '99 days' END
  FROM new_slots s
"""


async def _seed(url: str, past: int, upcoming: int) -> str:
    db = await asyncpg.connect(asyncpg_dsn(url))
    try:
        (provider,) = await seed.providers(db, 1, "Dr ")
        (client,) = await seed.clients(db, 1, "c")
        await db.execute(SEED, provider, past, upcoming, client)
        await db.execute("ANALYZE")
    finally:
        await db.close()
    return provider


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--past", type=int, default=100_000)
    parser.add_argument("--upcoming", type=int, default=100_000)
    arguments = parser.parse_args()
    with postgres() as server:
        provider = asyncio.run(_seed(server.url, arguments.past, arguments.upcoming))
        with service(server.url, workers=1) as running:
            headers = {"Authorization": f"Bearer {admin_token()}"}
            path = f"{running.base}/providers/{provider}/reservations.ics"
            timings, size, events = [], 0, 0
            for _ in range(5):
                started = time.perf_counter()
                answer = httpx.get(path, headers=headers, timeout=120)
                timings.append(time.perf_counter() - started)
                answer.raise_for_status()
                size, events = len(answer.content), answer.text.count("BEGIN:VEVENT")
            worker_rss = max(rss_kib(pid) for pid in running.worker_pids() or [running.process.pid])
    print(
        f"feed of {events:,} events ({arguments.upcoming:,} upcoming, {arguments.past:,} "
        f"past bookings in the table): median {statistics.median(timings) * 1000:.0f} ms, "
        f"max {max(timings) * 1000:.0f} ms, {size / 1e6:.1f} MB, worker RSS "
        f"{worker_rss / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
