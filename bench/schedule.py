"""A provider with a 730-day standing schedule (every day 09:00-17:00 in Europe/Berlin,
~23,000 slots): publishing it, a roll that adds one day, a change that republishes
everything, an override and a time off, each timed; and the slot listing's first page
at the start and at the end of the horizon against a provider with one day of slots.

    python -m bench.schedule [--runs 5]

The service runs as a real server (one worker) on a throwaway PostgreSQL; each change
is one HTTP request, timed from the client, with the service's and PostgreSQL's CPU
read from /proc around it. The roll is `appointments roll` as the CronJob runs it,
with the clock moved a day on (APPOINTMENTS_CLOCK_OFFSET_SECONDS is not a thing: the
roll is run the next day by changing nothing but `published_through`, which is what a
day passing changes for it).
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.cpu import postmaster_pid, tree_cpu_ms
from bench.harness import LOGS, Service, admin_token, asyncpg_dsn, postgres, service
from tests.postgres_server import PostgresServer

NOON = {"start": "12:00", "end": "13:00"}
EVERY_DAY = [
    {"weekday": day, "start": "09:00", "end": "17:00"}
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
]


def timed(pg: PostgresServer, svc: Service, step: Any) -> tuple[Any, dict[str, float]]:
    service_before, pg_before = tree_cpu_ms(svc.process.pid), tree_cpu_ms(postmaster_pid(pg))
    started = time.perf_counter()
    result = step()
    wall = (time.perf_counter() - started) * 1000
    figures = {
        "wall_ms": round(wall, 1),
        "service_cpu_ms": round(tree_cpu_ms(svc.process.pid) - service_before, 1),
        "postgres_cpu_ms": round(tree_cpu_ms(postmaster_pid(pg)) - pg_before, 1),
    }
    return result, figures


def listing_ms(http: httpx.Client, provider: str, start: str, runs: int) -> float:
    path = f"/providers/{provider}/availability"
    samples = []
    for _ in range(runs * 20):
        began = time.perf_counter()
        http.get(path, params={"from": start, "limit": 100}).raise_for_status()
        samples.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(samples), 3)


def run(pg: PostgresServer, svc: Service, runs: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {admin_token()}"}
    with httpx.Client(base_url=svc.base, headers=headers, timeout=600) as http:
        provider = http.post("/providers", json={"name": "Dr Year", "timezone": "Europe/Berlin"})
        big = provider.json()["id"]
        small = http.post("/providers", json={"name": "Dr Day", "timezone": "Europe/Berlin"})
        schedule = f"/providers/{big}/schedule"

        answer, figures["publish_730_days"] = timed(
            pg, svc, lambda: http.put(schedule, json={"rules": EVERY_DAY, "horizon_days": 730})
        )
        created = answer.json()["change"]["created"]
        figures["publish_730_days"]["slots"] = created
        print(f"publish 730 days: {created} slots, {figures['publish_730_days']}", flush=True)

        # A day passes: the roll has one more date to publish (the last date's slots
        # taken away and `published_through` a day back: all a day passing changes).
        async def back_a_day() -> None:
            db = await asyncpg.connect(asyncpg_dsn(pg.url))
            await db.execute(
                "DELETE FROM slots WHERE provider_id = $1 AND start_time >= "
                "(SELECT (published_through::timestamp AT TIME ZONE 'Europe/Berlin')"
                " FROM schedules WHERE provider_id = $1)",
                uuid.UUID(big),
            )
            await db.execute("UPDATE schedules SET published_through = published_through - 1")
            await db.close()

        asyncio.run(back_a_day())
        env = {"APPOINTMENTS_DATABASE_URL": pg.url, "APPOINTMENTS_LOG_JSON": "false"}
        started = time.perf_counter()
        pg_before = tree_cpu_ms(postmaster_pid(pg))
        done = subprocess.run(
            [str(Path(sys.executable).parent / "appointments"), "roll"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        figures["roll_one_day"] = {
            "wall_ms_with_process_start": round((time.perf_counter() - started) * 1000, 1),
            "postgres_cpu_ms": round(tree_cpu_ms(postmaster_pid(pg)) - pg_before, 1),
            "output": done.stdout.strip(),
        }
        print(f"roll, one day: {figures['roll_one_day']}", flush=True)

        later = [{**rule, "start": "10:00", "end": "18:00"} for rule in EVERY_DAY]
        answer, figures["change_republishes_all"] = timed(
            pg, svc, lambda: http.put(schedule, json={"rules": later, "horizon_days": 730})
        )
        change = answer.json()["change"]
        figures["change_republishes_all"] |= {
            "created": change["created"],
            "removed": change["removed"],
        }
        print(f"change (09-17 to 10-18): {figures['change_republishes_all']}", flush=True)

        evenings = [{**rule, "start": "18:00", "end": "24:00"} for rule in EVERY_DAY]
        answer, figures["change_disjoint_hours"] = timed(
            pg, svc, lambda: http.put(schedule, json={"rules": evenings, "horizon_days": 730})
        )
        change = answer.json()["change"]
        figures["change_disjoint_hours"] |= {
            "created": change["created"],
            "removed": change["removed"],
        }
        print(f"change (10-18 to 18-24): {figures['change_disjoint_hours']}", flush=True)

        day = (datetime.now(UTC) + timedelta(days=100)).date().isoformat()
        answer, figures["override_one_day"] = timed(
            pg,
            svc,
            lambda: http.put(
                f"{schedule}/overrides/{day}",
                json={"intervals": [{"start": "12:00", "end": "13:00"}]},
            ),
        )
        print(f"override: {figures['override_one_day']}", flush=True)
        start = datetime.now(UTC) + timedelta(days=200)
        answer, figures["time_off_three_weeks"] = timed(
            pg,
            svc,
            lambda: http.post(
                f"/providers/{big}/time-off",
                json={
                    "start_time": start.isoformat(),
                    "end_time": (start + timedelta(weeks=3)).isoformat(),
                },
            ),
        )
        print(f"time off, 3 weeks: {figures['time_off_three_weeks']}", flush=True)

        # The listing: a first page near today and near the horizon's end, against a
        # provider with one day of slots.
        small_id = small.json()["id"]
        tomorrow = datetime.now(UTC) + timedelta(days=2)
        http.post(
            f"/providers/{small_id}/availability",
            json={
                "start_time": tomorrow.replace(
                    hour=8, minute=0, second=0, microsecond=0
                ).isoformat(),
                "end_time": tomorrow.replace(
                    hour=16, minute=0, second=0, microsecond=0
                ).isoformat(),
            },
        ).raise_for_status()

        # Statistics as autovacuum keeps them (on this fresh database the planner would
        # otherwise take 23,000 slots for one, and sort them all for a page).
        async def analyze() -> None:
            db = await asyncpg.connect(asyncpg_dsn(pg.url))
            await db.execute("ANALYZE slots")
            await db.close()

        asyncio.run(analyze())
        near = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        far = (datetime.now(UTC) + timedelta(days=700)).isoformat()
        figures["listing_ms_median"] = {
            "one_day_provider": listing_ms(http, small_id, near, runs),
            "year_provider_near": listing_ms(http, big, near, runs),
            "year_provider_far": listing_ms(http, big, far, runs),
        }
        print(f"listing, first page of 100: {figures['listing_ms_median']}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with postgres() as pg, service(pg.url, workers=1, sweep_interval_seconds="0") as svc:
        figures = run(pg, svc, args.runs)
    LOGS.mkdir(exist_ok=True)
    (LOGS / "schedule.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
