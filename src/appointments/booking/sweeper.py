"""The in-process sweeper: persists run-out holds every few seconds.

Safe with any number of processes: each sweep is one transaction of conditional
updates, serialised by an advisory lock on PostgreSQL and BEGIN IMMEDIATE on SQLite.
"""

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from appointments.booking import service
from appointments.clock import Clock
from appointments.db import transaction

logger = logging.getLogger(__name__)


async def sweep_once(sessionmaker: async_sessionmaker[AsyncSession], clock: Clock) -> int:
    async with transaction(sessionmaker, writes=True) as session:
        return await service.expire_stale_holds(session, clock.now())


async def run_sweeper(
    sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, interval_seconds: float
) -> None:
    """Sweep forever; a failed sweep (database away) is logged and retried next round."""
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            expired = await sweep_once(sessionmaker, clock)
        except Exception:
            logger.exception("sweep failed; retrying in %ss", interval_seconds)
            continue
        if expired:
            logger.info("sweeper expired %d hold(s)", expired)
