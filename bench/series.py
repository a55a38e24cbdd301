"""Start times for a weekly series (`repeat_count=12`) against plain start times, as the
table grows: what PostgreSQL does for the first page of 100.

    python -m bench.series [--sizes 1000,10000,100000,1000000] [--runs 5]
                           [--requests N --rounds R [--booked SHARE]] [--zone Europe/Berlin]
                           [--sqlite DAYS]

One provider whose slots run back to back (every 15 minutes, day and night) from a
base time, so every occurrence of every candidate is free: the worst case for the
series' checks, which stop at the first occurrence that fails. A 45-minute type with
15 minutes after. At each size, EXPLAIN (ANALYZE, BUFFERS) of the service's own
statement (`start_times.compose_text`) for the first page from the base, plain and
with 12 weekly occurrences: the median execution time over `--runs` and the shared
buffers one page touches, with `jit = off` as the service's connections run, and the
series once more with PostgreSQL's default `jit = on`.

With --requests, what a request costs instead (issue 23's "within 2x of plain start
times"): the service (4 workers) over 20,000 such slots, R rounds of N first pages of
100 from random starting points, plain and with `repeat_count=12` taking turns
(`bench.paired`): CPU per request of the service and of PostgreSQL, and the median of
the rounds' ratios, series over plain.

With --booked (e.g. 0.05), that share of the slots is booked, scattered at random: most
12-week candidates then fail some week, and a page takes several chunks of them.

The provider's zone is Europe/Berlin unless `--zone` says otherwise: in a zone with
daylight saving, some pages have a week across an offset change, which UTC never has.

With --sqlite, the same pages on SQLite (`sqlite_pages`), timed in one process.
"""

import argparse
import asyncio
import json
import random
import re
import statistics
import tempfile
import uuid
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from time import time_ns
from typing import Any

import asyncpg
import httpx
from sqlalchemy import insert

from appointments import migrate, rawsql
from appointments.appointment_types import start_times
from appointments.appointment_types.models import AppointmentType
from appointments.appointment_types.rules import BookingRules
from appointments.db import create_engine, create_sessionmaker
from appointments.providers.models import Provider
from appointments.scheduling.models import Slot
from appointments.settings import Settings
from bench import paired, seed
from bench.harness import LOGS, admin_token, asyncpg_dsn, postgres, service
from tests.postgres_server import PostgresServer


def _rules(kind: str) -> BookingRules:
    return BookingRules(
        type_id=uuid.UUID(kind),
        duration=timedelta(minutes=45),
        buffer_before=timedelta(0),
        buffer_after=timedelta(minutes=15),
        notice=timedelta(0),
        max_advance=None,
        max_per_day=None,
        change_notice=timedelta(0),
        slot_length=timedelta(minutes=Settings().slot_minutes),
    )


async def _explain(
    db: asyncpg.Connection,
    provider: str,
    kind: str,
    base: datetime,
    repeat: int | None,
    zone: str,
) -> tuple[float, int, int, str]:
    """Execution ms, shared buffers and rows of one page's statement, and its plan."""
    rules = _rules(kind)
    now = datetime.now(UTC)
    search = start_times.Search(
        start_from=base,
        after=now,
        zone=zone,
        repeat=None if repeat is None else start_times.Repeat(repeat),
    )
    text, params, _ = start_times.compose_text(
        "postgresql", uuid.UUID(provider), rules, search, now, limit=101
    )
    sql, names = rawsql.positional(text)
    plan = "\n".join(
        row[0]
        for row in await db.fetch(
            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, *(params[n] for n in names)
        )
    )
    execution = float(re.findall(r"Execution Time: ([\d.]+) ms", plan)[0])
    # The top node's line (its figures include every node under it), the first in the plan.
    buffers = int(re.findall(r"Buffers: shared hit=(\d+)", plan)[0])
    rows = int(re.findall(r"actual time=[\d.]+\.\.[\d.]+ rows=(\d+)", plan)[0])
    return execution, buffers, rows, plan


async def run(
    pg: PostgresServer, sizes: list[int], runs: int, zone: str, plans: Path | None = None
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    db = await asyncpg.connect(asyncpg_dsn(pg.url))
    (provider,) = await seed.providers(db, 1, "series", zone)
    kind = await seed.appointment_type(db, provider, 45, 15)
    base: datetime = await db.fetchval(f"SELECT {seed.BASE}")
    have = 0
    for size in sizes:
        await seed.slots(db, provider, size - have, offset=have)
        have = size
        await db.execute("VACUUM ANALYZE slots")
        row: dict[str, Any] = {}
        for name, repeat, jit in (
            ("plain", None, "off"),
            ("repeat_12", 12, "off"),
            ("repeat_12_jit_on", 12, "on"),
        ):
            # The service's connections run with jit off (connections.driver_arguments);
            # the last row shows what PostgreSQL's default would cost.
            await db.execute(f"SET jit = {jit}")
            await _explain(db, provider, kind, base, repeat, zone)  # warm
            samples = [await _explain(db, provider, kind, base, repeat, zone) for _ in range(runs)]
            if plans is not None:
                plans.mkdir(parents=True, exist_ok=True)
                (plans / f"{name}-{size}.txt").write_text(samples[-1][3])
            row[name] = {
                "execution_ms": round(statistics.median(s[0] for s in samples), 3),
                "buffers": samples[-1][1],
                "rows": samples[-1][2],
            }
        row["ratio"] = round(row["repeat_12"]["execution_ms"] / row["plain"]["execution_ms"], 1)
        figures[str(size)] = row
        print(
            f"{size:>9,} slots: plain {row['plain']['execution_ms']} ms "
            f"({row['plain']['buffers']} buffers), 12 weeks "
            f"{row['repeat_12']['execution_ms']} ms ({row['repeat_12']['buffers']} buffers), "
            f"x{row['ratio']}; with jit on {row['repeat_12_jit_on']['execution_ms']} ms",
            flush=True,
        )
    await db.close()
    return figures


async def requests(
    pg: PostgresServer, count: int, rounds: int, zone: str, booked: float = 0.0
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {admin_token()}"}
    db = await asyncpg.connect(asyncpg_dsn(pg.url))
    (provider,) = await seed.providers(db, 1, "series", zone)
    await seed.slots(db, provider, 20_000)
    if booked:
        # Booked slots scattered at random (no reservation rows: only the slot's status
        # is read by either listing).
        await db.execute(
            "UPDATE slots SET status = 'confirmed' WHERE provider_id = $1 AND random() < $2",
            uuid.UUID(provider),
            booked,
        )
    base: datetime = await db.fetchval(f"SELECT {seed.BASE}")
    await db.execute("VACUUM ANALYZE")
    await db.close()
    with service(pg.url, workers=4) as svc:
        async with httpx.AsyncClient(base_url=svc.base, headers=headers) as client:
            made = await client.post(
                f"/providers/{provider}/appointment-types",
                json={"name": "Consultation", "duration_minutes": 45, "buffer_after_minutes": 15},
            )
            made.raise_for_status()
        path = f"/providers/{provider}/appointment-types/{made.json()['id']}/availability?limit=100"
        paths = {"plain": path, "repeat_12": f"{path}&repeat_count=12"}
        # Starting points over the first 10,000 slots: twelve weeks on (8,064 slots) from
        # any of them stays inside the 20,000, so every occurrence is free.
        rows = await paired.rounds(
            pg, svc, paths, headers, base=base, spread=10_000, count=count, rounds=rounds
        )
    return {
        "zone": zone,
        "booked": booked,
        "count": count,
        "rounds": rounds,
        **paired.ratio(rows, "repeat_12", "plain"),
    }


async def sqlite_pages(url: str, days: int, pages: int, zone: str) -> dict[str, Any]:
    """SQLite: one provider publishing 09:00-17:00 UTC (32 slots) on each of `days` days,
    a 45 + 15 type; first pages of 100 from random days, plain and with 12 weeks,
    through the service's own search (`start_times.find`): wall-clock ms per page."""
    settings = Settings(database_url=url)
    engine = create_engine(settings)
    sessions = create_sessionmaker(engine)
    provider, kind = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    base = datetime.combine(now.date() + timedelta(days=3), time(9), UTC)
    rules = _rules(str(kind))
    async with sessions() as session, session.begin():
        session.add(
            Provider(id=provider, name="Dr Ada", timezone=zone, created_at=now, updated_at=now)
        )
        await session.flush()  # before its type (no relationship orders them)
        session.add(
            AppointmentType(
                id=kind,
                provider_id=provider,
                name="Consultation",
                duration_minutes=45,
                buffer_before_minutes=0,
                buffer_after_minutes=15,
                change_notice_minutes=0,
                created_at=now,
                updated_at=now,
            )
        )
        await session.flush()
        rows = [
            {
                "id": uuid.uuid4(),
                "provider_id": provider,
                "start_time": base + timedelta(days=day, minutes=15 * k),
                "end_time": base + timedelta(days=day, minutes=15 * (k + 1)),
                "status": "available",
            }
            for day in range(days)
            for k in range(32)
        ]
        await session.execute(insert(Slot), rows)
    figures: dict[str, Any] = {"days": days, "slots": days * 32, "zone": zone}
    for name, repeat in (("plain", None), ("repeat_12", start_times.Repeat(12))):
        took = []
        for _ in range(pages):
            start = base + timedelta(days=random.randrange(days))
            search = start_times.search_for(rules, zone, start, None, now, repeat)
            async with sessions() as session:
                began = time_ns()
                await start_times.find(session, provider, rules, search, now, limit=101)
                took.append((time_ns() - began) / 1e6)
        figures[name] = {
            "p50_ms": round(statistics.median(took), 2),
            "p99_ms": round(statistics.quantiles(took, n=100)[98], 2),
        }
        print(f"SQLite, {days * 32:,} slots, {name}: {figures[name]}", flush=True)
    await engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--plans", type=Path, help="write each page's plan into this folder")
    parser.add_argument("--requests", type=int, help="measure requests' CPU: this many a round")
    parser.add_argument("--rounds", type=int, default=15, help="rounds of --requests")
    parser.add_argument("--zone", default="Europe/Berlin", help="the provider's time zone")
    parser.add_argument(
        "--booked", type=float, default=0.0, help="with --requests: this share of slots booked"
    )
    parser.add_argument(
        "--sqlite", type=int, metavar="DAYS", help="time pages on SQLite over DAYS of slots"
    )
    args = parser.parse_args()
    if args.sqlite:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/bench.db"
            migrate.upgrade(url)
            figures = {
                str(args.sqlite): asyncio.run(
                    sqlite_pages(url, args.sqlite, args.runs * 20, args.zone)
                )
            }
        LOGS.mkdir(exist_ok=True)
        (LOGS / "series-sqlite.json").write_text(json.dumps(figures, indent=2))
        return
    if args.requests:
        with postgres() as pg:
            figures = asyncio.run(requests(pg, args.requests, args.rounds, args.zone, args.booked))
        LOGS.mkdir(exist_ok=True)
        (LOGS / "series-requests.json").write_text(json.dumps(figures, indent=2))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    with postgres() as pg:  # migrates: outside the event loop
        figures = asyncio.run(run(pg, sizes, args.runs, args.zone, args.plans))
    LOGS.mkdir(exist_ok=True)
    (LOGS / "series.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
