"""Run every benchmark against a throwaway PostgreSQL and the service under uvicorn.

    python -m bench.run [--quick]

Prints each figure as it is measured and writes bench/results/latest.json.
Loopback only; every phase is bounded in requests and time.
"""

import argparse
import asyncio
import json
import random
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from appointments import rawsql
from appointments.appointment_types import start_times
from appointments.appointment_types.rules import BookingRules
from appointments.booking import one_statement
from appointments.booking.sweeper import sweep_once
from appointments.clock import SystemClock
from appointments.db import create_engine, create_sessionmaker
from appointments.settings import Settings
from bench import loadgen, pgbench, seed
from bench.harness import Service, admin_token, asyncpg_dsn, postgres, rss_kib, service
from bench.loadgen import Request
from tests.postgres_server import PostgresServer

RESULTS = Path(__file__).parent / "results"


def _pgbench_reserve() -> str:
    """The service's reserve for pgbench: the very same statement
    (`one_statement.RESERVE_SQL`, which locks the client itself and is sent alone
    when there is no Idempotency-Key), with the service's parameters turned into
    pgbench variables and SQL (now(), the default 30-minute hold, 24-hour notice and
    3-hold limit)."""
    statement = pgbench.script(
        one_statement.RESERVE_SQL,
        {},
        {
            "id": "gen_random_uuid()",
            "now": "now()",
            "expires_at": "(now() + interval '30 minutes')",
            "bookable_after": "(now() + interval '1 day')",
            "max_holds": "3",
            # pgbench variables, set by the lines before.
            "client_id": ":client_id",
            "slot_id": ":slot_id",
        },
    )
    return (
        "SELECT nextval('bench_seq') AS n \\gset\n"
        "SELECT client_id, slot_id FROM bench_pairs WHERE n = :n \\gset\n" + statement
    )


PGBENCH_RESERVE = _pgbench_reserve()

LISTING_SQL = """
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT * FROM slots
 WHERE provider_id = $1 AND start_time >= $2 AND start_time > now() + interval '1 day'
   AND (status = 'available' OR (status = 'reserved' AND hold_expires_at <= now()))
 ORDER BY start_time, id LIMIT 101
"""


def say(line: str) -> None:
    print(line, flush=True)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def bench_reserve(pg: PostgresServer, svc: Service, count: int) -> dict[str, Any]:
    db = await asyncpg.connect(asyncpg_dsn(pg.url))
    token = admin_token()
    (provider,) = await seed.providers(db, 1, "reserve")
    http_slots = await seed.slots(db, provider, count)
    pg_slots = await seed.slots(db, provider, count, offset=count)
    people = await seed.clients(db, 2 * count, "r")
    await db.execute(
        "CREATE TABLE bench_pairs (n bigint PRIMARY KEY, client_id uuid, slot_id uuid)"
    )
    await db.executemany(
        "INSERT INTO bench_pairs VALUES ($1, $2, $3)",
        [(i + 1, people[count + i], pg_slots[i]) for i in range(count)],
    )
    await db.execute("CREATE SEQUENCE bench_seq")
    await db.execute("VACUUM ANALYZE")
    await db.close()

    requests = [
        Request("POST", f"/clients/{people[i]}/reserve", {"slot_id": http_slots[i]}, auth(token))
        for i in range(count)
    ]
    result = await loadgen.run("127.0.0.1", svc.port, requests, concurrency=64)
    created = result.status.count(201)
    rss = {pid: rss_kib(pid) for pid in svc.worker_pids()}
    say(
        f"reserve over HTTP: {result.throughput:.0f} req/s, p50 {ms(result.percentile(0.5))} ms, "
        f"p99 {ms(result.percentile(0.99))} ms, {created}/{count} created, "
        f"load generator CPU {result.client_cpu:.1f}s of {result.elapsed:.1f}s"
    )

    clients_n, per_client = 16, count // 16
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(PGBENCH_RESERVE)
    done = subprocess.run(
        [
            str(pg.bindir / "pgbench"),
            "-n",
            "-M",
            "prepared",
            "-f",
            script.name,
            "-c",
            str(clients_n),
            "-j",
            "2",
            "-t",
            str(per_client),
            "-h",
            "127.0.0.1",
            "-p",
            str(pg.port),
            "-U",
            "postgres",
            "postgres",
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(f"pgbench failed: {done.stderr[-2000:]}")
    tps = float(re.search(r"tps = ([\d.]+)", done.stdout).group(1))  # type: ignore[union-attr]
    latency = float(re.search(r"latency average = ([\d.]+) ms", done.stdout).group(1))  # type: ignore[union-attr]
    db = await asyncpg.connect(asyncpg_dsn(pg.url))
    pg_created = await db.fetchval(
        "SELECT count(*) FROM reservations WHERE slot_id = ANY($1::uuid[])", pg_slots
    )
    await db.close()
    if pg_created != clients_n * per_client:
        raise RuntimeError(f"pgbench created {pg_created} holds, not {clients_n * per_client}")
    ratio = result.throughput / tps
    say(f"pgbench, same transaction: {tps:.0f} tps, average {latency} ms; ratio {ratio:.2f}")
    return {
        "http_rps": round(result.throughput),
        "http_p50_ms": ms(result.percentile(0.5)),
        "http_p99_ms": ms(result.percentile(0.99)),
        "created": created,
        "requests": count,
        "loadgen_cpu_s": round(result.client_cpu, 2),
        "elapsed_s": round(result.elapsed, 2),
        "pgbench_tps": round(tps),
        "pgbench_avg_ms": latency,
        "ratio": round(ratio, 2),
        "worker_rss_kib": rss,
    }


async def bench_listing(
    pg: PostgresServer, svc: Service, sizes: list[int], samples: int
) -> dict[str, Any]:
    """First page (100 bookable slots) from a random point, as the table grows; the
    same for the bookable start times of a 45-minute type with 15 minutes after."""
    db = await asyncpg.connect(asyncpg_dsn(pg.url))
    token = admin_token()
    (provider,) = await seed.providers(db, 1, "listing")
    kind = await seed.appointment_type(db, provider, 45, 15)
    type_path = f"/appointment-types/{kind}/availability?"
    base: datetime = await db.fetchval(f"SELECT {seed.BASE}")
    have = 0
    figures: dict[str, Any] = {}
    starts: dict[str, Any] = {}
    series: dict[str, Any] = {}
    for size in sizes:
        await seed.slots(db, provider, size - have, offset=have)
        have = size
        # Settle the table first: without this, autovacuum and the checkpoint after a
        # million-row insert land in the measurement as noise.
        await db.execute("VACUUM ANALYZE slots")
        await db.execute("CHECKPOINT")
        requests = []
        for _ in range(samples):
            start = base.timestamp() + random.randrange(max(1, size - 200)) * 900
            iso = datetime.fromtimestamp(start, UTC).isoformat().replace("+00:00", "Z")
            path = f"/providers/{provider}/availability?limit=100&from={iso}"
            requests.append(Request("GET", path, None, auth(token)))
        await loadgen.run("127.0.0.1", svc.port, requests[:50], concurrency=4)  # warm-up
        result = await loadgen.run("127.0.0.1", svc.port, requests, concurrency=4)
        assert set(result.status) == {200}, set(result.status)
        row = {"p50_ms": ms(result.percentile(0.5)), "p99_ms": ms(result.percentile(0.99))}
        figures[str(size)] = row
        say(f"listing 100 of {size:>9,} slots: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms")
        typed = [
            Request("GET", r.path.replace("/availability?", type_path, 1), None, r.headers)
            for r in requests
        ]
        await loadgen.run("127.0.0.1", svc.port, typed[:50], concurrency=4)
        result = await loadgen.run("127.0.0.1", svc.port, typed, concurrency=4)
        assert set(result.status) == {200}, set(result.status)
        row = {"p50_ms": ms(result.percentile(0.5)), "p99_ms": ms(result.percentile(0.99))}
        plan = await explain_start_times(db, provider, kind, base)
        # What PostgreSQL itself touches for one page: the same at every size.
        row["buffers"] = int(re.findall(r"shared hit=(\d+)", plan)[0])
        row["rows_scanned"] = int(re.findall(r"Index Scan.*rows=(\d+)", plan)[0])
        starts[str(size)] = row
        say(
            f"start times, 100 of {size:>9,}: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, "
            f"{row['buffers']} buffers, {row['rows_scanned']} slots read"
        )
        # The same pages of a weekly series' starts (12 weeks; at the smaller sizes the
        # table ends inside them, so pages near its end find fewer and scan on to it).
        weekly = [Request("GET", r.path + "&repeat_count=12", None, r.headers) for r in typed]
        await loadgen.run("127.0.0.1", svc.port, weekly[:50], concurrency=4)
        result = await loadgen.run("127.0.0.1", svc.port, weekly, concurrency=4)
        assert set(result.status) == {200}, set(result.status)
        row = {"p50_ms": ms(result.percentile(0.5)), "p99_ms": ms(result.percentile(0.99))}
        series[str(size)] = row
        say(f"12 weeks, 100 of {size:>9,}: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms")
    plan = await db.fetch(LISTING_SQL, provider, base)
    starts["explain_at_largest"] = await explain_start_times(db, provider, kind, base)
    await db.close()
    figures["explain_at_largest"] = "\n".join(r[0] for r in plan)
    say(figures["explain_at_largest"])
    say(starts["explain_at_largest"])
    for name, table in (("listing", figures), ("start times", starts), ("series", series)):
        smallest, largest = table[str(sizes[0])]["p99_ms"], table[str(sizes[-1])]["p99_ms"]
        ratio = table["p99_ratio_largest_to_smallest"] = round(largest / smallest, 2)
        say(f"{name} p99 at {sizes[-1]:,} / at {sizes[0]:,}: {ratio}")
    figures["start_times"] = starts
    figures["series_start_times"] = series
    return figures


async def explain_start_times(
    db: asyncpg.Connection, provider: str, kind: str, base: datetime
) -> str:
    """EXPLAIN ANALYZE of the service's own start-times statement, at the largest size."""
    settings = Settings()
    rules = BookingRules(
        type_id=uuid.UUID(kind),
        duration=timedelta(minutes=45),
        buffer_before=timedelta(0),
        buffer_after=timedelta(minutes=15),
        notice=timedelta(days=1),
        max_advance=None,
        max_per_day=None,
        change_notice=timedelta(0),
        slot_length=timedelta(minutes=settings.slot_minutes),
    )
    now = datetime.now(UTC)
    search = start_times.Search(start_from=base, after=rules.bookable_after(now), zone="UTC")
    text, params, _ = start_times.compose_text(
        "postgresql", uuid.UUID(provider), rules, search, now, limit=101
    )
    sql, names = rawsql.positional(text)
    plan = await db.fetch(
        "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, *(params[n] for n in names)
    )
    return "\n".join(r[0] for r in plan)


async def bench_window(pg: PostgresServer, svc: Service) -> dict[str, Any]:
    """POST one 31-day window (2,976 slots), five times on fresh providers."""
    db = await asyncpg.connect(asyncpg_dsn(pg.url))
    providers = await seed.providers(db, 5, "window")
    base: datetime = await db.fetchval(f"SELECT {seed.BASE}")
    await db.close()
    end = base.timestamp() + 31 * 86400
    body = {
        "start_time": base.isoformat(),
        "end_time": datetime.fromtimestamp(end, UTC).isoformat(),
    }
    requests = [
        Request("POST", f"/providers/{p}/availability", body, auth(admin_token()))
        for p in providers
    ]
    result = await loadgen.run("127.0.0.1", svc.port, requests, concurrency=1, keep_bodies=True)
    assert set(result.status) == {201}, set(result.status)
    assert all(len(json.loads(b)["slots"]) == 2976 for b in result.bodies)
    figures = {"median_ms": ms(result.percentile(0.5)), "max_ms": ms(max(result.latency))}
    say(
        f"31-day window (2,976 slots): median {figures['median_ms']} ms, max {figures['max_ms']} ms"
    )
    return figures


async def bench_sweep(pg: PostgresServer, count: int) -> dict[str, Any]:
    db = await asyncpg.connect(asyncpg_dsn(pg.url))
    (provider,) = await seed.providers(db, 1, "sweep")
    people = await seed.clients(db, 100, "s")
    await seed.stale_holds(db, provider, people, count)
    await db.execute("VACUUM ANALYZE")
    await db.close()
    engine = create_engine(Settings(database_url=pg.url))
    began = time.perf_counter()
    expired = await sweep_once(create_sessionmaker(engine), SystemClock())
    elapsed = time.perf_counter() - began
    await engine.dispose()
    say(f"sweep of {count:,} run-out holds: {expired:,} expired in {ms(elapsed)} ms")
    return {"holds": count, "expired": expired, "ms": ms(elapsed)}


async def bench_contention(pg: PostgresServer, svc: Service, racers: int) -> dict[str, Any]:
    db = await asyncpg.connect(asyncpg_dsn(pg.url))
    (provider,) = await seed.providers(db, 1, "contention")
    (slot,) = await seed.slots(db, provider, 1)
    people = await seed.clients(db, racers, "c")
    await db.close()
    token = admin_token()
    requests = [
        Request("POST", f"/clients/{c}/reserve", {"slot_id": slot}, auth(token)) for c in people
    ]
    result = await loadgen.run("127.0.0.1", svc.port, requests, concurrency=racers)
    winners, refused = result.status.count(201), result.status.count(409)
    figures = {
        "racers": racers,
        "winners": winners,
        "refused_409": refused,
        "other": racers - winners - refused,
        "most_in_flight": result.most_in_flight(),
        "p99_ms": ms(result.percentile(0.99)),
    }
    say(
        f"contention, {racers} reserves of one slot: {winners} winner, {refused} x 409, "
        f"p99 {figures['p99_ms']} ms"
    )
    return figures


def main(quick: bool) -> dict[str, Any]:
    # Migrations run their own event loop, so set-up happens before ours starts.
    with postgres() as pg, service(pg.url, workers=4) as svc:
        return asyncio.run(benchmarks(pg, svc, quick))


async def benchmarks(pg: PostgresServer, svc: Service, quick: bool) -> dict[str, Any]:
    sizes = [1_000, 10_000, 100_000] if quick else [1_000, 10_000, 100_000, 1_000_000]
    results: dict[str, Any] = {"when": datetime.now(UTC).isoformat(), "quick": quick}
    # Listing first, on a quiet system: measured after the reserve load, the first
    # size picked up that load's after-effects (GC, autovacuum) as p99 noise.
    results["listing"] = await bench_listing(pg, svc, sizes, 200 if quick else 400)
    results["reserve"] = await bench_reserve(pg, svc, 2_000 if quick else 10_000)
    results["worker_rss_kib_after_reserve"] = results["reserve"].pop("worker_rss_kib")
    say(f"worker RSS after the reserve load (KiB): {results['worker_rss_kib_after_reserve']}")
    results["contention"] = await bench_contention(pg, svc, 200)
    results["window"] = await bench_window(pg, svc)
    results["sweep"] = await bench_sweep(pg, 20_000 if quick else 100_000)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    figures = main(args.quick)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("quick.json" if args.quick else "latest.json")
    out.write_text(json.dumps(figures, indent=2, default=str))
    say(f"results written to {out}")
    sys.exit(0)
