"""Several processes' calendar readers at once (PostgreSQL): each calendar is taken by
one reader only (`FOR UPDATE SKIP LOCKED`, then a lease), so each feed is read once and
its busy time written once."""

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.busy import service
from appointments.db import create_engine, create_sessionmaker
from appointments.settings import Settings
from tests.api import Api
from tests.busy.feeds import Feeds
from tests.busy.test_calendars import DAY, connect, event, feed
from tests.conftest import START

READERS = 3
EACH = 2  # calendars a reader takes per round
STAMP = "%Y%m%dT%H%M%SZ"


def test_readers_at_once_read_each_calendar_once(
    api: Api, settings: Settings, feeds: Feeds, monkeypatch: pytest.MonkeyPatch
) -> None:
    if api.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: there are no readers at once to race")
    provider = api.provider("Dr Busy")["id"]
    calendars = READERS * EACH
    api.publish(provider, DAY, DAY + timedelta(hours=calendars))
    for n in range(calendars):
        start = DAY + timedelta(hours=n)
        busy = event(f"e{n}", f"{start:{STAMP}}", f"{start + timedelta(minutes=15):{STAMP}}")
        connect(api, provider, feeds.serve(f"/{n}.ics", feed(busy)))
    feeds.requested.clear()
    now = START + timedelta(hours=1)
    api.sql("UPDATE calendars SET sync_due_at = :due", due=START)

    # Every reader holds its calendars' row locks at the same moment (inside the
    # lease): they really overlapped, and each skipped the rows the others held.
    gate = threading.Barrier(READERS, timeout=30)
    lease = service._lease

    async def gated(session: AsyncSession, due: list[uuid.UUID], at: object) -> None:
        gate.wait()
        await lease(session, due, now)

    monkeypatch.setattr(service, "_lease", gated)

    def reader() -> list[uuid.UUID]:
        async def run() -> list[uuid.UUID]:
            engine = create_engine(settings)
            try:
                sessionmaker = create_sessionmaker(engine)
                taken = await service.take_due(sessionmaker, now, limit=EACH)
                for calendar in taken:
                    await service.sync(sessionmaker, settings, calendar, now)
                return taken
            finally:
                await engine.dispose()

        return asyncio.run(run())

    with ThreadPoolExecutor(READERS) as pool:
        taken = [f.result() for f in [pool.submit(reader) for _ in range(READERS)]]
    assert sorted(len(t) for t in taken) == [EACH] * READERS
    assert len({c for t in taken for c in t}) == calendars  # no calendar taken twice
    assert sorted(feeds.requested.values()) == [1] * calendars  # each feed read once
    assert api.sql("SELECT count(*) FROM busy_intervals") == [(calendars,)]
    assert api.sql("SELECT DISTINCT status FROM calendars") == [("ok",)]
