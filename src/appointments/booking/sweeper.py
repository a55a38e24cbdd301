"""The sweep (persist every hold that ran out, drop what has aged out), and the
in-process sweeper that runs it every few seconds.

Safe with any number of processes: each sweep is one transaction of conditional
updates, serialised by an advisory lock on PostgreSQL and BEGIN IMMEDIATE on SQLite.
"""

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from appointments.background import stop_if_cancelled
from appointments.clock import Clock
from appointments.db import transaction
from appointments.idempotency import repository as idempotency_keys
from appointments.observability.metrics import SWEEPS, SWEPT, count_outcome
from appointments.ratelimit import service as rate_windows
from appointments.scheduling import holds, slots

logger = logging.getLogger(__name__)

# Rate-limit windows are a minute long; the sweep drops those over an hour old.
RATE_WINDOWS_KEPT = timedelta(hours=1)


async def expire_stale_holds(session: AsyncSession, now: datetime) -> int:
    """Persist every hold that has run out: reservations expired, their slots available."""
    await holds.lock_sweep(session)
    expired = await holds.expire_stale_holds(session, now)
    await slots.release_stale_holds(session, now)
    await idempotency_keys.delete_expired(session, now)
    await rate_windows.forget_before(session, now - RATE_WINDOWS_KEPT)
    SWEEPS.inc()
    SWEPT.inc(expired)
    count_outcome("expired", expired)
    return expired


async def sweep_once(sessionmaker: async_sessionmaker[AsyncSession], clock: Clock) -> int:
    async with transaction(sessionmaker, writes=True) as session:
        return await expire_stale_holds(session, clock.now())


async def run_sweeper(
    sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, interval_seconds: float
) -> None:
    """Sweep forever; a failed sweep (database away) is logged and retried next round."""
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            expired = await sweep_once(sessionmaker, clock)
        except Exception:
            stop_if_cancelled()
            logger.exception("sweep failed; retrying in %ss", interval_seconds)
            continue
        if expired:
            logger.info("sweeper expired %d hold(s)", expired)
