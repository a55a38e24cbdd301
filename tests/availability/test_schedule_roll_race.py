"""Rolls from several processes at once (the in-process roller of each API process,
`appointments roll`, the CronJob) on PostgreSQL: each provider rolled by one of them,
nothing created twice, every schedule published through its horizon."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import pytest

from appointments.availability import schedule, schedule_roll
from appointments.clock import FrozenClock
from appointments.db import create_engine, create_sessionmaker
from appointments.settings import Settings
from tests.api import Api

ROLLERS = 3
PROVIDERS = 6
WORKDAYS = ("mon", "tue", "wed", "thu", "fri")


def test_concurrent_rolls_publish_each_day_once(
    api: Api, settings: Settings, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    if api.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: there is no concurrent roll to race")
    rules = [{"weekday": day, "start": "09:00", "end": "17:00"} for day in WORKDAYS]
    providers = []
    for n in range(PROVIDERS):
        provider = api.provider(f"Dr {n}", timezone="Europe/Berlin")["id"]
        api.ok("PUT", f"/providers/{provider}/schedule", json={"rules": rules, "horizon_days": 30})
        providers.append(provider)
    before = api.sql("SELECT count(*) FROM slots")[0][0]
    # A week on: seven days (five working ones) came within every horizon.
    now = clock.now() + timedelta(days=7)

    # Every roller holds a provider's row lock inside `roll` at the same moment: they
    # really overlapped, and each skipped the providers the others held.
    gate = threading.Barrier(ROLLERS, timeout=30)
    entered = threading.local()
    roll = schedule.roll

    async def gated_roll(*args: Any) -> schedule.Change:
        if not getattr(entered, "done", False):
            entered.done = True
            gate.wait()
        return await roll(*args)

    monkeypatch.setattr(schedule, "roll", gated_roll)

    def roller() -> schedule_roll.Rolled:
        async def run() -> schedule_roll.Rolled:
            engine = create_engine(settings)
            try:
                return await schedule_roll.roll_all(create_sessionmaker(engine), settings, now)
            finally:
                await engine.dispose()

        return asyncio.run(run())

    with ThreadPoolExecutor(ROLLERS) as pool:
        results = [f.result() for f in [pool.submit(roller) for _ in range(ROLLERS)]]
    assert sum(r.providers for r in results) == PROVIDERS
    added = api.sql("SELECT count(*) FROM slots")[0][0] - before
    assert added == sum(r.created for r in results) == PROVIDERS * 5 * 32
    through = date(2027, 3, 8) + timedelta(days=30)
    rows = api.sql("SELECT published_through FROM schedules")
    assert [row[0] for row in rows] == [through] * PROVIDERS
    # A roll after them finds nothing to do.
    monkeypatch.undo()
    again = roller()
    assert (again.providers, again.created) == (0, 0)
